"""Dashboard and CLI settings, from environment variables (docs/configuration.md lists them).

No window length here: readers take it from Redis, where the processor records it.
"""

from __future__ import annotations

from pydantic import Field

from wikipulse.settings import RedisSettings, ServiceSettings, UnusualSettings


class DashboardSettings(ServiceSettings, RedisSettings, UnusualSettings):
    dashboard_host: str = Field("127.0.0.1", description="interface to listen on")
    dashboard_port: int = Field(8000, ge=1, le=65535, description="HTTP port")
    stale_after_seconds: float = Field(
        120.0,
        gt=0,
        description="`/healthz` answers 503 when no complete window ended more recently",
    )

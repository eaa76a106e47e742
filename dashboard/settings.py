"""Dashboard and CLI settings, from environment variables (see the README's table)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DashboardSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    redis_url: str = Field("redis://localhost:6379/0", description="where the windows are")
    redis_key_prefix: str = Field("wikipulse:", description="the processor's key prefix")
    window_seconds: int = Field(30, ge=1, description="the processor's window length")
    dashboard_host: str = Field("127.0.0.1", description="interface to listen on")
    dashboard_port: int = Field(8000, ge=1, le=65535, description="HTTP port")
    stale_after_seconds: float = Field(
        120.0,
        gt=0,
        description="/healthz answers 503 when no complete window ended more recently",
    )

"""``wikipulse-dashboard`` / ``python -m dashboard``: the web dashboard on DASHBOARD_PORT."""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError

from dashboard.app import create_app
from dashboard.settings import DashboardSettings
from wikipulse.observability import setup_logging


def main() -> None:
    setup_logging()
    try:
        settings = DashboardSettings()
    except ValidationError as exc:
        sys.exit(f"wikipulse-dashboard: bad configuration: {exc}")
    uvicorn.run(
        create_app(settings),
        host=settings.dashboard_host,
        port=settings.dashboard_port,
        log_config=None,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()

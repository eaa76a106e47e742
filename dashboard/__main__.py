"""``wikipulse-dashboard`` / ``python -m dashboard``: the web dashboard on DASHBOARD_PORT."""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError

from dashboard.app import create_app
from dashboard.settings import DashboardSettings
from wikipulse.observability import serve_metrics, setup_logging


def main() -> None:
    try:
        settings = DashboardSettings()
    except ValidationError as exc:
        sys.exit(f"wikipulse-dashboard: bad configuration: {exc}")
    setup_logging(settings.log_level)
    serve_metrics(settings.metrics_port)
    uvicorn.run(
        create_app(settings),
        host=settings.dashboard_host,
        port=settings.dashboard_port,
        log_config=None,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()

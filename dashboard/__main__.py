"""``wikipulse-dashboard`` / ``python -m dashboard``: the web dashboard on DASHBOARD_PORT."""

from __future__ import annotations

import uvicorn

from dashboard.app import create_app
from dashboard.settings import DashboardSettings
from wikipulse.service import start


def main() -> None:
    settings = start(DashboardSettings, "wikipulse-dashboard")
    uvicorn.run(
        create_app(settings),
        host=settings.dashboard_host,
        port=settings.dashboard_port,
        log_config=None,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()

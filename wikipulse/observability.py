"""Logging and the Prometheus endpoint, set up the same way in every service."""

from __future__ import annotations

import logging
import os

from prometheus_client import start_http_server


def setup_logging() -> None:
    """One line per record on stderr; ``LOG_LEVEL`` picks the level (default INFO)."""
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def serve_metrics(port: int | None) -> None:
    """Expose ``/metrics`` on ``port``; do nothing when it is unset."""
    if port:
        start_http_server(port)
        logging.getLogger(__name__).info("metrics on :%d/metrics", port)

"""Logging and the Prometheus endpoint, set up the same way in every service."""

from __future__ import annotations

import logging

from prometheus_client import start_http_server


def setup_logging(level: str = "INFO") -> None:
    """One line per record on stderr, at ``level`` (the service's ``LOG_LEVEL``)."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def serve_metrics(port: int | None) -> None:
    """Expose ``/metrics`` on ``port``; do nothing when it is unset."""
    if port:
        start_http_server(port)
        logging.getLogger(__name__).info("metrics on :%d/metrics", port)

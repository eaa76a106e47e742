"""Logging, ``/metrics`` and the health endpoints, set up the same way in every service.

With ``METRICS_PORT`` set a service serves, on that port:

* ``/metrics``: Prometheus (any other path answers the same, as before);
* ``/livez``: 200 while the process serves and is not starting over in a loop, else 503
  (for a liveness probe: only what a restart of the process could fix);
* ``/healthz``: JSON, 503 while the service is unhealthy (`wikipulse.health.verdict`:
  starting over in a loop, or recounting from Kafka what Redis lost), else 200 with
  ``status`` "ok", or "degraded" with the ``warnings`` something reported (`warn`), such
  as a Kafka topic that a broker's loss could empty (for a readiness probe).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import generate_latest, make_wsgi_app

from wikipulse.health import liveness_verdict, verdict

log = logging.getLogger(__name__)

#: what something reported as wrong but not failing, by what it is about
_warnings: dict[str, str] = {}
_lock = threading.Lock()


def setup_logging(level: str = "INFO") -> None:
    """One line per record on stderr, at ``level`` (the service's ``LOG_LEVEL``)."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def warn(about: str, text: str | None) -> None:
    """Put ``text`` on ``/healthz`` as the warning about ``about`` (None: clear it)."""
    with _lock:
        if text:
            _warnings[about] = text
        else:
            _warnings.pop(about, None)


def reported() -> list[str]:
    with _lock:
        return [_warnings[key] for key in sorted(_warnings)]


def health() -> tuple[int, dict[str, Any]]:
    """The ``/healthz`` answer: HTTP status and body."""
    problem = verdict(generate_latest().decode(), max_restarts=3)
    found = reported()
    if problem:
        return 503, {"status": "unhealthy", "reason": problem, "warnings": found}
    return 200, {"status": "degraded" if found else "ok", "warnings": found}


def _app(metrics: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/healthz":
            status, body = health()
            text = json.dumps(body).encode()
            kind = "application/json"
        elif path == "/livez":
            problem = liveness_verdict(generate_latest().decode(), max_restarts=3)
            status, text, kind = (
                (503, problem.encode(), "text/plain")
                if problem
                else (
                    200,
                    b"ok",
                    "text/plain",
                )
            )
        else:
            return metrics(environ, start_response)
        reason = "OK" if status == 200 else "Service Unavailable"
        start_response(f"{status} {reason}", [("Content-Type", kind)])
        return [text]

    return app


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes every few seconds are not news."""


def serve_metrics(port: int | None) -> None:
    """Serve ``/metrics``, ``/livez`` and ``/healthz`` on ``port``; nothing when unset."""
    if not port:
        return
    server = make_server("", port, _app(make_wsgi_app()), _Server, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics on :%d/metrics, health on /livez and /healthz", port)

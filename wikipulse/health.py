"""``python -m wikipulse.health URL``: the container healthcheck of the producer and the
processor, from their ``/metrics``.

Unhealthy (exit 1) when ``/metrics`` does not answer, when the service keeps failing
(the processor starts over by itself after a failure, a fresh process in the same
container, so a restart policy never sees it; ``wikipulse_processor_restarts_in_a_row``
at ``--max-restarts`` or more shows an operator the loop in ``docker compose ps``), and
while the processor recounts from Kafka what Redis lost
(``wikipulse_processor_recounting_partitions`` above 0): its windows are behind then.
"""

from __future__ import annotations

import argparse
import sys
import urllib.request

RESTARTS_METRIC = "wikipulse_processor_restarts_in_a_row"
RECOUNTING_METRIC = "wikipulse_processor_recounting_partitions"


def verdict(metrics_text: str, max_restarts: int) -> str | None:
    """Why the service is unhealthy, or None when it is healthy."""
    for line in metrics_text.splitlines():
        if line.startswith(RESTARTS_METRIC + " "):
            restarts = float(line.split()[1])
            if restarts >= max_restarts:
                return f"{restarts:.0f} restarts in a row without a healthy minute"
        if line.startswith(RECOUNTING_METRIC + " "):
            recounting = float(line.split()[1])
            if recounting > 0:
                return f"recounting {recounting:.0f} partitions from Kafka after Redis lost writes"
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the service's /metrics URL")
    parser.add_argument("--max-restarts", type=int, default=3)
    args = parser.parse_args(argv)
    try:
        with urllib.request.urlopen(args.url, timeout=3) as response:
            text = response.read().decode()
    except OSError as exc:
        sys.exit(f"unhealthy: {args.url} does not answer: {exc}")
    problem = verdict(text, args.max_restarts)
    if problem:
        sys.exit(f"unhealthy: {problem}")


if __name__ == "__main__":
    main()

"""``wikipulse-processor`` / ``python -m processor``: raw events -> windows in Redis."""

from __future__ import annotations

import sys

from confluent_kafka import KafkaException
from pydantic import ValidationError

from processor.app import build_app
from processor.settings import ProcessorSettings
from wikipulse.kafka import unusable
from wikipulse.observability import serve_metrics, setup_logging


def main() -> None:
    setup_logging()
    try:
        settings = ProcessorSettings()
    except ValidationError as exc:
        sys.exit(f"wikipulse-processor: bad configuration: {exc}")
    serve_metrics(settings.metrics_port)
    try:
        app = build_app(settings)
    except KafkaException as exc:  # a set-up problem: one clear line, no stack trace
        sys.exit(unusable("wikipulse-processor", settings, exc))
    app.run()  # handles SIGTERM/SIGINT: finishes the checkpoint, exits


if __name__ == "__main__":
    main()

"""docs/configuration.md, generated from the settings classes' own field descriptions.

``make docs`` writes it; a unit test fails when the file and the code drift apart, so
the reference can never list a variable the code does not read, or miss one it does.
``--chart`` writes the same names, by service, for the Helm chart to check its
``settings:`` maps against (deploy/helm/wikipulse/files/settings.yaml).
"""

from __future__ import annotations

import sys
from typing import Any

from pydantic_settings import BaseSettings

from dashboard.settings import DashboardSettings
from processor.settings import ProcessorSettings
from producer.settings import ProducerSettings
from wikipulse.settings import (
    EventTimeSettings,
    KafkaSettings,
    RedisSettings,
    ServiceSettings,
    UnusualSettings,
    WindowSettings,
)

SHARED: list[tuple[str, type[BaseSettings]]] = [
    ("Every service", ServiceSettings),
    ("Kafka (producer, processor)", KafkaSettings),
    ("Event time (producer, processor)", EventTimeSettings),
    ("Redis (processor, dashboard and CLI)", RedisSettings),
    ("Windows (processor)", WindowSettings),
    ("Unusual now (dashboard and CLI)", UnusualSettings),
]
SERVICES: list[tuple[str, str, type[BaseSettings]]] = [
    ("Producer", "wikipulse-producer", ProducerSettings),
    ("Processor", "wikipulse-processor", ProcessorSettings),
    ("Dashboard and CLI", "wikipulse-dashboard, wikipulse", DashboardSettings),
]

HEADER = """\
# Configuration

Every setting is an environment variable (any case), with the default shown. The same
variable means the same thing in every service that reads it: the shared groups below
are declared once, in `wikipulse/settings.py`, and each service composes the groups it
needs. Readers (dashboard, CLI) take the window length from Redis, where the processor
records it, so they have no window setting to get wrong.

This file is generated from the settings classes (`make docs`); a test fails when the
two disagree. Compose and the test harness set some of them; see docker-compose.yml.
"""


def default_of(field: Any) -> str:
    if field.is_required():
        return "*(required)*"
    value = field.default
    if value is None:
        return "*(unset)*"
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{value}`"


def table(fields: dict[str, Any]) -> list[str]:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in fields.items():
        meaning = (field.description or "").replace("|", "\\|")
        default = default_of(field).replace("|", "\\|")
        rows.append(f"| `{name.upper()}` | {default} | {meaning} |")
    return rows


def render() -> str:
    lines = [HEADER]
    lines.append("## Shared groups\n")
    for title, piece in SHARED:
        lines += [f"### {title}\n", *table(dict(piece.model_fields)), ""]
    for title, commands, settings in SERVICES:
        pieces = [p for _, p in SHARED if issubclass(settings, p)]
        shared = {name for p in pieces for name in p.model_fields}
        own = {n: f for n, f in settings.model_fields.items() if n not in shared}
        groups = ", ".join(p.__name__ for p in pieces)
        lines += [f"## {title} (`{commands}`)\n", f"Shared groups: {groups}.\n"]
        lines += [*table(own), ""]
    return "\n".join(lines).rstrip() + "\n"


#: the Helm chart's component of each service (deploy/helm/wikipulse/values.yaml)
CHART_COMPONENTS: list[tuple[str, type[BaseSettings]]] = [
    ("producer", ProducerSettings),
    ("processor", ProcessorSettings),
    ("dashboard", DashboardSettings),
]


def render_chart_settings() -> str:
    """deploy/helm/wikipulse/files/settings.yaml: the variables each service reads, from
    the same classes, so the chart refuses at install a `settings:` name no one reads
    (pydantic-settings ignores unknown variables: a misspelt one would do nothing)."""
    lines = [
        "# Generated from the settings classes by `make docs` (devtools/configdoc.py): the",
        "# variables each service reads, documented in docs/configuration.md. The chart",
        "# refuses a `settings:` name that is not listed for its component.",
    ]
    for component, settings in CHART_COMPONENTS:
        lines.append(f"{component}:")
        lines += [f"  - {name}" for name in sorted(n.upper() for n in settings.model_fields)]
    return "\n".join(lines) + "\n"


def main() -> None:
    if sys.argv[1:] == ["--chart"]:
        sys.stdout.write(render_chart_settings())
        return
    sys.stdout.write(render())


if __name__ == "__main__":
    main()

"""WikiPulse: live 30-second counts of Wikimedia's recent changes, per wiki.

The services live in `producer/` (SSE -> Kafka), `processor/` (Kafka -> Redis) and
`dashboard/` (Redis -> you); this package holds what they share: the event contract
(`events`), the Redis contract (`store` and the window lifecycle in `write_windows.lua`),
the settings pieces (`settings`), topic creation (`kafka`), logging and metrics
plumbing (`observability`) and the healthcheck (`health`). The replay server and other
development tools live in `devtools/`.
"""

__version__ = "0.1.0"

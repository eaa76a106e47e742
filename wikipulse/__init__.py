"""WikiPulse: live 30-second counts of Wikimedia's recent changes, per wiki.

The services live in `producer/` (SSE -> Kafka) and `processor/` (Kafka -> Redis);
this package holds what they share: the event contract (`events`), Kafka client
settings and topic creation (`kafka`), logging and metrics plumbing, and the SSE
replay server used for offline runs and tests (`replay`).
"""

__version__ = "0.1.0"

"""The processor: raw Kafka topic -> 30-second per-wiki counts in Redis (Quix Streams)."""

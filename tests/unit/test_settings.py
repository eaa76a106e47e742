"""Settings come from the environment and secrets stay out of logs."""

import pytest
from pydantic import ValidationError

from processor.settings import ProcessorSettings
from producer.settings import ProducerSettings
from wikipulse.kafka import new_topic_config
from wikipulse.settings import redact_url


def test_defaults_match_the_documented_contract(monkeypatch):
    for name in ("KAFKA_BROKER_ADDRESS", "RAW_TOPIC", "RAW_TOPIC_PARTITIONS", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    producer, processor = ProducerSettings(), ProcessorSettings()
    assert producer.kafka_broker_address == processor.kafka_broker_address == "localhost:9092"
    assert producer.raw_topic == processor.raw_topic == "wikimedia.recentchange"
    assert producer.raw_topic_partitions == processor.raw_topic_partitions == 6
    assert producer.user_agent.startswith("WikiPulse/")
    assert processor.redis_url == "redis://localhost:6379/0"
    assert (processor.window_seconds, processor.grace_seconds) == (30, 5)
    assert processor.dlq_topic == "wikimedia.recentchange.dlq"


def test_environment_overrides_and_security_pass_through(monkeypatch):
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "u")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("KAFKA_SSL_CA_LOCATION", "/ca.pem")
    settings = ProducerSettings()
    assert settings.client_config()["sasl.password"] == "s3cret"
    assert settings.client_config()["ssl.ca.location"] == "/ca.pem"
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings)


def test_redis_passwords_are_redacted_for_logs():
    assert redact_url("rediss://app:pw@cache:6380/1") == "rediss://app:***@cache:6380/1"
    assert redact_url("redis://cache:6379/0") == "redis://cache:6379/0"


def test_three_replicas_need_two_in_sync_unless_told_otherwise(monkeypatch):
    """With ``acks=all`` an acknowledged write is on min.insync.replicas brokers: 2 of 3
    survives any one broker's loss; the topics the services create must say so."""
    monkeypatch.setenv("RAW_TOPIC_REPLICATION_FACTOR", "3")
    assert new_topic_config(ProducerSettings())["min.insync.replicas"] == "2"
    monkeypatch.setenv("RAW_TOPIC_MIN_INSYNC_REPLICAS", "3")
    assert new_topic_config(ProcessorSettings())["min.insync.replicas"] == "3"
    monkeypatch.setenv("RAW_TOPIC_REPLICATION_FACTOR", "1")
    monkeypatch.delenv("RAW_TOPIC_MIN_INSYNC_REPLICAS")
    assert "min.insync.replicas" not in new_topic_config(ProducerSettings())  # the broker's


def test_more_in_sync_replicas_than_replicas_is_refused(monkeypatch):
    monkeypatch.setenv("RAW_TOPIC_REPLICATION_FACTOR", "2")
    monkeypatch.setenv("RAW_TOPIC_MIN_INSYNC_REPLICAS", "3")
    with pytest.raises(ValidationError, match="exceeds RAW_TOPIC_REPLICATION_FACTOR=2"):
        ProducerSettings()

"""Settings come from the environment and secrets stay out of logs."""

from processor.settings import ProcessorSettings
from producer.settings import ProducerSettings
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

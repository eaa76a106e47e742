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


def test_a_topic_takes_the_cluster_s_replication_unless_told(monkeypatch):
    """Nothing but the bootstrap list: the cluster's default.replication.factor and
    min.insync.replicas apply (a three-broker cluster set up for it gives 3 and 2)."""
    for name in ("RAW_TOPIC_REPLICATION_FACTOR", "RAW_TOPIC_MIN_INSYNC_REPLICAS"):
        monkeypatch.delenv(name, raising=False)
    settings = ProducerSettings()
    assert settings.raw_topic_replication_factor is None
    assert "min.insync.replicas" not in new_topic_config(settings)


def test_the_session_outlasts_a_coordinator_moving_on_a_cluster(monkeypatch):
    monkeypatch.delenv("SESSION_TIMEOUT_SECONDS", raising=False)
    settings = ProcessorSettings()
    assert settings.session_timeout_for(1) == 10  # one broker: no coordinator to move
    assert settings.session_timeout_for(3) == 20  # > broker.session.timeout.ms (9 s) + load
    monkeypatch.setenv("SESSION_TIMEOUT_SECONDS", "30")
    assert ProcessorSettings().session_timeout_for(1) == 30  # what the user says wins


def test_redis_sentinels_are_a_list_of_host_ports(monkeypatch):
    monkeypatch.setenv("REDIS_SENTINELS", " s1:26379, s2:26380 ,[::1]:26381")
    monkeypatch.setenv("REDIS_SENTINEL_PASSWORD", "sentinel-secret")
    settings = ProcessorSettings()
    assert settings.sentinels == [("s1", 26379), ("s2", 26380), ("::1", 26381)]
    assert settings.redis_sentinel_master == "wikipulse"
    assert "sentinel-secret" not in repr(settings)
    assert "s1:26379" in settings.redis_described
    monkeypatch.delenv("REDIS_SENTINELS")
    assert ProcessorSettings().sentinels == []


@pytest.mark.parametrize("bad", ["s1", "s1:", "s1:port", ":26379", "s1:70000"])
def test_a_sentinel_without_a_port_is_refused_at_start(monkeypatch, bad):
    monkeypatch.setenv("REDIS_SENTINELS", f"ok:26379,{bad}")
    with pytest.raises(ValidationError, match="is not host:port"):
        ProcessorSettings()


def test_every_rollup_has_its_retention_setting_with_the_store_s_default(monkeypatch):
    """`RESOLUTIONS` are the windows and then `ROLLUPS`, and each rollup's retention is
    ``ROLLUP_<R>_TTL_SECONDS``, by default the one the store names."""
    from wikipulse.store.values import RESOLUTIONS, ROLLUPS, WINDOW_RESOLUTION

    assert (WINDOW_RESOLUTION, *(rollup.name for rollup in ROLLUPS)) == RESOLUTIONS
    for rollup in ROLLUPS:
        monkeypatch.delenv(f"ROLLUP_{rollup.name.upper()}_TTL_SECONDS", raising=False)
    assert ProcessorSettings().rollups == ROLLUPS
    monkeypatch.setenv(f"ROLLUP_{ROLLUPS[-1].name.upper()}_TTL_SECONDS", "0")
    assert ProcessorSettings().rollups[-1].ttl_seconds == 0


def test_the_transaction_timeout_must_outlast_a_checkpoint():
    """A checkpoint's transaction lasts its interval and the flush to Redis, whose
    confirmation may wait `REDIS_WAIT_TIMEOUT_SECONDS` twice (WAITAOF, then WAIT for the
    replicas): a shorter timeout would abort every slow checkpoint and start the
    processor over for nothing."""
    with pytest.raises(ValidationError, match="TRANSACTION_TIMEOUT_SECONDS=12 is shorter"):
        ProcessorSettings(transaction_timeout_seconds=12, redis_wait_timeout_seconds=5)
    with pytest.raises(ValidationError, match=r"= 16\.5"):
        ProcessorSettings(redis_wait_timeout_seconds=7)
    assert ProcessorSettings(redis_wait_timeout_seconds=6).transaction_timeout_seconds == 15

"""Integration tests get their servers in the documented order: env, docker, local."""

import pytest

from devtools.servers import choose_source, provide


def test_a_configured_server_wins_and_docker_is_not_even_asked():
    asked = []
    assert choose_source("kafka:9092", lambda: asked.append(1) or True) == "env"
    assert asked == []


def test_docker_is_used_when_it_answers_and_local_servers_otherwise():
    assert choose_source(None, lambda: True) == "docker"
    assert choose_source("", lambda: False) == "local"


def test_provide_passes_configured_servers_through_without_starting_anything():
    env = {"KAFKA_BROKER_ADDRESS": "broker:1234", "REDIS_URL": "redis://cache:1/0"}
    with provide(env) as found:
        assert (found.kafka, found.redis_url) == ("broker:1234", "redis://cache:1/0")
        assert (found.kafka_source, found.redis_source, found.local) == ("env", "env", None)


def test_a_forced_tier_wins_over_configured_servers_and_over_docker():
    asked = []
    assert choose_source("kafka:9092", lambda: asked.append(1) or True, "local") == "local"
    assert choose_source(None, lambda: asked.append(1) or False, "docker") == "docker"
    assert asked == []


def test_a_forced_env_tier_needs_the_servers_and_a_typo_is_an_error():
    with pytest.raises(ValueError, match="needs KAFKA_BROKER_ADDRESS"):
        choose_source(None, lambda: True, "env")
    with pytest.raises(ValueError, match="expected one of"):
        choose_source(None, lambda: True, "dokcer")

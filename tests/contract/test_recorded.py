"""The processor refuses to count under a prefix whose counts were made otherwise: a
partition count that changed under the same raw topic, or another window length."""

from __future__ import annotations

import pytest

from processor.app import RecordedMismatch, _check_recorded
from processor.settings import ProcessorSettings
from tests.support.names import Names
from wikipulse.settings import RedisSettings
from wikipulse.store.window_store import WindowStore
from wikipulse.store.writes import Batch


def recorded(redis_url: str, prefix: str, source: str, partitions: int, window_ms: int) -> None:
    store = WindowStore.connect(RedisSettings(redis_url=redis_url, redis_key_prefix=prefix))
    store.write(
        Batch(0, 0), partitions=partitions, window_ms=window_ms, ttl_seconds=60, source=source
    )
    store.close()


def settings(redis_url: str, prefix: str, window_seconds: int = 30) -> ProcessorSettings:
    return ProcessorSettings(
        redis_url=redis_url, redis_key_prefix=prefix, window_seconds=window_seconds
    )


def test_a_partition_count_changed_under_the_same_topic_is_refused(redis_url):
    prefix = Names.fresh().prefix
    recorded(redis_url, prefix, "topic-a", 6, 30_000)
    with pytest.raises(RecordedMismatch, match=r"has 12 partitions.*made with 6"):
        _check_recorded(settings(redis_url, prefix), "topic-a", 12)
    _check_recorded(settings(redis_url, prefix), "topic-a", 6)  # the same: fine
    _check_recorded(settings(redis_url, prefix), "topic-b", 12)  # a topic created anew: fine


def test_another_window_length_under_the_same_prefix_is_refused(redis_url):
    prefix = Names.fresh().prefix
    recorded(redis_url, prefix, "topic-a", 6, 30_000)
    with pytest.raises(RecordedMismatch, match=r"30000 ms long.*60000 ms"):
        _check_recorded(settings(redis_url, prefix, window_seconds=60), "topic-a", 6)

"""`wikipulse rebuild`: the windows counted again from Kafka into a new prefix.

An hour of events of the recorded shape is in the raw topic, as the producer writes
them, with two invalid records; the rebuild counts it all into a new prefix with
another window length, exactly, and writes no dead letter.
"""

from __future__ import annotations

import subprocess
import sys

from confluent_kafka import Producer

from benchmarks.data import preload
from devtools.observe import read_topic
from tests.support.names import Names
from tests.support.paths import ROOT
from tests.support.pipeline import Pipeline
from wikipulse.kafka import ensure_topic
from wikipulse.settings import KafkaSettings
from wikipulse.store.keys import KeyLayout
from wikipulse.store.window_store import WindowStore

EVENTS = 155_000  # an hour of event time at the recorded rate (43 events/s)
MINUTE = 60_000


def test_rebuild_counts_the_retained_topic_into_a_new_prefix_with_a_new_window(
    services, names, tmp_path, redis_client
):
    ensure_topic(KafkaSettings(kafka_broker_address=services.kafka), names.topic, 6)
    expected = preload(services.kafka, names.topic, EVENTS, MINUTE, 5_000, 6)
    writer = Producer({"bootstrap.servers": services.kafka})
    for bad in (b"{not json", b"[1, 2]"):
        writer.produce(names.topic, bad, b"\x00unkeyed", partition=0)
    assert writer.flush(30) == 0
    assert len(expected) >= 60  # an hour of minutes
    new = Names.fresh().prefix
    env = Pipeline(services, names, tmp_path).env()
    command = [sys.executable, "-m", "dashboard.cli", "rebuild", "--prefix", new]
    done = subprocess.run(
        [*command, "--window-seconds", "60"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "complete and 1 partial windows" in done.stdout, done.stdout
    store = WindowStore(redis_client, KeyLayout(new))
    complete, partial = store.starts(1000), store.partial_starts(1000)
    first, *rest = sorted(expected)
    assert partial == [first] and complete == rest
    assert store.counts(complete) == {start: expected[start] for start in rest}
    assert store.window_ms() == MINUTE
    assert read_topic(services.kafka, f"{names.topic}.dlq") == []
    assert WindowStore(redis_client, KeyLayout(names.prefix)).starts(10) == []  # untouched

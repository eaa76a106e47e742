"""The producer puts every SSE event into Kafka exactly once, raw, keyed and stamped,
through disconnects, stalls, HTTP errors, bad frames, restarts and a Kafka outage."""

from __future__ import annotations

import contextlib
import json
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx

from devtools.faults import Fault
from devtools.observe import read_topic, wait_for
from devtools.processes import usage
from devtools.replay import ReplayServer
from devtools.servers import LocalServers, Services, free_port
from tests.support.pipeline import Pipeline
from tests.support.streams import RECORDED, live_stream
from wikipulse.events import HEARTBEAT_KEY, Header, Kind


def event_records(kafka: str, topic: str):
    return [
        m
        for m in read_topic(kafka, topic)
        if dict(m.headers() or []).get(Header.KIND) != Kind.HEARTBEAT
    ]


def offsets(records) -> Counter[int]:
    """How often each replay-log offset (from the SSE id header) reached Kafka."""
    return Counter(json.loads(dict(m.headers())[Header.SSE_ID])[0]["offset"] for m in records)


def wait_connected(pipeline: Pipeline, replay: ReplayServer) -> None:
    wait_for(lambda: replay.connections, 30, lambda: f"the producer to connect\n{pipeline.logs()}")


def wait_until_published(pipeline: Pipeline, count: int, timeout: float = 60):
    return wait_for(
        lambda: (
            len(recs := event_records(pipeline.services.kafka, pipeline.names.topic)) >= count
            and recs
        ),
        timeout,
        lambda: f"{count} events in Kafka\n{pipeline.logs()}",
        interval=1.0,
    )


def test_every_event_reaches_kafka_raw_keyed_by_wiki_and_stamped_with_meta_dt(pipeline, replay):
    metrics_port = free_port()
    producer = pipeline.producer(METRICS_PORT=str(metrics_port))
    wait_connected(pipeline, replay)
    replay.extend(RECORDED)
    records = wait_until_published(pipeline, len(RECORDED))
    published = f"wikipulse_producer_events_published_total {len(RECORDED)}.0"
    metrics = wait_for(
        lambda: (
            published in (text := httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text)
            and text
        ),
        10,
        "acknowledgements counted while the stream is quiet",
    )
    assert 'wikipulse_producer_events_received_total{kind="event"}' in metrics
    assert producer.stop() == 0  # SIGTERM: flush, then exit 0

    by_offset = {json.loads(dict(m.headers())[Header.SSE_ID])[0]["offset"]: m for m in records}
    assert sorted(by_offset) == list(range(len(RECORDED)))
    for offset, payload in enumerate(RECORDED):
        record, event = by_offset[offset], json.loads(payload)
        assert record.value() == payload  # raw, byte for byte
        assert record.key().decode() == event["server_name"]
        dt = datetime.fromisoformat(event["meta"]["dt"])
        assert record.timestamp()[1] == int(dt.timestamp() * 1000)
        assert dict(record.headers())[Header.EVENT_ID] == event["meta"]["id"].encode()
    (connection,) = replay.connections
    assert connection.user_agent.startswith("WikiPulse/") and connection.status == 200


def test_heartbeats_reach_every_partition_while_the_stream_is_quiet(pipeline, replay):
    pipeline.producer()
    wait_connected(pipeline, replay)
    replay.extend(RECORDED[:5])  # the clock starts with the first event
    beats = wait_for(
        lambda: (
            len(
                p := {
                    m.partition()
                    for m in read_topic(pipeline.services.kafka, pipeline.names.topic)
                    if m.key() == HEARTBEAT_KEY.encode()
                }
            )
            == 6
            and p
        ),
        30,
        "heartbeats on all 6 partitions",
    )
    assert beats == set(range(6))


def test_disconnects_and_truncated_frames_lose_and_repeat_nothing(pipeline, replay):
    replay.plan = [Fault("disconnect", after=100), Fault("truncate", after=60)]
    pipeline.producer()
    wait_connected(pipeline, replay)
    replay.extend(RECORDED)
    records = wait_until_published(pipeline, len(RECORDED))
    assert offsets(records) == Counter(range(len(RECORDED)))  # each exactly once
    resumed = [c.last_event_id for c in replay.connections[1:3]]
    assert [json.loads(r)[0]["offset"] for r in resumed] == [99, 159]


def test_a_stalled_connection_is_detected_and_resumed(pipeline, replay):
    replay.plan = [Fault("stall", after=50, seconds=30)]
    pipeline.overrides["READ_TIMEOUT_SECONDS"] = "2"
    pipeline.producer()
    wait_connected(pipeline, replay)
    replay.extend(RECORDED)
    records = wait_until_published(pipeline, len(RECORDED), timeout=30)
    assert offsets(records) == Counter(range(len(RECORDED)))
    stalled, resumed = replay.connections[:2]
    assert stalled.fault_at is not None
    # the producer's read timeout ended the silent connection, long before the server did
    assert 2.0 <= resumed.at - stalled.fault_at < 30


def test_http_503_with_retry_after_is_honoured(pipeline, replay):
    replay.plan = [Fault("status", code=503, retry_after=3)]
    pipeline.producer()
    wait_for(lambda: len(replay.connections) >= 2, 30, "a second connection")
    first, second = replay.connections[:2]
    assert first.status == 503 and second.status == 200
    assert second.at - first.at >= 3.0


def test_malformed_payloads_reach_kafka_raw_and_nothing_crashes(pipeline, replay):
    producer = pipeline.producer()
    wait_connected(pipeline, replay)
    bad = [b"{not json", b"\xff\xfe\xfd", b"[" * 5000, b'{"server_name": 7}', b"x" * 2_000_000]
    replay.extend([RECORDED[0], *bad, RECORDED[1]])
    records = wait_until_published(pipeline, 7)
    assert producer.alive
    kinds = Counter(dict(m.headers())[Header.KIND] for m in records)
    assert kinds == {Kind.EVENT: 2, Kind.INVALID: 5}
    values = {m.value() for m in records}
    assert set(bad[:4]) <= values  # raw, as received
    oversized = [m for m in records if b"exceeds" in dict(m.headers()).get(Header.REASON, b"")]
    assert len(oversized) == 1 and oversized[0].value() in (b"", None)


def test_copies_a_resume_by_time_sends_again_are_dropped_and_counted(pipeline, replay):
    replay.resume_repeats = 30  # as Wikimedia: a resume repeats the last events read
    replay.plan = [Fault("disconnect", after=100), Fault("disconnect", after=60)]
    metrics_port = free_port()
    pipeline.producer(METRICS_PORT=str(metrics_port))
    wait_connected(pipeline, replay)
    replay.extend(RECORDED)
    records = wait_until_published(pipeline, len(RECORDED))
    assert [c.offset for c in replay.connections[1:3]] == [70, 100]  # 30 sent again, twice
    assert offsets(records) == Counter(range(len(RECORDED)))  # each exactly once
    copies = 'wikipulse_producer_events_received_total{kind="duplicate"} 60.0'
    wait_for(
        lambda: copies in httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text,
        10,
        "the 60 copies accounted for",
    )


def test_a_killed_producer_resumes_from_kafka_and_writes_no_event_twice(pipeline, replay):
    replay.resume_repeats = 30
    producer = pipeline.producer(MAX_IN_FLIGHT="50")
    wait_connected(pipeline, replay)
    stop = threading.Event()
    player = threading.Thread(
        target=replay.play,
        args=(live_stream(len(RECORDED) * 4, 400.0, time.time()), 400.0, False),
        kwargs={"loop": False, "stop": stop},
    )
    player.start()
    wait_until_published(pipeline, 300)
    producer.kill()
    pipeline.producer(MAX_IN_FLIGHT="50")
    player.join()
    total = len(replay.log)
    records = wait_until_published(pipeline, total, timeout=60)
    # no gap, and no copy: what the killed process wrote was read back from Kafka's tails
    assert offsets(records) == Counter(range(total))
    assert replay.connections[-1].last_event_id is not None


@contextlib.contextmanager
def own_kafka(names, tmp_path, replay: ReplayServer) -> Iterator[tuple[Pipeline, LocalServers]]:
    """A pipeline on a Kafka of its own, which the test may stop and start."""
    with tempfile.TemporaryDirectory(prefix="wp-own-kafka-") as directory:
        own = LocalServers(Path(directory))
        own.start("kafka")
        try:
            services = Services(
                f"127.0.0.1:{own.kafka_port}", "redis://unused:1/0", "local", "local", own
            )
            pipe = Pipeline(services, names, tmp_path, sse_url=replay.url)
            try:
                yield pipe, own
            finally:
                pipe.stop_all()
        finally:
            own.stop()


def test_kafka_outage_pauses_reading_and_loses_nothing(names, tmp_path, replay):
    with own_kafka(names, tmp_path, replay) as (pipe, own):
        producer = pipe.producer(MAX_IN_FLIGHT="100")
        wait_connected(pipe, replay)
        replay.extend(RECORDED[:100])
        wait_until_published(pipe, 100)
        rss_before = usage(producer.process.pid).rss_kib
        own.stop("kafka")
        # ~2,800 more events (each a distinct one) while Kafka is down
        replay.extend(live_stream(2_840, 1_000.0, time.time(), first=100))
        threading.Event().wait(5)
        assert producer.alive
        rss_during = usage(producer.process.pid).rss_kib
        own.start("kafka")
        total = len(replay.log)
        records = wait_until_published(pipe, total, timeout=120)
        assert set(offsets(records)) == set(range(total))
        assert rss_during - rss_before < 50_000, (rss_before, rss_during)


def test_deliveries_that_fail_in_an_outage_are_re_read_and_written_once(names, tmp_path, replay):
    replay.resume_repeats = 30
    with own_kafka(names, tmp_path, replay) as (pipe, own):
        producer = pipe.producer(MAX_IN_FLIGHT="100", DELIVERY_TIMEOUT_MS="2000")
        wait_connected(pipe, replay)
        # stamped now: the broker's retention would delete the recording's times
        replay.extend(live_stream(100, 1_000.0, time.time()))
        wait_until_published(pipe, 100)
        own.stop("kafka")
        # more than MAX_IN_FLIGHT: the window of unacknowledged events fills up
        replay.extend(live_stream(300, 1_000.0, time.time(), first=100))
        wait_for(
            lambda: "kafka did not take event" in producer.output(),
            60,
            lambda: f"deliveries to fail while Kafka is down\n{pipe.logs()}",
        )
        own.start("kafka")
        total = len(replay.log)
        records = wait_until_published(pipe, total, timeout=120)
        # the failed events were read again and written, none of them twice
        # (their ids were forgotten, the copies of the others dropped)
        assert offsets(records) == Counter(range(total))
        assert "re-reading the stream after SSE id" in producer.output()


def test_an_outage_then_a_slow_first_event_does_not_jump_the_clock(pipeline, replay):
    """Issue #25, hole 4: after an outage of D seconds (every attempt refused), a server
    slow to send its first event must not be taken for a quiet stream as of the
    reconnect: the clock would run ~D ahead and the backlog behind it would be late."""
    max_ahead = 1.0
    replay.resume_repeats = 5  # copies at the resume boundary, as Wikimedia sends
    outage = [Fault("status", code=503, retry_after=2)] * 3  # >= 6 s of refusals
    replay.plan = [Fault("disconnect", after=40), *outage, Fault("slow", seconds=4)]
    pipeline.overrides.update(
        QUIET_PROBE_SECONDS="1",
        HEARTBEAT_MAX_AHEAD_SECONDS=str(max_ahead),
        HEARTBEAT_SECONDS="0.1",
        BACKOFF_INITIAL_SECONDS="0.2",
        BACKOFF_MAX_SECONDS="0.5",
    )
    pipeline.producer()
    wait_connected(pipeline, replay)
    events = live_stream(80, 1000.0, time.time())  # 80 ms of event time
    replay.extend(events)
    wait_until_published(pipeline, len(events), timeout=60)
    slow = replay.connections[-1]
    assert slow.fault is not None and slow.fault.kind == "slow" and slow.fault_at is not None
    assert [c.status for c in replay.connections] == [200, 503, 503, 503, 200]
    time.sleep(1.5)  # heartbeats after the backlog, too
    records = read_topic(pipeline.services.kafka, pipeline.names.topic)
    newest = max(m.timestamp()[1] for m in records if m.key() != HEARTBEAT_KEY.encode())
    beats = [m.timestamp()[1] for m in records if m.key() == HEARTBEAT_KEY.encode()]
    assert beats, "no heartbeat was written"
    ahead = (max(beats) - newest) / 1000
    assert ahead <= max_ahead + 0.25, f"heartbeats ran {ahead:.1f} s past the newest event"

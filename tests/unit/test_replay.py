"""The replay server's wire format and resume rule match Wikimedia's."""

import json
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime

import httpx

from devtools.observe import wait_for
from devtools.recordings import DATA, load_events, restamp
from devtools.replay import (
    TOPIC,
    ReplayServer,
    event_time_ms,
    frame,
    parse_since,
    resume_offset,
)
from producer.sse import SseDecoder


def test_the_recorded_capture_yields_all_384_events_despite_no_final_blank_line():
    events = load_events(DATA / "recentchange-2026-06-20.sse")
    assert len(events) == 384
    assert json.loads(events[-1])["meta"]["offset"] == 6262085295


def test_frames_decode_back_to_the_same_bytes_and_id():
    data = load_events(DATA / "recentchange-2026-06-20.sse")[0]
    (event,) = SseDecoder().feed(frame(41, data))
    assert event.data == data
    assert resume_offset(event.id) == 42


def test_unknown_or_missing_ids_start_at_now():
    assert resume_offset(None) == resume_offset("garbage") == resume_offset("[{}]") == -1


def test_restamp_moves_meta_dt_and_timestamp_and_renews_ids_on_later_cycles():
    data = load_events(DATA / "recentchange-2026-06-20.sse")[0]
    when = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    first, second = json.loads(restamp(data, when, 0)), json.loads(restamp(data, when, 1))
    assert first["meta"]["dt"] == "2030-01-02T03:04:05.678Z"
    assert first["timestamp"] == int(when.timestamp())
    assert first["meta"]["id"] == json.loads(data)["meta"]["id"] != second["meta"]["id"]
    assert restamp(b"{broken", when, 3) == b"{broken"


def test_an_id_beyond_the_log_is_served_from_the_newest_point_not_waited_for():
    """A producer that outlived a restarted replay server must not wait for old offsets."""
    with ReplayServer() as server:
        server.extend([b'{"n": 0}', b'{"n": 1}'])
        stale_id = json.dumps([{"topic": TOPIC, "partition": 0, "offset": 5000}])
        headers = {"User-Agent": "WikiPulse-test/1 (tests)", "Last-Event-ID": stale_id}
        with httpx.stream("GET", server.url, headers=headers, timeout=5) as response:
            server.append(b'{"n": 2}')
            decoder = SseDecoder()
            for chunk in response.iter_bytes():
                events = decoder.feed(chunk)
                if events:
                    break
    assert [(e.data, resume_offset(e.id)) for e in events] == [(b'{"n": 2}', 3)]


def test_sigterm_stops_the_replay_server_cleanly():
    """As PID 1 in a container a process without a SIGTERM handler ignores it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "devtools.replay", "--port", str(port), "--rate", "100"]
    process = subprocess.Popen([*command, "--file", str(DATA / "recentchange-2026-06-20.sse")])
    try:
        wait_for(lambda: _listening(port), 20, f"the replay server on port {port}")
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0  # a handled SIGTERM, not death by signal (-15)
    finally:
        process.kill()


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
        return True
    except OSError:
        return False


def first_served(server: ReplayServer, **params: str) -> tuple[bytes, int]:
    """The first event a client gets, and its offset."""
    headers = {"User-Agent": "WikiPulse-test/1 (tests)"}
    with httpx.stream("GET", server.url, headers=headers, params=params, timeout=5) as response:
        decoder = SseDecoder()
        for chunk in response.iter_bytes():
            events = decoder.feed(chunk)
            if events:
                return events[0].data, resume_offset(events[0].id) - 1
    raise AssertionError("nothing served")


def test_since_starts_at_the_first_event_of_that_time_as_wikimedia_serves_history():
    events = load_events(DATA / "recentchange-2026-06-20.sse")
    with ReplayServer() as server:
        server.fill_history(events, seconds=600, rate=1.0)  # one event every second
        assert len(server.log) == 600
        times = [event_time_ms(e) for e in server.log]
        assert times == sorted(times) and None not in times
        middle = times[300]
        assert middle is not None
        data, offset = first_served(server, since=str(middle))
        assert (offset, event_time_ms(data)) == (300, middle)
        iso = datetime.fromtimestamp((middle + 1) / 1000, UTC).isoformat()
        assert first_served(server, since=iso)[1] == 301  # ISO 8601 works too
        assert first_served(server, since="0")[1] == 0  # older than it has: its oldest
        ids = {json.loads(e)["meta"]["id"] for e in server.log}
        assert len(ids) == 600  # history never repeats an id, even past the recording


def test_since_parses_epoch_ms_and_iso_times_like_wikimedia():
    assert parse_since("1781913600000") == 1_781_913_600_000
    assert parse_since("2026-06-20T00:00:00Z") == 1_781_913_600_000
    assert parse_since("2026-06-20T00:00:00") == 1_781_913_600_000  # UTC when unzoned
    assert parse_since("yesterday") is None

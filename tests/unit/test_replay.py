"""The replay server's wire format and resume rule match Wikimedia's."""

import json
from datetime import UTC, datetime

from producer.sse import SseDecoder
from tests.conftest import DATA
from wikipulse.replay import frame, load_events, restamp, resume_offset


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

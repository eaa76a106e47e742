"""The window rules (`processor.windows`), pure: no Redis, no Kafka."""

from __future__ import annotations

from processor.windows import closed_end, lacking, tally, window_start
from wikipulse.events import HEARTBEAT_KEY
from wikipulse.store.writes import Progress

W, G = 30_000, 5_000
BEAT = HEARTBEAT_KEY.encode()
EN, DE = b"en.wikipedia.org", b"de.wikipedia.org"


def test_windows_are_aligned_to_the_epoch_and_close_at_end_plus_grace():
    assert window_start(29_999, W) == 0 and window_start(30_000, W) == 30_000
    assert closed_end(None, W, G) == 0  # a partition that has seen nothing closed nothing
    assert closed_end(W + G - 1, W, G) == 0
    assert closed_end(W + G, W, G) == W


def test_events_count_per_window_and_wiki_heartbeats_only_move_the_clock():
    counted = tally(
        [
            (0, 1_000, EN, b""),
            (1, 2_000, EN, b""),
            (2, 3_000, DE, b""),
            (3, 31_000, EN, b""),
            (4, 40_000, BEAT, b""),
        ],
        Progress(),
        window_ms=W,
        grace_ms=G,
    )
    assert counted.counts == {
        0: {"en.wikipedia.org": 2, "de.wikipedia.org": 1},
        W: {EN.decode(): 1},
    }
    assert counted.progress == Progress(4, 40_000)
    assert counted.closed_end == W and counted.late == 0 and counted.first_time_ms == 1_000


def test_an_event_for_a_window_the_clock_closed_is_late():
    counted = tally(
        [(0, 65_000, BEAT, b""), (1, 1_000, EN, b"")], Progress(), window_ms=W, grace_ms=G
    )
    assert counted.counts == {} and counted.late == 1


def test_the_stored_clock_and_offset_carry_on_records_at_or_below_are_replays():
    since = Progress(9, 65_000)
    counted = tally(
        [(8, 1_000, EN, b""), (9, 2_000, EN, b""), (10, 64_000, EN, b"")],
        since,
        window_ms=W,
        grace_ms=G,
    )
    assert counted.replayed == 2
    assert counted.counts == {60_000: {"en.wikipedia.org": 1}}
    assert counted.progress == Progress(10, 65_000)  # the clock never goes back


def test_records_never_counted_move_the_offset_not_the_clock():
    counted = tally(
        [(0, 99_000, None, b""), (1, 1_000, EN, b"")], Progress(), window_ms=W, grace_ms=G
    )
    assert counted.progress == Progress(1, 1_000) and counted.counts == {0: {EN.decode(): 1}}
    assert counted.first_time_ms == 1_000


def test_keys_that_decode_alike_add_up():
    bad = [(0, 1_000, b"\xffa.org", b""), (1, 1_000, b"\xfea.org", b"")]
    counted = tally(bad, Progress(), window_ms=W, grace_ms=G)
    assert counted.counts == {0: {"\ufffda.org": 2}}


def test_what_a_partition_lacks_reaches_from_its_closed_windows_to_its_first_record():
    # nothing counted before: every window up to the first record's
    assert lacking(Progress(), 31_000, window_ms=W, grace_ms=0) == (0, 60_000)
    # a retention cut: from the end of the windows it had closed, and a grace further,
    # since a deleted record may be up to the grace newer than the first one kept
    assert lacking(Progress(5, 95_000), 118_000, window_ms=W, grace_ms=G) == (90_000, 150_000)


def test_each_event_counts_in_its_window_s_breakdown_by_bot_type_and_bytes():
    records = [
        (0, 1_000, EN, b"eb-1014"),  # a bot's edit removing 1014 bytes
        (1, 2_000, EN, b"eh300"),  # a human's edit adding 300
        (2, 3_000, EN, b"eh300"),  # the same facts again: counted twice
        (3, 4_000, EN, b"nh5230"),  # a human's new page
        (4, 5_000, DE, b"lb"),  # a bot's log action: no bytes
        (5, 6_000, DE, b"??"),  # facts another tool wrote wrong: a human's "other"
        (6, 7_000, BEAT, b""),
    ]
    counted = tally(records, Progress(), window_ms=W, grace_ms=G)
    # count, bot, edit, new, log, categorize, external, other, added, removed
    assert counted.breakdowns == {
        0: {
            "en.wikipedia.org": [4, 1, 3, 1, 0, 0, 0, 0, 300 + 300 + 5230, 1014],
            "de.wikipedia.org": [2, 1, 0, 0, 1, 0, 0, 1, 0, 0],
        }
    }
    for start, wikis in counted.breakdowns.items():
        for name, values in wikis.items():
            assert values[0] == counted.counts[start][name] == sum(values[2:8])


def test_late_and_replayed_events_count_in_no_breakdown():
    since = Progress(0, 65_000)
    records = [(0, 61_000, EN, b"eb5"), (1, 1_000, EN, b"eb5"), (2, 62_000, EN, b"eh-7")]
    counted = tally(records, since, window_ms=W, grace_ms=G)
    assert counted.late == 1 and counted.replayed == 1
    assert counted.breakdowns == {60_000: {"en.wikipedia.org": [1, 0, 1, 0, 0, 0, 0, 0, 0, 7]}}

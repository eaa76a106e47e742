"""What counts as unusual: a wiki far above its own recent median, and big enough."""

from __future__ import annotations

from devtools.shapes import recorded_shares, windows_like_recording
from wikipulse.unusual import Rule, baseline, find_unusual

RULE = Rule(threshold=5.0, min_count=20, min_baseline_windows=10)
HOUR = 120  # 30-second windows


def test_the_recording_has_the_real_stream_s_shape():
    shares = recorded_shares()
    assert list(shares)[:3] == ["commons.wikimedia.org", "www.wikidata.org", "en.wikipedia.org"]
    assert 0.35 < shares["commons.wikimedia.org"] < 0.45


def test_a_bot_run_is_flagged_in_its_windows_and_not_before():
    """One wiki at 50 events/s for ten minutes, on top of the normal stream."""
    windows = windows_like_recording(HOUR + 40)
    wiki = "fr.wikipedia.org"
    assert wiki in recorded_shares()
    burst = range(HOUR + 10, HOUR + 30)  # 20 windows: ten minutes
    for i in burst:
        windows[i][wiki] = windows[i].get(wiki, 0) + 50 * 30
    flagged = {
        i: [u.server_name for u in find_unusual(windows[i], windows[i - HOUR : i], RULE)]
        for i in range(HOUR, HOUR + 40)
    }
    assert {i for i, names in flagged.items() if names} == set(burst)
    assert all(flagged[i] == [wiki] for i in burst)  # and no other wiki with it


def test_a_normal_window_of_a_big_wiki_is_not_flagged():
    windows = windows_like_recording(HOUR * 3)
    for i in range(HOUR, HOUR * 3):
        assert find_unusual(windows[i], windows[i - HOUR : i], RULE) == []


def test_small_counts_are_never_news_whatever_their_baseline():
    history = [{"tiny.wiki": 0}] * HOUR
    assert find_unusual({"tiny.wiki": 19}, history, RULE) == []
    [found] = find_unusual({"tiny.wiki": 20}, history, RULE)
    assert (found.count, found.baseline_median, found.score) == (20, 0, 20.0)


def test_without_an_hour_of_history_nothing_is_judged():
    assert find_unusual({"a.org": 1000}, [{"a.org": 1}] * 9, RULE) == []
    assert find_unusual({"a.org": 1000}, [{"a.org": 1}] * 10, RULE) != []


def test_the_baseline_is_robust_to_an_earlier_burst():
    median, scale = baseline([10] * 100 + [5000] * 10)
    assert median == 10 and scale < 5  # ten bursting windows of 110 move nothing
    assert baseline([0, 0, 0, 0])[1] == 1.0  # a floor, never a division by zero


def test_the_same_window_always_gives_the_same_answer():
    windows = windows_like_recording(HOUR + 1)
    windows[-1]["en.wikipedia.org"] = 2000
    first = find_unusual(windows[-1], windows[:-1], RULE)
    assert first == find_unusual(dict(windows[-1]), list(windows[:-1]), RULE)
    assert [u.server_name for u in first] == ["en.wikipedia.org"]

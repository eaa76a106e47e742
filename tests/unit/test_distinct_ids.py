"""The window's reduce: each event id counts once, checked against the recent ids."""

from functools import reduce

from prometheus_client import REGISTRY

from processor.windows import DistinctCounter, distinct_count


def window(*ids: str, keep: int = 100) -> int:
    """Feed ``ids`` through the window's reduce as Quix does, and return the final count."""
    recent = DistinctCounter(keep)
    state = reduce(recent.add, ids[1:], recent.initial(ids[0]))
    final = distinct_count({"start": 0, "end": 30_000, "value": state})
    assert (final["start"], final["end"]) == (0, 30_000)
    return int(final["value"])


def duplicates() -> float:
    value = REGISTRY.get_sample_value("wikipulse_processor_records_total", {"verdict": "duplicate"})
    return value or 0.0


def test_every_distinct_id_counts_once():
    assert window("a", "b", "c") == 3


def test_copies_count_once_and_are_accounted_for_as_duplicates():
    before = duplicates()
    assert window("a", "b", "a", "a", "b") == 2
    assert duplicates() - before == 3


def test_heartbeats_carry_no_id_and_count_nothing():
    assert window("") == 0  # a window only a heartbeat opened (the sink drops its key)
    assert window("", "a", "") == 1


def test_ids_that_contain_the_separator_cannot_match_other_ids():
    # "a\nb" must neither be taken for "a" + "b" nor hide a later "a" or "b"
    assert window("a", "b", "a\nb") == 3
    assert window("a\nb", "a", "b") == 3
    assert window("a\nb", "a\nb") == 1


def test_an_id_is_not_mistaken_for_part_of_a_longer_one():
    assert window("abc", "b", "ab", "bc") == 4


def test_a_copy_is_caught_while_its_original_is_among_the_last_keep_ids():
    ids = [f"id-{i}" for i in range(10)]
    assert window(*ids, "id-6", keep=4) == 10  # 6, 7, 8, 9 are remembered
    assert window(*ids, "id-5", keep=4) == 11  # 5 was forgotten: counted again


def test_the_state_stays_bounded_however_long_the_window_or_its_ids():
    recent = DistinctCounter(keep=1000)
    state = recent.initial("x" * 1_000_000)  # a hostile meta.id of 1 MB
    for i in range(20_000):
        state = recent.add(state, f"{i:036d}")
    count, ids = state
    assert count == 20_001
    assert len(ids) <= 1000 * 37 + 1  # far below a changelog record's 1 MB
    assert len(recent.initial("y" * 65)[1]) == len("\nsha1:") + 40 + 1

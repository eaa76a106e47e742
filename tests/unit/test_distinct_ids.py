"""The window aggregation: each event id counts once per window."""

from functools import reduce

from prometheus_client import REGISTRY

from processor.windows import add_id, distinct_count, first_id


def window(*ids: str) -> int:
    """Feed ``ids`` through the window's reduce as Quix does, and return the final count."""
    state = reduce(add_id, ids[1:], first_id(ids[0])) if ids else None
    final = distinct_count({"start": 0, "end": 30_000, "value": state})
    assert final["start"] == 0 and final["end"] == 30_000
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

"""The window aggregation: each event id counts once per window."""

from functools import reduce

from prometheus_client import REGISTRY

from processor.windows import DistinctIds


def window(*ids: str) -> int:
    """Feed ``ids`` through the aggregation as Quix would, and return the final count."""
    agg = DistinctIds()
    return int(agg.result(reduce(lambda old, new: agg.agg(old, new, 0), ids, agg.initialize())))


def duplicates() -> float:
    value = REGISTRY.get_sample_value("wikipulse_processor_records_total", {"verdict": "duplicate"})
    return value or 0.0


def test_every_distinct_id_counts_once():
    assert window() == 0
    assert window("a", "b", "c") == 3


def test_copies_count_once_and_are_accounted_for_as_duplicates():
    before = duplicates()
    assert window("a", "b", "a", "a", "b") == 2
    assert duplicates() - before == 3


def test_heartbeats_carry_no_id_and_count_nothing():
    assert window("", "a", "") == 1


def test_ids_that_contain_the_separator_cannot_match_other_ids():
    # "a\nb" must neither be taken for "a" + "b" nor hide a later "a" or "b"
    assert window("a", "b", "a\nb") == 3
    assert window("a\nb", "a", "b") == 3
    assert window("a\nb", "a\nb") == 1


def test_an_id_is_not_mistaken_for_part_of_a_longer_one():
    assert window("abc", "b", "ab", "bc") == 4

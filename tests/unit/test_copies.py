"""The producer's memory of what it wrote: a copy read again is recognised, within bounds."""

from producer.copies import RecentIds


def test_an_id_written_is_recognised_and_others_are_not():
    written = RecentIds(10, ["a", "b"])
    assert "a" in written and "b" in written and "c" not in written


def test_the_oldest_id_is_forgotten_first_and_a_repeat_becomes_the_newest():
    written = RecentIds(3, ["a", "b", "c"])
    written.add("a")  # "a" is the newest now, "b" the oldest
    written.add("d")
    assert "b" not in written and {"a", "c", "d"} <= {i for i in "abcd" if i in written}
    assert len(written) == 3


def test_an_id_that_did_not_reach_kafka_is_forgotten_to_be_written_again():
    written = RecentIds(10, ["a"])
    written.discard("a")
    written.discard("never-seen")  # no error: a failed delivery of a copy-free event
    assert "a" not in written


def test_a_hostile_id_of_a_megabyte_is_kept_as_a_digest():
    hostile = "x" * 1_000_000
    written = RecentIds(10, [hostile])
    assert hostile in written and "x" * 999_999 not in written
    assert all(len(kept) <= 64 for kept in written._ids)

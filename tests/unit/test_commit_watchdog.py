"""The commit watchdog (processor/watchdog.py): a checkpoint commit that outlasts its
limit while Kafka answers starts the processor over; one that waits for a Kafka that
does not answer keeps waiting."""

from __future__ import annotations

from dataclasses import dataclass, field

from processor.watchdog import CommitWatchdog

LIMIT = 120.0


@dataclass
class Watched:
    """A watchdog on a clock the test moves, and what it did."""

    kafka_up: bool = True
    now: float = 1000.0
    stuck: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.watchdog = CommitWatchdog(LIMIT, lambda: self.kafka_up, self.stuck.append, self.clock)

    def clock(self) -> float:
        return self.now

    def commit_that_takes(self, seconds: float) -> bool:
        """A guarded call during which ``seconds`` pass; whether a look inside it found
        the call stuck."""

        def commit() -> bool:
            self.now += seconds
            return self.watchdog.check()

        return self.watchdog.guard(commit)()


def test_a_commit_blocked_past_the_limit_while_kafka_answers_starts_over() -> None:
    watched = Watched()
    assert watched.commit_that_takes(LIMIT + 1)
    assert watched.stuck == [LIMIT + 1]


def test_a_commit_under_the_limit_is_left_alone() -> None:
    watched = Watched()
    assert not watched.commit_that_takes(LIMIT - 1)
    assert watched.stuck == []


def test_a_commit_that_returned_is_never_stuck_however_long_the_quiet_after() -> None:
    watched = Watched()
    watched.commit_that_takes(1)
    watched.now += 10 * LIMIT  # no checkpoint for a long time: an idle stream
    assert not watched.watchdog.check()
    assert watched.stuck == []


def test_a_commit_waiting_for_a_kafka_that_does_not_answer_keeps_waiting() -> None:
    watched = Watched(kafka_up=False)
    assert not watched.commit_that_takes(10 * LIMIT)
    assert watched.stuck == []


def test_it_starts_over_once_kafka_answers_while_the_commit_still_hangs() -> None:
    watched = Watched(kafka_up=False)

    def commit() -> list[bool]:
        watched.now += 2 * LIMIT
        looks = [watched.watchdog.check()]  # Kafka down: waits
        watched.kafka_up = True
        looks += [watched.watchdog.check(), watched.watchdog.check()]  # once, not twice
        return looks

    assert watched.watchdog.guard(commit)() == [False, True, False]
    assert watched.stuck == [2 * LIMIT]

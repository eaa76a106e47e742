"""Copies of events: the recent event ids the producer has written, so none is written twice.

Copies are made here, at the edge, and nowhere else, so they are dropped here:

- Wikimedia resumes a ``Last-Event-ID`` by timestamp, so every reconnect is answered
  with some events already read (those at and just before that time);
- after a crash, or a failed delivery, the stream is re-read from the last event that
  Kafka acknowledged *with every event before it* (`producer.resume`), so the events
  that reached Kafka after that point come again.

Either kind follows its original closely: by seconds for a reconnect, by at most
``MAX_IN_FLIGHT`` events for a re-read. So a bounded set of the most recent ids suffices
(``DEDUP_IDS``, far above both), and after a restart it is seeded from the same
partition tails the resume point is recovered from (`producer.tails.recover`), so a
copy of an event written by the previous process is recognised too.

With the raw topic free of copies, the processor's window is a plain count: a copy
would otherwise cost a state lookup for every event there (docs/decisions.md).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from wikipulse.events import digest_id

#: Ids longer than this are kept as their digest, so a hostile ``meta.id`` of a
#: megabyte costs 45 bytes here, like any other.
MAX_KEPT_ID = 64


class RecentIds:
    """The ``capacity`` most recently written event ids, oldest forgotten first.

    An `OrderedDict` used as an ordered set: membership, insertion and forgetting the
    oldest are O(1). (A plain dict is not: deleting its first key leaves a hole that
    every later ``next(iter(...))`` walks over until the dict is resized, which cost
    over ten times this per event; docs/decisions.md has the figures.)
    """

    def __init__(self, capacity: int, ids: Iterable[str] = ()) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()
        for event_id in ids:
            self.add(event_id)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, event_id: str) -> bool:
        return _kept(event_id) in self._ids

    def add(self, event_id: str) -> None:
        """Remember ``event_id`` as written (again: it becomes the newest)."""
        kept = _kept(event_id)
        if kept in self._ids:
            self._ids.move_to_end(kept)
            return
        self._ids[kept] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)

    def discard(self, event_id: str) -> None:
        """Forget ``event_id``: it did not reach Kafka, and must be written when read again."""
        self._ids.pop(_kept(event_id), None)


def _kept(event_id: str) -> str:
    if len(event_id) > MAX_KEPT_ID:
        return digest_id(event_id.encode())
    return event_id

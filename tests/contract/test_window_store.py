"""The Redis contract (`wikipulse.store`), against a real Redis and nothing else.

Every reader relies on these rules; the processor's crash recovery relies on the
fence that applies each batch once. Each test writes through `WindowStore.write` as the
processor's sink does, then looks at Redis directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from devtools.shapes import windows_like_recording, write_complete
from tests.support.names import Names
from wikipulse.store.keys import KeyLayout
from wikipulse.store.values import Breakdown
from wikipulse.store.window_store import WindowStore
from wikipulse.store.writes import Batch, Progress, StaleProgress
from wikipulse.unusual import Rule

WINDOW = 30_000
S0 = 1_767_225_600_000  # a window start (2026-01-01T00:00:00Z)
S1, S2 = S0 + WINDOW, S0 + 2 * WINDOW


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


@pytest.fixture
def store(client: redis.Redis) -> WindowStore:
    return WindowStore(client, KeyLayout(Names.fresh().prefix))


def write(
    store: WindowStore,
    partition: int,
    closed_end: int,
    windows=None,
    partitions=2,
    progress: tuple[Progress, Progress] | None = None,
    partial: tuple[int, int] | None = None,
) -> list[int]:
    """The starts that became complete."""
    since, new = progress or (None, None)
    batch = Batch(partition, closed_end, windows or {}, since, new, partial)
    return store.write(batch, partitions=partitions, window_ms=WINDOW, ttl_seconds=3600).completed


@pytest.fixture
def round_trips(client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """``round_trips(ask)``: how many times ``ask`` sent to Redis and waited for the
    answer (a pipeline or a transaction is one), and what it returned."""
    client.ping()  # the connection's own handshake is not the reader's
    sent: list[bytes] = []
    send = redis.connection.AbstractConnection.send_packed_command

    def counted(connection: Any, command: Any, check_health: bool = True) -> None:
        sent.append(command)
        send(connection, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)

    def measure(ask: Callable[[], object]) -> tuple[int, object]:
        sent.clear()
        answer = ask()
        return len(sent), answer

    return measure


def snapshot(client: redis.Redis, keys: KeyLayout) -> dict[bytes, object]:
    """Every key of one prefix with its content, to compare whole states."""
    state: dict[bytes, object] = {}
    for key in client.scan_iter(f"{keys.prefix}*"):
        kind = client.type(key)
        if kind == b"zset":
            state[key] = client.zrange(key, 0, -1, withscores=True)
        elif kind == b"hash":
            state[key] = client.hgetall(key)
    return state


def test_a_window_is_complete_only_when_every_partition_closed_past_it(store, client):
    assert write(store, 0, S1, {S0: {"en.wikipedia.org": 3}}) == []
    assert store.latest() is None and store.leaderboard(S0, 10) is None
    assert client.zrange(store.keys.source("").pending, 0, -1) == [str(S0).encode()]
    assert write(store, 1, S1, {S0: {"www.wikidata.org": 5}}) == [S0]
    assert store.latest() == S0
    board = store.leaderboard(S0, 10)
    assert board is not None
    assert board.rows == [("www.wikidata.org", 5), ("en.wikipedia.org", 3)]
    assert client.zcard(store.keys.source("").pending) == 0


def test_counts_add_up_in_the_open_window_and_become_final_at_the_closed_mark(store, client):
    write(store, 0, S0, {S0: {"en.wikipedia.org": 2}}, partitions=1)
    write(store, 0, S0, {S0: {"en.wikipedia.org": 1, "de.wikipedia.org": 4}}, partitions=1)
    assert client.exists(store.keys.window(S0)) == 0  # open: no reader sees it
    assert write(store, 0, S1, {S1: {"en.wikipedia.org": 7}}, partitions=1) == [S0]
    board = store.leaderboard(S0, 10)
    assert board is not None
    assert board.rows == [("de.wikipedia.org", 4), ("en.wikipedia.org", 3)]
    assert store.open_windows(0) == {S1}
    open_s1 = store.keys.source("").open_window(0, S1)
    assert client.hgetall(open_s1) == {b"en.wikipedia.org": b"7"}


def test_a_batch_applies_once_the_same_progress_is_refused_after(store, client):
    """After a crash Quix re-reads the records since the last commit; a replica that
    lost the partition may still try to write them."""
    batch = {S0: {"en.wikipedia.org": 3, "de.wikipedia.org": 1}, S1: {"en.wikipedia.org": 2}}
    moves = (Progress(), Progress(41, S2 + 5_000))
    write(store, 0, S2, batch, progress=moves)
    write(store, 1, S2)
    before = snapshot(client, store.keys)
    with pytest.raises(StaleProgress) as refused:
        write(store, 0, S2, batch, progress=moves)
    assert refused.value.stored_offset == 41
    assert snapshot(client, store.keys) == before
    assert client.zscore(store.keys.window(S0), "en.wikipedia.org") == 3
    assert store.progress(0) == Progress(41, S2 + 5_000)
    assert store.progress(0, source="another-topic") == Progress()


def test_a_partition_s_closed_mark_never_moves_back(store, client):
    write(store, 0, S2)
    write(store, 0, S1, {S0: {"en.wikipedia.org": 3}})  # a late replay of an older batch
    assert int(client.hget(store.keys.source("").closed, "0")) == S2


def test_partitions_finalizing_out_of_order_complete_each_window_once(store, client):
    announced: list[bytes] = []
    pubsub = client.pubsub()
    pubsub.subscribe(store.keys.complete)
    pubsub.get_message(timeout=1)  # the subscription confirmation
    write(store, 1, S2, {S0: {"b.org": 1}, S1: {"b.org": 2}})  # partition 1 runs ahead
    assert store.latest() is None
    write(store, 0, S1, {S0: {"a.org": 4}})
    assert store.starts(10) == [S0]
    write(store, 0, S2, {S1: {"a.org": 6}})
    assert store.starts(10) == [S0, S1]
    while (message := pubsub.get_message(timeout=1)) is not None:
        announced.append(message["data"])
    pubsub.close()
    assert announced == [str(S0).encode(), str(S1).encode()]
    assert [(w.start, w.total, w.wikis) for w in store.windows(10)] == [(S1, 8, 2), (S0, 5, 2)]


def test_whether_a_window_is_complete_is_asked_in_one_round_trip(store, client, round_trips):
    """Every reader of one window asks it first (a leaderboard, a breakdown, what is
    unusual): the index and the window's counts are read together, at one instant."""
    write(store, 0, S1, {S0: {"en.wikipedia.org": 3}}, partitions=1)
    assert round_trips(lambda: store.is_complete(S0)) == (1, True)
    assert round_trips(lambda: store.is_complete(S1)) == (1, False)  # never published
    client.delete(store.keys.window(S0))  # its counts expired, the index not trimmed yet
    assert round_trips(lambda: store.is_complete(S0)) == (1, False)


def test_a_window_read_while_redis_lacks_it_is_read_again_once_it_is_there(store, client):
    """Found in review: a reader lists a window complete, Redis fails over to a replica
    that lacks it (its set and its index entry, written in one step), and the reader
    asks for its summary and counts there. What it reads then (nothing) is not the
    window's final word, and must not be kept as if it were: once the processor has
    recounted the window on the new primary, readers give its real counts."""
    write(store, 0, S1, {S0: {"en.wikipedia.org": 3}}, partitions=1)
    assert store.starts(10) == [S0]  # listed complete; then a failover to a replica
    client.delete(*client.keys(f"{store.keys.prefix}*"))  # that had none of it
    assert store.summary(S0).total == 0 and store.counts([S0]) == {S0: {}}
    # what is not complete there is not shown as complete, with empty rows
    assert store.leaderboard(S0, 10) is None
    assert store.breakdown(S0) is None and store.breakdowns(S0, ["en.wikipedia.org"]) is None
    assert store.unusual(S0, 3_600_000, Rule()) is None
    # the processor counts it again on the new primary
    write(store, 0, S1, {S0: {"en.wikipedia.org": 3}}, partitions=1)
    assert store.starts(10) == [S0]
    assert store.summary(S0).total == 3
    assert store.counts([S0]) == {S0: {"en.wikipedia.org": 3}}
    board = store.leaderboard(S0, 10)
    assert board is not None and board.rows == [("en.wikipedia.org", 3)]
    assert board.window.total == 3


def test_windows_older_than_the_ttl_leave_the_index_and_their_keys_expire(store, client):
    old, new = S0, S0 + 3600 * 1000 + WINDOW  # the second starts more than the TTL later
    write(store, 0, old + WINDOW, {old: {"a.org": 1}}, partitions=1)
    assert 0 < client.ttl(store.keys.window(old)) <= 3600
    write(store, 0, new + WINDOW, {new: {"a.org": 2}}, partitions=1)
    assert store.starts(10) == [new]


def test_readers_take_window_length_and_partitions_from_what_the_processor_recorded(store):
    assert store.recorded() is None
    store.write(
        Batch(0, S0 + 10_000, {S0: {"a.org": 7}}), partitions=1, window_ms=10_000, ttl_seconds=3600
    )
    assert store.recorded() == (10_000, 1)
    assert store.window_ms() == 10_000
    assert store.windows(1)[0].end == S0 + 10_000
    assert store.health().window_seconds == 10


def test_a_wiki_counted_in_two_partitions_adds_up(store):
    """Another tool may key a wiki's records differently; each partition counts what it
    holds, and finalizing adds (it used to overwrite: the last partition won)."""
    write(store, 0, S1, {S0: {"en.wikipedia.org": 10}})
    write(store, 1, S1, {S0: {"en.wikipedia.org": 3}})
    board = store.leaderboard(S0, 10)
    assert board is not None and board.rows == [("en.wikipedia.org", 13)]


def test_a_complete_window_never_changes_and_the_events_are_reported_dropped(store, client):
    write(store, 0, S1, {S0: {"en.wikipedia.org": 2}}, partitions=1)
    before = snapshot(client, store.keys)
    written = store.write(
        Batch(0, S1, {S0: {"en.wikipedia.org": 5}}),
        partitions=1,
        window_ms=WINDOW,
        ttl_seconds=3600,
        source="a-topic-created-anew",
    )
    assert written.dropped == 5 and written.completed == []
    assert client.zscore(store.keys.window(S0), "en.wikipedia.org") == 2
    published = [store.keys.window(S0).encode(), store.keys.complete.encode()]
    assert {k: before[k] for k in published} == {
        k: snapshot(client, store.keys)[k] for k in published
    }


def test_windows_a_partial_mark_overlaps_are_published_partial_never_complete(store, client):
    write(store, 0, S2, {S0: {"a.org": 1}, S1: {"a.org": 2}}, partitions=2, partial=(0, S1))
    announced = store.subscribe()
    announced.get_message(timeout=1)
    write(store, 1, S2, {S1: {"b.org": 1}}, partitions=2)
    assert store.starts(10) == [S1]
    assert store.partial_starts(10) == [S0]
    assert store.leaderboard(S0, 10) is None
    assert client.zscore(store.keys.window(S0), "a.org") == 1  # the counts it has
    assert [m["data"] for m in iter(lambda: announced.get_message(timeout=0.5), None)] == [
        str(S1).encode()
    ]
    announced.close()
    assert client.hlen(store.keys.source("").partial) == 0  # no window left to mark


def test_history_has_a_zero_where_a_wiki_had_no_event(store):
    write(store, 0, S2, {S0: {"a.org": 2, "b.org": 1}, S1: {"b.org": 4}}, partitions=1)
    assert store.history("a.org", 10) == [(S0, 2), (S1, 0)]
    assert store.history("b.org", 1) == [(S1, 4)]


def test_names_are_stored_verbatim(store):
    hostile = '<script>alert(1)</script>"\n\x7f'
    write(store, 0, S1, {S0: {hostile: 1}}, partitions=1)
    board = store.leaderboard(S0, 10)
    assert board is not None and board.rows == [(hostile, 1)]


def test_unusual_wikis_are_judged_from_complete_windows_of_the_hour_before(store):
    windows = windows_like_recording(121)
    windows[-1]["fr.wikipedia.org"] = windows[-1].get("fr.wikipedia.org", 0) + 1500
    starts = write_complete(store, S0 + 120 * WINDOW, windows)
    report = store.unusual(starts[-1], 3600 * 1000, Rule())
    assert report is not None and report.baseline_windows == 120
    assert [u.server_name for u in report.wikis] == ["fr.wikipedia.org"]
    assert store.unusual(starts[-1], 3600 * 1000, Rule()) == report  # same window, same answer
    calm = store.unusual(starts[-2], 3600 * 1000, Rule())
    assert calm is not None and calm.wikis == [] and calm.baseline_windows == 119
    assert store.unusual(starts[-1] + WINDOW, 3600 * 1000, Rule()) is None  # not complete


# -- breakdowns: beside the counts, through the same fenced step ---------------------------

#: count, bot, edit, new, log, categorize, external, other, added, removed
EN_P0 = [3, 2, 2, 1, 0, 0, 0, 0, 5300, 14]
EN_P1 = [2, 0, 1, 0, 1, 0, 0, 0, 10, 0]
DE_P1 = [1, 1, 0, 0, 0, 0, 0, 1, 0, 0]


def write_parts(store, partition, closed_end, counts, parts, progress=None, partitions=2):
    since, new = progress or (None, None)
    batch = Batch(partition, closed_end, counts, since, new, None, parts)
    return store.write(batch, partitions=partitions, window_ms=WINDOW, ttl_seconds=3600)


def test_a_window_s_breakdowns_are_published_with_its_counts_in_the_same_step(store, client):
    write_parts(store, 0, S1, {S0: {"en.wikipedia.org": 3}}, {S0: {"en.wikipedia.org": EN_P0}})
    assert client.exists(store.keys.breakdown(S0)) == 0  # final in one partition only
    assert store.breakdown(S0) is None
    written = write_parts(
        store,
        1,
        S1,
        {S0: {"en.wikipedia.org": 2, "de.wikipedia.org": 1}},
        {S0: {"en.wikipedia.org": EN_P1, "de.wikipedia.org": DE_P1}},
    )
    assert written.completed == [S0]
    en = store.breakdown(S0, "en.wikipedia.org")
    assert en is not None and (en.count, en.bot, en.human) == (5, 2, 3)
    assert en.types == {"edit": 3, "new": 1, "log": 1, "categorize": 0, "external": 0, "other": 0}
    assert (en.added, en.removed, en.net_bytes, en.changed_bytes) == (5310, 14, 5296, 5324)
    every = store.breakdown(S0)  # all wikis
    assert every is not None and (every.count, every.bot, every.types["other"]) == (6, 3, 1)
    assert every.count == store.summary(S0).total
    for name, score in client.zrange(store.keys.window(S0), 0, -1, withscores=True):
        found = store.breakdown(S0, name.decode())
        assert found is not None and found.count == score == sum(found.types.values())
    assert store.breakdown(S0, "nowhere.org") == Breakdown()  # complete: it had none
    assert 0 < client.ttl(store.keys.breakdown(S0)) <= 3600
    assert not list(client.scan_iter(f"{store.keys.source('').base}*breakdown*"))  # no leftovers


def test_a_replayed_batch_never_adds_its_breakdowns_twice(store, client):
    moves = (Progress(), Progress(7, S1 + 5_000))
    counts, parts = {S0: {"en.wikipedia.org": 3}}, {S0: {"en.wikipedia.org": EN_P0}}
    write_parts(store, 0, S0, counts, parts, progress=moves, partitions=1)
    before = snapshot(client, store.keys)
    with pytest.raises(StaleProgress):
        write_parts(store, 0, S0, counts, parts, progress=moves, partitions=1)
    assert snapshot(client, store.keys) == before
    write_parts(store, 0, S1, {}, {}, progress=(moves[1], Progress(8, S1 + 5_000)), partitions=1)
    assert store.breakdown(S0, "en.wikipedia.org") == Breakdown.decode(
        ",".join(map(str, EN_P0)).encode()
    )


def test_a_complete_window_s_breakdowns_never_change(store, client):
    write_parts(
        store, 0, S1, {S0: {"en.wikipedia.org": 3}}, {S0: {"en.wikipedia.org": EN_P0}}, partitions=1
    )
    before = client.hgetall(store.keys.breakdown(S0))
    store.write(
        Batch(0, S1, {S0: {"en.wikipedia.org": 2}}, breakdowns={S0: {"en.wikipedia.org": EN_P1}}),
        partitions=1,
        window_ms=WINDOW,
        ttl_seconds=3600,
        source="a-topic-created-anew",
    )
    assert client.hgetall(store.keys.breakdown(S0)) == before
    assert not list(client.scan_iter(f"{store.keys.prefix}src:*breakdown*"))

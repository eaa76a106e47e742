"""``wikipulse``: Redis failing a command is one red line and exit status 2, whichever
command it was (`dashboard.cli.reads_redis`), while ``top --watch`` waits out Redis
going away and draws on. The commands against a real Redis: tests/integration."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from dashboard import cli
from wikipulse.store.reads import Leaderboard, WindowSummary
from wikipulse.store.window_store import WindowStore

S = 1_700_000_010_000
BOARD = Leaderboard(WindowSummary(S, S + 30_000, 7, 2), [("en.wikipedia.org", 5), ("b.org", 2)])


class Refused(redis.ConnectionError):
    def __init__(self) -> None:
        super().__init__("Error 111 connecting to localhost:1. Connection refused.")


class FakeStore:
    """A `WindowStore` as far as the commands see it: each read answers or raises what
    ``failures`` holds next for it."""

    def __init__(self, failures: dict[str, list[BaseException]] | None = None) -> None:
        self.failures = failures or {}
        self.closed = False
        self.pubsubs: list[FakePubSub] = []

    def _read(self, name: str) -> None:
        pending = self.failures.get(name)
        if pending:
            raise pending.pop(0)

    def latest(self) -> int | None:
        self._read("latest")
        return S

    def leaderboard(self, start: int, limit: int) -> Leaderboard | None:
        self._read("leaderboard")
        return BOARD

    def unusual(self, *args: Any) -> None:
        self._read("unusual")
        return None

    def resolution_ms(self, resolution: str) -> int:
        self._read("resolution_ms")
        return 30_000

    def series(self, *args: Any) -> list[Any]:
        self._read("series")
        return []

    def subscribe(self) -> FakePubSub:
        self._read("subscribe")
        pubsub = FakePubSub(self)
        self.pubsubs.append(pubsub)
        return pubsub

    def close(self) -> None:
        self.closed = True


class FakePubSub:
    """Announces one window, then Ctrl-C."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.messages: Iterator[dict[str, Any] | None] = iter([{"data": str(S)}])

    def get_message(self, **_: Any) -> dict[str, Any] | None:
        self.store._read("get_message")
        found = next(self.messages, None)
        if found is None:
            raise KeyboardInterrupt
        return found

    def close(self) -> None:
        pass


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> FakeStore:
    fake = FakeStore()
    monkeypatch.setattr(WindowStore, "connect", lambda *a, **k: fake)
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    monkeypatch.setenv("COLUMNS", "140")
    return fake


def exit_status(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as ended:
        cli.main(argv)
    code = ended.value.code
    assert isinstance(code, int)
    return code


@pytest.mark.parametrize(
    ("argv", "read"),
    [
        (["top"], "latest"),
        (["top", "--window", str(S)], "leaderboard"),
        (["top", "--watch"], "latest"),
        (["unusual"], "latest"),
        (["unusual", "--window", str(S)], "unusual"),
        (["history", "all"], "resolution_ms"),
        (["history", "all", "--resolution", "5m"], "series"),
    ],
)
def test_redis_failing_any_command_is_one_red_line_and_exit_status_2(store, capsys, argv, read):
    store.failures[read] = [Refused()]
    assert exit_status(argv) == 2
    out = capsys.readouterr().out
    assert out.strip().splitlines() == [f"cannot read Redis: Refused: {Refused()}"]
    assert store.closed


def test_a_command_redis_answers_closes_its_store(store, capsys):
    assert exit_status(["top"]) == 0
    assert "en.wikipedia.org" in capsys.readouterr().out
    assert store.closed


def test_watch_waits_out_redis_going_away_and_draws_on(store, capsys):
    """A failover: the subscription and a read fail, are made again, and the windows
    announced after are drawn."""
    store.failures["subscribe"] = [Refused()]
    store.failures["get_message"] = [redis.TimeoutError("Timeout reading from socket")]
    assert exit_status(["top", "--watch"]) == 0  # Ctrl-C
    out = capsys.readouterr().out
    assert out.count("reconnecting") == 2
    assert "Redis unavailable (Refused)" in out and "Redis unavailable (TimeoutError)" in out
    assert len(store.pubsubs) == 2  # subscribed again after the read failed
    assert "en.wikipedia.org" in out
    assert store.closed


def test_watch_stops_on_what_waiting_cannot_fix(store, capsys):
    store.failures["get_message"] = [redis.ResponseError("WRONGTYPE Operation against a key")]
    assert exit_status(["top", "--watch"]) == 2
    assert "cannot read Redis: ResponseError: WRONGTYPE" in capsys.readouterr().out
    assert store.closed

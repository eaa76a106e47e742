"""Fault plans: what the replay server does to a connection, and what it recorded of it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Fault:
    """What the server does to one connection (tests queue them with `ReplayServer.plan`).

    kind: ``disconnect`` after ``after`` events; ``truncate`` (half a frame, then close);
    ``stall`` (go silent for ``seconds``, then close); ``status`` (answer ``code`` with
    an optional ``Retry-After`` and no stream); ``slow`` (answer 200, then send nothing
    for ``seconds`` before streaming as usual, as a server still seeking the resume
    point after an outage).
    """

    kind: str
    after: int = 0
    seconds: float = 0.0
    code: int = 200
    retry_after: int | None = None


@dataclass
class Connection:
    """What a client sent when it connected, and what it got (tests assert on it).

    ``fault`` is the planned fault this connection got, and ``fault_at`` when the server
    began it (monotonic): a test proves its fault happened from these.
    """

    last_event_id: str | None
    user_agent: str | None
    status: int
    at: float = field(default_factory=time.monotonic)
    fault: Fault | None = None
    fault_at: float | None = None
    since: str | None = None  # the ``since`` query parameter, as sent
    offset: int | None = None  # the first offset served

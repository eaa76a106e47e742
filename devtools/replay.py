"""A local SSE server that speaks Wikimedia's EventStreams wire format.

Wikimedia is out of reach in tests, offline demos and CI, so this server replays
recorded ``recentchange`` events the way ``stream.wikimedia.org`` serves them::

    event: message
    id: [{"topic":"replay.recentchange","partition":0,"offset":42}]
    data: {...one JSON object...}

Like the real service it keeps a log of events that grows on its own clock, whether or
not anybody is connected, and honours ``Last-Event-ID``: a client that reconnects gets
every event after the one it names, so gaps can be tested for (``resume_repeats``
repeats that many events before it too, as Wikimedia does: it resumes by the named
event's timestamp, so copies of the last events read come again). Without one, the
``since`` query parameter (epoch ms or ISO 8601) starts at the first event of that time
or later, and at the oldest event it has when ``since`` is older than that, as
Wikimedia serves history within its retention. It refuses clients without a
descriptive User-Agent with 403, as Wikimedia does.

``--history 1h`` fills the log with an hour of past events before the live ones start
(at ``--history-rate``), so a first start that asks for ``since`` gets a backfill.

``--restamp`` gives each event the time it is appended (``meta.dt``, ``timestamp``),
so the recording behaves like a live stream; ``--loop`` replays it forever, with fresh
``meta.id`` values on each pass. Tests also script per-connection faults (`devtools.faults`).

    python -m devtools.replay --file devtools/data/recentchange-2026-06-20.sse \
        --rate 50 --restamp --loop
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import secrets
import signal
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from devtools.faults import Connection, Fault
from devtools.recordings import load_events, restamp
from wikipulse.durations import duration_ms

log = logging.getLogger(__name__)

TOPIC = "replay.recentchange"
_GENERIC_AGENT = re.compile(
    r"^(python-requests|python-httpx|python-urllib|curl|wget|go-http-client|java)/[\w.]+$",
    re.IGNORECASE,
)


@dataclass
class ReplayServer:
    """An SSE server on 127.0.0.1 whose event log tests can append to and inspect."""

    host: str = "127.0.0.1"
    port: int = 0
    keepalive_seconds: float = 0.0
    resume_repeats: int = 0
    #: added to every pass number that `restamp` makes ids from: a server started again
    #: with another value issues none of the ids of the last one (as Wikimedia never does)
    first_cycle: int = 0
    log: list[bytes] = field(default_factory=list)
    plan: list[Fault] = field(default_factory=list)
    connections: list[Connection] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        self._closed = threading.Event()
        self._httpd = ThreadingHTTPServer((self.host, self.port), _handler_for(self))
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v2/stream/recentchange"

    def start(self) -> ReplayServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closed.set()
        with self._cond:
            self._cond.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def append(self, data: bytes) -> int:
        """Add one event to the log; returns its offset."""
        with self._cond:
            self.log.append(data)
            self._cond.notify_all()
            return len(self.log) - 1

    def extend(self, events: Iterable[bytes]) -> None:
        with self._cond:
            self.log.extend(events)
            self._cond.notify_all()

    def fill_history(self, events: list[bytes], seconds: float, rate: float) -> int:
        """Append ``seconds`` of past events at ``rate`` per second, stamped from
        ``now - seconds`` on, with ``meta.id`` values no live pass will repeat."""
        count = int(seconds * rate)
        begin = datetime.now(UTC).timestamp() - seconds
        history = [
            restamp(
                events[i % len(events)],
                datetime.fromtimestamp(begin + i / rate, UTC),
                HISTORY_CYCLES + self.first_cycle + i // len(events),
            )
            for i in range(count)
        ]
        self.extend(history)
        return count

    def play(
        self,
        events: list[bytes],
        rate: float,
        restamp_events: bool,
        loop: bool = False,
        stop: threading.Event | None = None,
    ) -> None:
        """Append ``events`` at ``rate`` per second (0: all at once), in this thread."""
        cycle = 0
        start = time.monotonic()
        sent = 0
        while True:
            for data in events:
                if (stop is not None and stop.is_set()) or self._closed.is_set():
                    return
                if rate > 0:
                    delay = start + sent / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                if restamp_events:
                    data = restamp(data, datetime.now(UTC), self.first_cycle + cycle)
                self.append(data)
                sent += 1
            cycle += 1
            if not loop:
                return

    def _next_fault(self) -> Fault | None:
        with self._cond:
            return self.plan.pop(0) if self.plan else None

    def _wait_for(self, offset: int, timeout: float) -> bool:
        with self._cond:
            if len(self.log) > offset:
                return True
            self._cond.wait(timeout)
            return len(self.log) > offset


#: Cycle numbers of history events, far beyond any live pass (see `restamp`).
HISTORY_CYCLES = 1_000_000


def parse_since(value: str) -> int | None:
    """``since`` as epoch ms: Wikimedia takes epoch milliseconds or an ISO 8601 time."""
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def event_time_ms(data: bytes) -> int | None:
    """An event's ``meta.dt`` as epoch ms (None for what has none)."""
    try:
        obj = orjson.loads(data)
        when = datetime.fromisoformat(obj["meta"]["dt"].replace("Z", "+00:00"))
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError):
        return None
    return int(when.timestamp() * 1000)


def since_offset(log: list[bytes], since_ms: int) -> tuple[int, int | None]:
    """The first offset whose event happened at ``since_ms`` or later, and the oldest
    event time in the log (events without a time are served with their neighbours)."""
    oldest: int | None = None
    for offset, data in enumerate(log):
        when = event_time_ms(data)
        if when is None:
            continue
        if oldest is None:
            oldest = when
        if when >= since_ms:
            return offset, oldest
    return len(log), oldest


def frame(offset: int, data: bytes) -> bytes:
    """One event in Wikimedia's wire format."""
    sse_id = orjson.dumps([{"topic": TOPIC, "partition": 0, "offset": offset}])
    lines = b"".join(b"data: " + line + b"\n" for line in data.split(b"\n"))
    return b"event: message\nid: " + sse_id + b"\n" + lines + b"\n"


def resume_offset(last_event_id: str | None) -> int:
    """First offset to send for a ``Last-Event-ID`` (0 without one, or an unknown one)."""
    if not last_event_id:
        return -1
    try:
        ids: Any = orjson.loads(last_event_id)
        return int(next(i["offset"] for i in ids if i.get("topic") == TOPIC)) + 1
    except (orjson.JSONDecodeError, StopIteration, KeyError, TypeError, ValueError):
        return -1


def _handler_for(server: ReplayServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format, *args)

        def do_GET(self) -> None:
            agent = self.headers.get("User-Agent")
            last_id = self.headers.get("Last-Event-ID")
            fault = server._next_fault()
            status = 200
            if not agent or _GENERIC_AGENT.match(agent.strip()):
                status = 403
            elif fault is not None and fault.kind == "status":
                status = fault.code
            connection = Connection(last_id, agent, status, fault=fault)
            if fault is not None and fault.kind == "status":
                connection.fault_at = connection.at
            server.connections.append(connection)
            if status != 200:
                self.send_response(status)
                if fault is not None and fault.retry_after is not None:
                    self.send_header("Retry-After", str(fault.retry_after))
                body = b"Please set a descriptive User-Agent.\n" if status == 403 else b""
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            offset = resume_offset(last_id)
            resumed = offset >= 0
            with server._cond:
                end = len(server.log)
            since = parse_qs(urlsplit(self.path).query).get("since", [None])[0]
            since_ms = parse_since(since) if since is not None else None
            if offset < 0 and since_ms is not None:  # history, as far as the log has it
                with server._cond:
                    history = server.log[:end]
                offset, oldest = since_offset(history, since_ms)
                if oldest is not None and since_ms < oldest:
                    log.info(
                        "since %s is older than the oldest event (%s); serving from offset 0",
                        since,
                        datetime.fromtimestamp(oldest / 1000, UTC).isoformat(),
                    )
            elif offset < 0:  # no (usable) id: start at "now", as Wikimedia does
                offset = end
            elif offset > end:
                # an id from before this server restarted, beyond what it has: serve from
                # the nearest point it has, as Wikimedia serves a resume point it no
                # longer or not yet holds, instead of keeping the client waiting for it
                log.info(
                    "Last-Event-ID offset %d is beyond the log (%d); serving from %d",
                    offset - 1,
                    end,
                    end,
                )
                offset = end
            if resumed and server.resume_repeats:
                offset = max(0, offset - server.resume_repeats)  # resumed "by timestamp"
            connection.since, connection.offset = since, offset
            log.info("client %r starts at offset %d", agent, offset)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._stream(offset, fault, connection)

        def _stream(self, offset: int, fault: Fault | None, connection: Connection) -> None:
            if fault is not None and fault.kind == "slow":
                connection.fault_at = time.monotonic()
                server._closed.wait(fault.seconds)
                fault = None  # then a connection like any other
            limit = fault.after if fault is not None else None  # events before the fault
            sent = 0
            idle_since = time.monotonic()
            while not server._closed.is_set():
                if limit is not None and sent >= limit:
                    assert fault is not None
                    self._fault(fault, offset, connection)
                    return
                if not server._wait_for(offset, timeout=0.2):
                    ka = server.keepalive_seconds
                    if ka and time.monotonic() - idle_since >= ka:
                        self.wfile.write(b":\n")
                        self.wfile.flush()
                        idle_since = time.monotonic()
                    continue
                size = 500 if limit is None else min(500, limit - sent)
                with server._cond:
                    batch = server.log[offset : offset + size]
                self.wfile.write(b"".join(frame(offset + i, d) for i, d in enumerate(batch)))
                self.wfile.flush()
                offset += len(batch)
                sent += len(batch)
                idle_since = time.monotonic()

        def _fault(self, fault: Fault, offset: int, connection: Connection) -> None:
            connection.fault_at = time.monotonic()
            if fault.kind == "truncate" and server._wait_for(offset, timeout=5):
                whole = frame(offset, server.log[offset])
                self.wfile.write(whole[: len(whole) // 2])
                self.wfile.flush()
            elif fault.kind == "stall":
                server._closed.wait(fault.seconds)
            self.connection.shutdown(socket.SHUT_RDWR)

    return Handler


def duration_seconds(text: str) -> float:
    """``90s``, ``30m``, ``1h``, ``2d`` (or ``0``) as seconds, read as ``BACKFILL`` is."""
    if text.strip() == "0":
        return 0.0
    found = duration_ms(text)
    if found is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30m, 1h)")
    return found / 1000


def main(argv: list[str] | None = None) -> None:
    """``python -m devtools.replay``: serve a recording as a live Wikimedia stream."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, required=True, help="SSE capture or JSON lines")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--rate", type=float, default=50.0, help="events/s; 0 = all at once")
    parser.add_argument("--restamp", action="store_true", help="stamp events with now")
    parser.add_argument("--loop", action="store_true", help="replay forever")
    parser.add_argument("--keepalive", type=float, default=0.0, help="':' comment every N s")
    parser.add_argument(
        "--resume-repeats",
        type=int,
        default=0,
        help="events before a Last-Event-ID sent again on resume, as Wikimedia's resume by time",
    )
    parser.add_argument(
        "--history", default="0", help="past events to start with, e.g. 1h or 30m (default none)"
    )
    parser.add_argument("--history-rate", type=float, default=10.0, help="their events/s")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    events = load_events(args.file)
    # SIGTERM ends it like Ctrl-C: as PID 1 in a container, a signal without a handler
    # is ignored, and every `docker stop` would wait for its SIGKILL
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = ReplayServer(
        host=args.host,
        port=args.port,
        keepalive_seconds=args.keepalive,
        resume_repeats=args.resume_repeats,
        # fresh ids on every start: a restarted replay must not send what the producer
        # already wrote under the same ids (it would drop them as copies)
        first_cycle=secrets.randbelow(2**40) + 1,
    )
    history = duration_seconds(args.history)
    if history:
        filled = server.fill_history(events, history, args.history_rate)
        log.info("history: %d events over the past %s", filled, args.history)
    server.start()
    log.info("serving %d recorded events on %s", len(events), server.url)
    try:
        server.play(events, args.rate, args.restamp, loop=args.loop, stop=stop)
        while not stop.wait(0.5):  # keep serving the log after a single pass
            pass
    finally:
        server.stop()
    log.info("stopped")


if __name__ == "__main__":
    main()

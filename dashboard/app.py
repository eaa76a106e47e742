"""The dashboard: one page, a JSON API with an OpenAPI description, live updates by SSE.

Read-only: every route is a GET and nothing writes to Redis. Everything that came from
the stream (server names) is untrusted: the page renders it with ``textContent`` only,
and a Content-Security-Policy forbids inline scripts, so a name like ``<script>`` stays
text. The front end is plain files under ``static/`` (no CDN, no build step).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path as FilePath
from typing import Annotated

import redis.asyncio as redis
from fastapi import FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from dashboard.settings import DashboardSettings
from wikipulse import __version__
from wikipulse.redis_client import connect_async
from wikipulse.store.history import TooManyPoints
from wikipulse.store.values import ALL_WIKIS, RESOLUTIONS, ROLLUPS, WINDOW_RESOLUTION, Breakdown
from wikipulse.store.window_store import WindowStore

#: The most points one series answer holds (a day of 30 s windows fits).
MAX_POINTS = 3000
#: What a ``resolution`` in a request may be.
RESOLUTION = "^(" + "|".join(RESOLUTIONS) + ")$"

log = logging.getLogger(__name__)
STATIC = FilePath(__file__).parent / "static"
KEEPALIVE_SECONDS = 15.0

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


class Window(BaseModel):
    start: int
    end: int
    total: int
    wikis: int


class Entry(BaseModel):
    server_name: str
    count: int


class WindowDetail(Window):
    leaderboard: list[Entry]


class Point(BaseModel):
    start: int
    count: int


class WikiHistory(BaseModel):
    server_name: str
    history: list[Point]


class UnusualWiki(BaseModel):
    server_name: str
    count: int
    baseline_median: float
    baseline_scale: float
    score: float
    bot: int
    mostly_bots: bool


class Parts(BaseModel):
    """What a window's or bucket's events were made of."""

    count: int
    bot: int
    human: int
    types: dict[str, int]
    added: int
    removed: int
    net_bytes: int
    changed_bytes: int

    @classmethod
    def of(cls, found: Breakdown) -> dict[str, object]:
        return {
            "count": found.count,
            "bot": found.bot,
            "human": found.human,
            "types": found.types,
            "added": found.added,
            "removed": found.removed,
            "net_bytes": found.net_bytes,
            "changed_bytes": found.changed_bytes,
        }


class SeriesPoint(Parts):
    start: int
    end: int
    complete: bool


class Series(BaseModel):
    server_name: str | None
    resolution: str
    bucket_ms: int
    since: int
    until: int
    points: list[SeriesPoint]


class WikiParts(Parts):
    server_name: str


class BucketDetail(BaseModel):
    resolution: str
    start: int
    end: int
    complete: bool
    all: Parts
    wikis: list[WikiParts]


class UnusualWindow(Window):
    baseline_windows: int
    baseline_minutes: int
    threshold: float
    min_count: int
    min_baseline_windows: int
    unusual: list[UnusualWiki]


class PipelineHealth(BaseModel):
    newest_window: int | None
    newest_window_age_seconds: float | None
    events_per_second: float | None
    windows_indexed: int
    window_seconds: int
    #: each resolution's window or bucket length, by name (`RESOLUTIONS`): what a page
    #: aligns its ranges to, so that it need not know them itself
    bucket_seconds: dict[str, int]


def create_app(settings: DashboardSettings | None = None) -> FastAPI:
    settings = settings or DashboardSettings()
    # Reads go through the (blocking) window store in worker threads; only the live
    # stream holds an asyncio connection, for its pub/sub subscription.
    store = WindowStore.connect(settings, timeout=5, reads=True)
    announcements = connect_async(settings, timeout=5)
    channel = store.channel

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await announcements.aclose()
        store.close()

    app = FastAPI(
        title="WikiPulse",
        version=__version__,
        description="Complete 30-second windows of Wikimedia changes per wiki, from Redis.",
        docs_url=None,  # Swagger UI would load from a CDN; the spec is at /openapi.json
        redoc_url=None,
        lifespan=lifespan,
    )

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/windows", response_model=list[Window])
    async def windows(limit: Annotated[int, Query(ge=1, le=2000)] = 120) -> list[Window]:
        """The newest complete windows, newest first, with their totals."""
        return [Window(**vars_of(s)) for s in await asyncio.to_thread(store.windows, limit)]

    @app.get("/api/windows/{start}", response_model=WindowDetail)
    async def window(start: int, limit: Annotated[int, Query(ge=1, le=1000)] = 20) -> WindowDetail:
        """One complete window's leaderboard (404 while it is not complete)."""
        board = await asyncio.to_thread(store.leaderboard, start, limit)
        if board is None:
            raise HTTPException(404, f"window {start} is not (yet) complete")
        rows = [Entry(server_name=n, count=c) for n, c in board.rows]
        return WindowDetail(**vars_of(board.window), leaderboard=rows)

    @app.get("/api/wikis/{server_name}/history", response_model=WikiHistory)
    async def history(
        server_name: str, limit: Annotated[int, Query(ge=1, le=2000)] = 120
    ) -> WikiHistory:
        """Events per complete window for one wiki, oldest first (0 where it had none)."""
        found = await asyncio.to_thread(store.history, server_name, limit)
        points = [Point(start=s, count=c) for s, c in found]
        return WikiHistory(server_name=server_name, history=points)

    async def unusual_in(start: int) -> UnusualWindow | None:
        report = await asyncio.to_thread(
            store.unusual, start, settings.unusual_baseline_ms, settings.unusual_rule
        )
        if report is None:
            return None
        names = [u.server_name for u in report.wikis]
        parts = await asyncio.to_thread(store.breakdowns, start, names) or {}
        return UnusualWindow(
            **vars_of(report.window),
            baseline_windows=report.baseline_windows,
            baseline_minutes=settings.unusual_baseline_minutes,
            threshold=settings.unusual_threshold,
            min_count=settings.unusual_min_count,
            min_baseline_windows=settings.unusual_min_baseline_windows,
            unusual=[
                UnusualWiki(
                    **vars_of(u),
                    bot=parts[u.server_name].bot,
                    mostly_bots=parts[u.server_name].bot * 2 > u.count,
                )
                for u in report.wikis
            ],
        )

    @app.get("/api/unusual", response_model=UnusualWindow | None)
    async def unusual_now() -> UnusualWindow | None:
        """The wikis unusual in the newest complete window (null before the first one).

        Each wiki's count against its own baseline: the median and MAD of its counts in
        the complete windows of the preceding ``UNUSUAL_BASELINE_MINUTES``.
        """
        newest = await asyncio.to_thread(store.latest)
        return None if newest is None else await unusual_in(newest)

    @app.get("/api/unusual/{start}", response_model=UnusualWindow)
    async def unusual(start: int) -> UnusualWindow:
        """The wikis unusual in one complete window (404 while it is not complete)."""
        found = await unusual_in(start)
        if found is None:
            raise HTTPException(404, f"window {start} is not (yet) complete")
        return found

    @app.get("/api/series", response_model=Series)
    async def series(
        wiki: Annotated[
            str | None, Query(max_length=253, description="a server name; all wikis when absent")
        ] = None,
        resolution: Annotated[str, Query(pattern=RESOLUTION)] = ROLLUPS[0].name,  # 5 min
        since: Annotated[
            int | None,
            Query(alias="from", ge=0, description="epoch ms; default: 120 points before `to`"),
        ] = None,
        until: Annotated[
            int | None, Query(alias="to", ge=0, description="epoch ms, exclusive; default: now")
        ] = None,
    ) -> Series:
        """One wiki's (or all wikis') history at one resolution: counts and breakdowns per
        window (``window``) or per 5-minute, hourly or daily bucket, oldest first.

        Points that start in ``[from, to)``; at most 3000 (422 beyond). ``complete`` is
        false for a bucket not every partition has closed past yet, or one holding a
        window published partial.
        """
        length = await asyncio.to_thread(store.resolution_ms, resolution)
        end = until if until is not None else int(time.time() * 1000)
        start = since if since is not None else end - 120 * length
        try:
            points = await asyncio.to_thread(
                store.series, resolution, start, end, wiki or ALL_WIKIS, MAX_POINTS
            )
        except TooManyPoints as exc:
            raise HTTPException(422, str(exc)) from exc
        return Series(
            server_name=wiki,
            resolution=resolution,
            bucket_ms=length,
            since=start,
            until=end,
            points=[
                SeriesPoint(start=p.start, end=p.end, complete=p.complete, **Parts.of(p.breakdown))
                for p in points
            ],
        )

    @app.get("/api/breakdowns/{resolution}/{start}", response_model=BucketDetail)
    async def breakdowns(
        resolution: Annotated[str, Path(pattern=RESOLUTION)],
        start: int,
        limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    ) -> BucketDetail:
        """The breakdowns of one window (``window``; 404 while it is not complete) or one
        bucket (404 when there is none): all wikis', and the ``limit`` busiest wikis'."""
        found = await asyncio.to_thread(store.bucket_breakdowns, resolution, start, limit)
        if found is None or (resolution == WINDOW_RESOLUTION and not found.complete):
            raise HTTPException(404, f"no {resolution} {start} (or not complete yet)")
        return BucketDetail(
            resolution=resolution,
            start=found.start,
            end=found.end,
            complete=found.complete,
            all=Parts(**Parts.of(found.all)),
            wikis=[WikiParts(server_name=n, **Parts.of(b)) for n, b in found.wikis],
        )

    @app.get("/api/health", response_model=PipelineHealth)
    async def pipeline_health() -> PipelineHealth:
        """How fresh the newest complete window is, and its events per second."""
        health = await asyncio.to_thread(store.health)
        buckets = {rollup.name: rollup.seconds for rollup in ROLLUPS}
        return PipelineHealth(
            **vars_of(health),
            bucket_seconds={WINDOW_RESOLUTION: health.window_seconds, **buckets},
        )

    started = time.monotonic()

    @app.get("/livez", include_in_schema=False)
    async def livez() -> Response:
        """For a liveness probe: the process serves requests. Nothing else, on purpose: a
        stalled pipeline or a Redis away is not fixed by restarting the dashboard."""
        return Response("ok", media_type="text/plain")

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """Health for orchestrators: 200 while complete windows keep arriving.

        503 when Redis does not answer, and when the newest complete window ended more
        than ``STALE_AFTER_SECONDS`` ago (or none arrived in that long since start-up):
        a pipeline that stopped counting, e.g. a producer waiting on a dead stream, must
        not look healthy just because every process is up.
        """
        try:
            health = await asyncio.to_thread(store.health)
        except redis.RedisError as exc:  # the same class for blocking and asyncio clients
            return JSONResponse({"status": "unavailable", "redis": type(exc).__name__}, 503)
        stale_after = settings.stale_after_seconds
        age = health.newest_window_age_seconds
        if age is None:
            if time.monotonic() - started <= stale_after:
                return JSONResponse({"status": "waiting"})
            return JSONResponse({"status": "stale", "newest_window_age_seconds": None}, 503)
        if age > stale_after:
            return JSONResponse({"status": "stale", "newest_window_age_seconds": age}, 503)
        return JSONResponse({"status": "ok"})

    @app.get("/api/stream")
    async def stream(request: Request) -> StreamingResponse:
        """Server-Sent Events: ``event: window`` with the start of each newly complete window."""
        return StreamingResponse(
            window_events(announcements, channel, request),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return app


def vars_of(obj: object) -> dict[str, object]:
    return {name: getattr(obj, name) for name in obj.__slots__}  # type: ignore[attr-defined]


async def window_events(
    client: redis.Redis, channel: str, request: Request
) -> AsyncIterator[bytes]:
    """Relay the processor's pub/sub notifications to one browser."""
    pubsub = client.pubsub()
    await pubsub.subscribe(channel)
    yield b"retry: 2000\n: connected\n\n"
    idle = 0.0
    try:
        while not await request.is_disconnected():
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except redis.RedisError as exc:
                # Redis went away for longer than the client's retries (a failover): end
                # this stream; the browser reconnects after `retry` and subscribes anew
                log.warning("live stream ended: redis %s", type(exc).__name__)
                return
            if message is None:
                idle += 1.0
                if idle >= KEEPALIVE_SECONDS:
                    idle = 0.0
                    yield b": keep-alive\n\n"
                continue
            idle = 0.0
            start = message["data"].decode() if isinstance(message["data"], bytes) else ""
            if start.isdigit():
                yield f"event: window\ndata: {start}\n\n".encode()
    finally:
        with contextlib.suppress(redis.RedisError):
            await pubsub.unsubscribe(channel)
        await pubsub.aclose()  # type: ignore[no-untyped-call]

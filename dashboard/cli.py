"""``wikipulse``: complete windows in the terminal.

wikipulse top                  the leaderboard of the newest complete window
wikipulse top --window S       of window S (epoch ms)
wikipulse top --limit 10       the first 10 wikis
wikipulse top --watch          redraw whenever a window completes (Ctrl-C stops)
wikipulse unusual              the wikis unusual in the newest complete window
wikipulse unusual --window S   in window S
wikipulse history WIKI --since 24h [--by bot|type] [--resolution 5m]
                               a wiki's history (WIKI "all": every wiki), from the
                               finest resolution that gives at most 48 rows
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import NoReturn

import redis
from redis.client import PubSub
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from dashboard.settings import DashboardSettings
from wikipulse.events import CHANGE_TYPES
from wikipulse.redis_client import transient
from wikipulse.service import load_settings
from wikipulse.store.history import Point, TooManyPoints
from wikipulse.store.reads import Leaderboard, UnusualReport
from wikipulse.store.values import ALL_WIKIS, RESOLUTIONS
from wikipulse.store.window_store import WindowStore

_UNITS = {"m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400, "y": 365 * 86_400}
MAX_ROWS = 48


def render(board: Leaderboard) -> Table:
    window = board.window
    start = datetime.fromtimestamp(window.start / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    end = datetime.fromtimestamp(window.end / 1000, UTC).strftime("%H:%M:%S")
    table = Table(
        title=f"WikiPulse — window {window.start} ({start} to {end} UTC)",
        caption=f"{window.total} changes on {window.wikis} wikis",
    )
    table.add_column("#", justify="right", style="dim")
    table.add_column("wiki")
    table.add_column("changes", justify="right")
    table.add_column("share", justify="right", style="dim")
    for rank, (name, count) in enumerate(board.rows, 1):
        share = f"{100 * count / window.total:.1f}%" if window.total else "-"
        # Text(): names from the stream are shown literally, never parsed as markup
        table.add_row(str(rank), Text(name), str(count), share)
    return table


def render_unusual(report: UnusualReport, settings: DashboardSettings) -> Table:
    window = report.window
    start = datetime.fromtimestamp(window.start / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    table = Table(
        title=f"WikiPulse — unusual in window {window.start} ({start} UTC)",
        caption=(
            f"against each wiki's median over {report.baseline_windows} windows "
            f"({settings.unusual_baseline_minutes} min); flagged above "
            f"{settings.unusual_threshold:g} robust deviations and "
            f"{settings.unusual_min_count} events"
        ),
    )
    table.add_column("wiki")
    table.add_column("changes", justify="right")
    table.add_column("usual", justify="right", style="dim")
    table.add_column("deviations", justify="right")
    for found in report.wikis:
        median = f"{found.baseline_median:g}"
        table.add_row(Text(found.server_name), str(found.count), median, f"{found.score:.1f}")
    return table


#: A command as `main` runs it: its exit status.
Command = Callable[[argparse.Namespace, DashboardSettings, Console], int]
#: A command as written: with the store it reads, opened for it.
Reading = Callable[[argparse.Namespace, DashboardSettings, Console, WindowStore], int]


def reads_redis(command: Reading) -> Command:
    """``command`` with a store of its own, closed when it ends. Redis failing it (down,
    unreachable past the readers' retries, refusing) ends it with one red line saying
    so and exit status 2, whichever command it was; `watch` waits out a failover
    itself and lets only what waiting cannot fix come here."""

    @functools.wraps(command)
    def with_store(args: argparse.Namespace, settings: DashboardSettings, console: Console) -> int:
        store = WindowStore.connect(settings, timeout=10, reads=True)
        try:
            return command(args, settings, console, store)
        except redis.RedisError as exc:
            console.print(f"[red]cannot read Redis: {type(exc).__name__}: {exc}[/red]")
            return 2
        finally:
            store.close()

    return with_store


@reads_redis
def unusual(
    args: argparse.Namespace, settings: DashboardSettings, console: Console, store: WindowStore
) -> int:
    start = args.window if args.window is not None else store.latest()
    report = None
    if start is not None:
        report = store.unusual(start, settings.unusual_baseline_ms, settings.unusual_rule)
    if report is None:
        what = f"window {start} is not complete" if start else "no complete window yet"
        console.print(f"[yellow]{what}[/yellow]")
        return 1
    if not report.wikis:
        console.print(f"nothing unusual in window {report.window.start}")
        return 0
    console.print(render_unusual(report, settings))
    return 0


def span_seconds(text: str) -> int:
    """``90m``, ``24h``, ``7d``, ``2w``, ``1y`` as seconds (argparse type)."""
    found = re.fullmatch(r"(\d+)([mhdwy])", text.strip())
    if not found or int(found[1]) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a span like 90m, 24h, 7d or 1y")
    return int(found[1]) * _UNITS[found[2]]


def pick_resolution(store: WindowStore, seconds: int) -> str:
    """The finest resolution that shows ``seconds`` in at most `MAX_ROWS` rows."""
    for name in RESOLUTIONS:
        if seconds * 1000 // store.resolution_ms(name) <= MAX_ROWS:
            return name
    return RESOLUTIONS[-1]


def render_history(name: str, resolution: str, points: list[Point], by: str | None) -> Table:
    table = Table(
        title=Text(f"WikiPulse — {name}, per {resolution}"),  # a name is never markup
        caption="* not complete yet (or holding a partial window)",
    )
    table.add_column("from (UTC)")
    table.add_column("changes", justify="right")
    columns: list[str] = []
    if by == "bot":
        columns = ["bots", "humans", "bot share"]
    elif by == "type":
        columns = list(CHANGE_TYPES)
    else:
        columns = ["bots", "net bytes", "bytes changed"]
    for column in columns:
        table.add_column(column, justify="right")
    for point in points:
        part = point.breakdown
        when = datetime.fromtimestamp(point.start / 1000, UTC).strftime("%Y-%m-%d %H:%M")
        if by == "bot":
            share = f"{100 * part.bot / part.count:.0f}%" if part.count else "-"
            cells = [str(part.bot), str(part.human), share]
        elif by == "type":
            cells = [str(part.types[t]) for t in CHANGE_TYPES]
        else:
            cells = [str(part.bot), f"{part.net_bytes:+d}", str(part.changed_bytes)]
        mark = "" if point.complete else " *"
        table.add_row(when + mark, str(part.count), *cells)
    return table


@reads_redis
def history(
    args: argparse.Namespace, settings: DashboardSettings, console: Console, store: WindowStore
) -> int:
    resolution = args.resolution or pick_resolution(store, args.since)
    until = int(time.time() * 1000)
    wiki = ALL_WIKIS if args.wiki == "all" else args.wiki
    try:
        points = store.series(resolution, until - args.since * 1000, until, wiki)
    except TooManyPoints as exc:
        console.print(f"[red]{exc}: pick a coarser --resolution[/red]")
        return 2
    if not points:
        console.print(f"[yellow]no history of {args.wiki} at {resolution} yet[/yellow]")
        return 1
    console.print(render_history(args.wiki, resolution, points, args.by))
    return 0


def top(store: WindowStore, window: int | None, limit: int) -> Leaderboard | None:
    start = window if window is not None else store.latest()
    if start is None:
        return None
    return store.leaderboard(start, limit)


@reads_redis
def run(
    args: argparse.Namespace, settings: DashboardSettings, console: Console, store: WindowStore
) -> int:
    board = top(store, args.window, args.limit)
    if board is None and not args.watch:
        what = f"window {args.window} is not complete" if args.window else "no complete window yet"
        console.print(f"[yellow]{what}[/yellow]")
        return 1
    if not args.watch:
        assert board is not None
        console.print(render(board))
        return 0
    placeholder = Text("waiting for the first complete window…")
    with Live(render(board) if board else placeholder, console=console) as live:
        watch(store, args.limit, live)


def watch(store: WindowStore, limit: int, live: Live) -> NoReturn:
    """Redraw the leaderboard whenever a window completes, for good: Redis going away
    (a failover, a restart) is waited out and the subscription made again, and the
    windows completed meanwhile show at once."""

    def redraw() -> None:
        board = top(store, None, limit)
        if board is not None:
            live.update(render(board))

    pubsub: PubSub | None = None
    while True:
        try:
            if pubsub is None:
                pubsub = store.subscribe()
                redraw()
            if pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0) is not None:
                redraw()
        except redis.RedisError as exc:
            if not transient(exc):
                raise
            if pubsub is not None:
                with contextlib.suppress(redis.RedisError):
                    pubsub.close()
                pubsub = None
            live.console.print(
                f"[yellow]Redis unavailable ({type(exc).__name__}); reconnecting…[/yellow]"
            )
            time.sleep(1.0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="wikipulse", description="WikiPulse command line")
    commands = parser.add_subparsers(dest="command", required=True)
    top_parser = commands.add_parser("top", help="leaderboard of a complete window")
    top_parser.add_argument("--window", type=int, help="window start, epoch ms (default: newest)")
    top_parser.add_argument("--limit", type=int, default=20, help="rows (default 20)")
    top_parser.add_argument("--watch", action="store_true", help="redraw on every new window")
    unusual_parser = commands.add_parser("unusual", help="wikis far above their usual count")
    unusual_parser.add_argument(
        "--window", type=int, help="window start, epoch ms (default: newest)"
    )
    history_parser = commands.add_parser("history", help="a wiki's counts over time")
    history_parser.add_argument("wiki", help='a server name, or "all" for every wiki')
    history_parser.add_argument(
        "--since", type=span_seconds, default=86_400, help="how far back: 90m, 24h, 7d, 1y"
    )
    history_parser.add_argument("--by", choices=("bot", "type"), help="split the counts")
    history_parser.add_argument(
        "--resolution",
        choices=RESOLUTIONS,
        help="default: the finest that gives at most 48 rows",
    )
    rebuild_parser = commands.add_parser(
        "rebuild", help="count the retained raw topic again into a new prefix (processor)"
    )
    rebuild_parser.add_argument("--prefix", required=True, help="the new REDIS_KEY_PREFIX")
    rebuild_parser.add_argument("--window-seconds", type=int, help="window length")
    args = parser.parse_args(argv)
    if args.command == "rebuild":  # the processor's own code, in its own process
        forwarded = ["--prefix", args.prefix]
        if args.window_seconds:
            forwarded += ["--window-seconds", str(args.window_seconds)]
        os.execv(sys.executable, [sys.executable, "-m", "processor.rebuild", *forwarded])
    settings = load_settings(DashboardSettings, "wikipulse")
    try:
        commands_run: dict[str, Command] = {"unusual": unusual, "history": history}
        command = commands_run.get(args.command, run)
        sys.exit(command(args, settings, Console()))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()

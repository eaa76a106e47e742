"""The dashboard, its API and the CLI, against real Redis holding windows written
exactly as the processor writes them (`wikipulse.store.writes.WindowWriter.write`)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from dashboard.app import create_app
from dashboard.settings import DashboardSettings
from devtools.observe import wait_for
from devtools.servers import free_port
from devtools.shapes import breakdowns_like_recording, windows_like_recording, write_complete
from tests.support.browser import launch
from tests.support.paths import ARTIFACTS
from wikipulse.events import CHANGE_TYPES
from wikipulse.store.keys import KeyLayout
from wikipulse.store.window_store import WindowStore
from wikipulse.store.writes import Batch

WINDOW = 30_000
S1, S2, S3 = 1_767_225_600_000, 1_767_225_630_000, 1_767_225_660_000
XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1">'


def write_window(
    client, keys: KeyLayout, start: int, counts: dict[str, int], partitions=1, window=WINDOW
):
    """Partition 0 finalizes ``start`` with ``counts`` (and their breakdowns: humans'
    edits without sizes), exactly as the processor does."""
    parts = {name: [count, 0, count] + [0] * 7 for name, count in counts.items()}
    return WindowStore(client, keys).write(
        Batch(0, start + window, {start: counts}, breakdowns={start: parts}),
        partitions=partitions,
        window_ms=window,
        ttl_seconds=7 * 24 * 3600,
    )


def write_hour(client, keys: KeyLayout, last: int) -> list[int]:
    """An hour of complete windows with the recording's shape, the last one at ``last``."""
    windows = windows_like_recording(120)
    store = WindowStore(client, keys)
    return write_complete(store, last, windows, WINDOW, breakdowns_like_recording(windows))


@pytest.fixture
def keys(names) -> KeyLayout:
    return KeyLayout(names.prefix)


@pytest.fixture
def dashboard(services, names) -> Iterator[str]:
    settings = DashboardSettings(redis_url=services.redis_url, redis_key_prefix=names.prefix)
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 20, "the dashboard to start")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_the_api_serves_complete_windows_newest_first(dashboard, redis_client, keys):
    write_window(redis_client, keys, S1, {"en.wikipedia.org": 5, "www.wikidata.org": 9})
    write_window(redis_client, keys, S2, {"en.wikipedia.org": 7, "de.wikipedia.org": 1})
    windows = httpx.get(f"{dashboard}/api/windows?limit=10").json()
    assert windows == [
        {"start": S2, "end": S2 + WINDOW, "total": 8, "wikis": 2},
        {"start": S1, "end": S1 + WINDOW, "total": 14, "wikis": 2},
    ]
    detail = httpx.get(f"{dashboard}/api/windows/{S1}?limit=1").json()
    assert detail["leaderboard"] == [{"server_name": "www.wikidata.org", "count": 9}]
    history = httpx.get(f"{dashboard}/api/wikis/en.wikipedia.org/history").json()
    assert history["history"] == [{"start": S1, "count": 5}, {"start": S2, "count": 7}]
    wikidata = httpx.get(f"{dashboard}/api/wikis/de.wikipedia.org/history").json()
    assert [p["count"] for p in wikidata["history"]] == [0, 1]


def test_readers_take_the_window_length_the_processor_recorded(dashboard, redis_client, keys):
    write_window(redis_client, keys, S1, {"en.wikipedia.org": 20}, window=10_000)
    assert httpx.get(f"{dashboard}/api/windows").json() == [
        {"start": S1, "end": S1 + 10_000, "total": 20, "wikis": 1}
    ]
    health = httpx.get(f"{dashboard}/api/health").json()
    assert health["window_seconds"] == 10 and health["events_per_second"] == 2.0
    # the page aligns each range's query to these, rather than knowing them itself
    assert health["bucket_seconds"] == {"window": 10, "5m": 300, "1h": 3600, "1d": 86400}


def test_incomplete_windows_are_invisible(dashboard, redis_client, keys):
    write_window(redis_client, keys, S1, {"en.wikipedia.org": 5}, partitions=2)
    assert redis_client.zcard(keys.source("").pending) == 1  # one partition missing
    assert httpx.get(f"{dashboard}/api/windows").json() == []
    assert httpx.get(f"{dashboard}/api/windows/{S1}").status_code == 404


def recent_window() -> int:
    """The start of the newest window that has already ended."""
    now = int(time.time() * 1000)
    return now - now % WINDOW - WINDOW


def test_health_openapi_and_read_only(dashboard, redis_client, keys):
    assert httpx.get(f"{dashboard}/healthz").json() == {"status": "waiting"}
    recent = recent_window()
    write_window(redis_client, keys, recent, {"en.wikipedia.org": 60})
    health = httpx.get(f"{dashboard}/api/health").json()
    assert health["newest_window"] == recent and health["events_per_second"] == 2.0
    assert 0 < health["newest_window_age_seconds"] <= 30
    assert httpx.get(f"{dashboard}/healthz").json() == {"status": "ok"}
    spec = httpx.get(f"{dashboard}/openapi.json").json()
    assert {"/api/windows", "/api/windows/{start}", "/api/wikis/{server_name}/history"} <= set(
        spec["paths"]
    )
    assert all(set(ops) == {"get"} for ops in spec["paths"].values())
    assert httpx.post(f"{dashboard}/api/windows").status_code == 405
    assert "script-src 'self'" in httpx.get(dashboard).headers["content-security-policy"]


def test_health_turns_503_when_complete_windows_stop_arriving(services, names, redis_client):
    """Every process may be up while nothing is counted: /healthz must say so."""
    keys = KeyLayout(names.prefix)
    settings = DashboardSettings(
        redis_url=services.redis_url, redis_key_prefix=names.prefix, stale_after_seconds=1
    )
    with TestClient(create_app(settings)) as client:
        wait_for(lambda: client.get("/healthz").status_code == 503, 10, "503 with no window")
        assert client.get("/healthz").json() == {
            "status": "stale",
            "newest_window_age_seconds": None,
        }
        # the window before the newest ended: at least one window length ago, so more
        # than 1 s (the newest one may have ended a moment ago)
        write_window(redis_client, keys, recent_window() - WINDOW, {"en.wikipedia.org": 1})
        assert client.get("/healthz").status_code == 503
        settings_fresh = settings.model_copy(update={"stale_after_seconds": 3600})
    with TestClient(create_app(settings_fresh)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}


def test_new_windows_are_pushed_to_live_readers(dashboard, redis_client, keys):
    received: list[str] = []

    def listen() -> None:
        with httpx.stream("GET", f"{dashboard}/api/stream", timeout=20) as response:
            for line in response.iter_lines():
                if line.startswith("data:"):
                    received.append(line.split(":", 1)[1].strip())
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    wait_for(  # the dashboard has subscribed to the channel for this reader
        lambda: redis_client.pubsub_numsub(keys.complete)[0][1] > 0, 10, "a subscription"
    )
    write_window(redis_client, keys, S3, {"fr.wikipedia.org": 3})
    listener.join(10)
    assert received == [str(S3)]


def test_the_api_names_what_is_unusual_in_a_window(dashboard, redis_client, keys):
    assert httpx.get(f"{dashboard}/api/unusual").json() is None  # no window yet
    write_hour(redis_client, keys, S3 - WINDOW)
    calm = httpx.get(f"{dashboard}/api/unusual").json()
    assert calm["start"] == S3 - WINDOW and calm["unusual"] == []
    assert calm["baseline_windows"] == 119 and calm["baseline_minutes"] == 60
    write_window(redis_client, keys, S3, {"fr.wikipedia.org": 1500, "en.wikipedia.org": 130})
    burst = httpx.get(f"{dashboard}/api/unusual").json()
    assert burst["start"] == S3 and burst["baseline_windows"] == 120
    [found] = burst["unusual"]
    assert found["server_name"] == "fr.wikipedia.org" and found["count"] == 1500
    assert 20 <= found["baseline_median"] <= 50 and found["score"] > 5
    assert httpx.get(f"{dashboard}/api/unusual/{S3}").json() == burst
    assert httpx.get(f"{dashboard}/api/unusual/{S3 + WINDOW}").status_code == 404


def test_the_cli_names_what_is_unusual(services, names, redis_client, keys):
    write_hour(redis_client, keys, S3 - WINDOW)
    write_window(redis_client, keys, S3, {XSS: 400, "en.wikipedia.org": 130})
    env = {**os.environ, "REDIS_URL": services.redis_url, "REDIS_KEY_PREFIX": names.prefix}
    env["COLUMNS"] = "200"
    command = [sys.executable, "-m", "dashboard.cli", "unusual"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert XSS in result.stdout and "400" in result.stdout
    assert "en.wikipedia.org" not in result.stdout  # 130 is its usual
    calm = subprocess.run(
        [*command, "--window", str(S3 - WINDOW)], env=env, capture_output=True, text=True
    )
    assert calm.returncode == 0 and "nothing unusual" in calm.stdout


def test_the_cli_prints_the_leaderboard_as_a_table(services, names, redis_client, keys):
    write_window(redis_client, keys, S1, {"en.wikipedia.org": 5, "www.wikidata.org": 9, XSS: 2})
    env = {**os.environ, "REDIS_URL": services.redis_url, "REDIS_KEY_PREFIX": names.prefix}
    env["COLUMNS"] = "200"
    result = subprocess.run(
        [sys.executable, "-m", "dashboard.cli", "top", "--limit", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    order = [
        n for n in ("www.wikidata.org", "en.wikipedia.org", XSS) for line in lines if n in line
    ]
    assert order == ["www.wikidata.org", "en.wikipedia.org", XSS]
    assert any("9" in line and "56.2%" in line for line in lines)
    missing = subprocess.run(
        [sys.executable, "-m", "dashboard.cli", "top", "--window", str(S3)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert missing.returncode == 1 and "not complete" in missing.stdout


def points(page, chart: str, field: str) -> list[str]:
    """One data attribute of each bar of a chart (``#totals`` or ``#history``), in order."""
    found = page.eval_on_selector_all(
        f"{chart} g.point", f"bars => bars.map(bar => bar.dataset.{field})"
    )
    return [str(value) for value in found]


@pytest.mark.browser
def test_the_page_shows_updates_and_escapes_the_leaderboard(dashboard, redis_client, keys):
    from playwright.sync_api import sync_playwright

    write_window(redis_client, keys, S1, {"en.wikipedia.org": 5, "www.wikidata.org": 9})
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(dashboard)
        page.wait_for_selector(f'#leaderboard[data-window="{S1}"]')
        assert page.locator("#leaderboard tbody tr td:nth-child(2)").all_text_contents() == [
            "www.wikidata.org",
            "en.wikipedia.org",
        ]
        page.wait_for_selector("#status.live")

        write_window(redis_client, keys, S2, {XSS: 12, "en.wikipedia.org": 7})
        page.wait_for_selector(f'#leaderboard[data-window="{S2}"]', timeout=5000)
        names = page.locator("#leaderboard tbody tr td:nth-child(2)").all_text_contents()
        assert names == [XSS, "en.wikipedia.org"]  # rendered as text
        assert page.evaluate("window.__xss") is None  # and never executed
        assert page.locator("#leaderboard img, #leaderboard script").count() == 0
        page.wait_for_selector(f'#totals g.point[data-start="{S2}"]')
        assert page.locator("#totals g.point").count() == 2

        page.locator("#leaderboard tbody tr", has_text="en.wikipedia.org").click()
        page.wait_for_selector("#history g.point")
        assert page.locator("#history-name").text_content() == "en.wikipedia.org"
        assert points(page, "#history", "count") == ["5", "7"]
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        browser.close()


@pytest.mark.browser
def test_the_unusual_panel_updates_live_and_keeps_names_inert(dashboard, redis_client, keys):
    from playwright.sync_api import sync_playwright

    write_hour(redis_client, keys, S3 - WINDOW)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(dashboard)
        page.wait_for_selector(f'#unusual[data-window="{S3 - WINDOW}"]')
        assert page.locator("#unusual tbody tr").count() == 0
        assert page.locator("#unusual-empty").is_visible()
        page.wait_for_selector("#status.live")

        write_window(redis_client, keys, S3, {XSS: 400, "fr.wikipedia.org": 1500})
        page.wait_for_selector(f'#unusual[data-window="{S3}"]', timeout=5000)  # no reload
        rows = page.locator("#unusual tbody tr td:nth-child(1)").all_text_contents()
        assert rows == [XSS, "fr.wikipedia.org"]  # most unusual first: XSS is new
        assert page.evaluate("window.__xss") is None
        assert page.locator("#unusual img, #unusual script").count() == 0
        assert not page.locator("#unusual-empty").is_visible()

        page.locator("#unusual tbody tr", has_text="fr.wikipedia.org").click()
        page.wait_for_selector("#history g.point")
        assert page.locator("#history-name").text_content() == "fr.wikipedia.org"
        assert page.locator("#history g.point").count() == 120
        page.screenshot(path=str(ARTIFACTS / "dashboard-unusual.png"), full_page=True)
        browser.close()


# -- breakdowns and history (#28) ----------------------------------------------------------


def write_parts(client, keys: KeyLayout, start: int, parts: dict[str, list[int]]) -> None:
    """Partition 0 finalizes ``start`` with these breakdowns (count first), as the
    processor does: the counts and the breakdowns in one batch."""
    counts = {name: values[0] for name, values in parts.items()}
    WindowStore(client, keys).write(
        Batch(0, start + WINDOW, {start: counts}, breakdowns={start: parts}),
        partitions=1,
        window_ms=WINDOW,
        ttl_seconds=86_400,
    )


#: count, bot, edit, new, log, categorize, external, other, added, removed
EN = [10, 4, 7, 1, 2, 0, 0, 0, 900, 100]
BOTS = [30, 27, 30, 0, 0, 0, 0, 0, 3000, 0]


def five_minutes_ago() -> int:
    """The start of the newest 5-minute bucket that has ended."""
    now = int(time.time() * 1000)
    return now - now % 300_000 - 300_000


def test_the_api_serves_series_and_breakdowns_per_window_and_bucket(dashboard, redis_client, keys):
    bucket = five_minutes_ago()
    for i in range(10):
        write_parts(redis_client, keys, bucket + i * WINDOW, {"en.wikipedia.org": EN, XSS: BOTS})
    write_parts(redis_client, keys, bucket + 300_000, {"en.wikipedia.org": EN})  # closes it
    series = httpx.get(
        f"{dashboard}/api/series",
        params={
            "wiki": "en.wikipedia.org",
            "resolution": "5m",
            "from": bucket,
            "to": bucket + 600_000,
        },
    ).json()
    assert series["bucket_ms"] == 300_000 and series["server_name"] == "en.wikipedia.org"
    first, second = series["points"]
    assert (first["start"], first["complete"], second["complete"]) == (bucket, True, False)
    assert first["count"] == 100 and first["bot"] == 40 and first["human"] == 60
    assert first["types"]["edit"] == 70 and first["net_bytes"] == 8000
    assert first["changed_bytes"] == 10_000
    every = httpx.get(
        f"{dashboard}/api/series", params={"resolution": "5m", "from": bucket, "to": bucket + 1}
    ).json()
    assert every["server_name"] is None and every["points"][0]["count"] == 400
    windows = httpx.get(
        f"{dashboard}/api/series",
        params={"wiki": XSS, "resolution": "window", "from": bucket, "to": bucket + 300_000},
    ).json()
    assert [p["bot"] for p in windows["points"]] == [27] * 10
    too_many = {"resolution": "window", "from": 0, "to": bucket}
    assert httpx.get(f"{dashboard}/api/series", params=too_many).status_code == 422
    bad = {"resolution": "1w"}
    assert httpx.get(f"{dashboard}/api/series", params=bad).status_code == 422

    detail = httpx.get(f"{dashboard}/api/breakdowns/5m/{bucket}?limit=1").json()
    assert detail["complete"] and detail["all"]["count"] == 400
    assert [(w["server_name"], w["bot"]) for w in detail["wikis"]] == [(XSS, 270)]
    window = httpx.get(f"{dashboard}/api/breakdowns/window/{bucket}").json()
    assert {w["server_name"]: w["count"] for w in window["wikis"]} == {
        XSS: 30,
        "en.wikipedia.org": 10,
    }
    missing = f"{dashboard}/api/breakdowns/window/{bucket + 20 * WINDOW}"
    assert httpx.get(missing).status_code == 404
    spec = httpx.get(f"{dashboard}/openapi.json").json()
    assert {"/api/series", "/api/breakdowns/{resolution}/{start}"} <= set(spec["paths"])
    assert {p["name"] for p in spec["paths"]["/api/series"]["get"]["parameters"]} == {
        "wiki",
        "resolution",
        "from",
        "to",
    }


def test_unusual_now_says_whether_the_unusual_count_is_mostly_bots(dashboard, redis_client, keys):
    write_hour(redis_client, keys, S3 - WINDOW)
    burst = {"fr.wikipedia.org": [1500, 1400, 1500, 0, 0, 0, 0, 0, 0, 0]}
    burst["de.wikipedia.org"] = [900, 10, 900] + [0] * 7
    write_parts(redis_client, keys, S3, burst)
    found = {u["server_name"]: u for u in httpx.get(f"{dashboard}/api/unusual").json()["unusual"]}
    assert found["fr.wikipedia.org"]["mostly_bots"] and found["fr.wikipedia.org"]["bot"] == 1400
    assert not found["de.wikipedia.org"]["mostly_bots"]


def cells(line: str) -> list[str]:
    """The cells of one row of a rich table."""
    return [cell.strip() for cell in line.split("│")[1:-1]]


def test_the_cli_prints_a_wiki_s_history_by_bot_and_by_type(services, names, redis_client, keys):
    bucket = five_minutes_ago()
    for i in range(10):
        write_parts(redis_client, keys, bucket + i * WINDOW, {"en.wikipedia.org": EN, XSS: BOTS})
    write_parts(redis_client, keys, bucket + 300_000, {"en.wikipedia.org": EN})
    env = {**os.environ, "REDIS_URL": services.redis_url, "REDIS_KEY_PREFIX": names.prefix}
    env["COLUMNS"] = "200"
    command = [sys.executable, "-m", "dashboard.cli", "history"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *args], env=env, capture_output=True, text=True, timeout=30
        )

    by_bot = run("en.wikipedia.org", "--since", "1h", "--by", "bot", "--resolution", "5m")
    assert by_bot.returncode == 0, by_bot.stderr
    rows = [cells(line) for line in by_bot.stdout.splitlines()]
    assert [r[1:] for r in rows if len(r) == 5 and r[1] == "100"] == [["100", "40", "60", "40%"]]
    by_type = run("all", "--since", "1h", "--by", "type")  # 5 min rows: the finest under 48
    assert by_type.returncode == 0 and "per 5m" in by_type.stdout
    rows = [cells(line) for line in by_type.stdout.splitlines()]
    assert [r[1:] for r in rows if len(r) == 8 and r[1] == "400"] == [
        ["400", "370", "10", "20", "0", "0", "0"]
    ]
    hostile = run(XSS, "--since", "1h", "--resolution", "window")
    assert hostile.returncode == 0 and "27" in hostile.stdout
    assert XSS in " ".join(hostile.stdout.split())  # literally, the title wrapped
    assert run("nowhere.org", "--since", "1h").returncode == 0  # zeros: the buckets exist
    assert run("en.wikipedia.org", "--since", "0h").returncode == 2  # argparse refuses


# -- the dashboard's ranges, breakdowns and "mostly bots" (#28), in the real browser -------

RANGES = {"hour": ("window", WINDOW), "day": ("5m", 300_000), "week": ("1h", 3_600_000)}
RANGES["year"] = ("1d", 86_400_000)
#: where the page shows each field of a breakdown (EN's and BOTS' order above)
FIELDS = ("count", "bot", *(f"type:{t}" for t in CHANGE_TYPES), "added", "removed")


def shown_parts(page, of: str) -> dict[str, int]:
    """The breakdown the wiki view shows for the picked point (``of="point"``) or the
    range (``"range"``), read from the cells' values, and their text agrees."""
    found = {}
    for row in page.locator("#parts tbody tr").all():
        field = row.get_attribute("data-field")
        cell = row.locator(f'td[data-of="{of}"]')
        value = int(cell.get_attribute("data-value"))
        text = cell.text_content().replace(",", "").removesuffix("%").lstrip("+").split()[-1]
        assert int(text) == value, (field, text, value)
        found[field] = value
    return found


def expected_parts(values: list[int], times: int = 1) -> dict[str, int]:
    """What the page must show for ``times`` windows of breakdown ``values``."""
    parts = {field: value * times for field, value in zip(FIELDS, values, strict=True)}
    parts["human"] = parts["count"] - parts["bot"]
    parts["net_bytes"] = parts["added"] - parts["removed"]
    parts["bot_share"] = round(100 * parts["bot"] / parts["count"])
    return parts


def buckets(
    starts: list[int], counts: list[int], length: int, closed_end: int
) -> list[tuple[str, str, str]]:
    """(start, count, complete) of the buckets of ``length`` that ``starts`` fall in."""
    found: dict[int, int] = {}
    for start, count in zip(starts, counts, strict=True):
        found[start - start % length] = found.get(start - start % length, 0) + count
    return [(str(b), str(c), str(b + length <= closed_end).lower()) for b, c in found.items()]


def select_range(page, name: str) -> None:
    """Click a range and wait for its answer: the charts and the breakdown are drawn in
    one step from the same answers, so the breakdown's resolution stands for all."""
    page.locator(f'#range button[data-range="{name}"]').click()
    resolution = RANGES[name][0]
    page.wait_for_selector(f'#parts[data-resolution="{resolution}"]')
    assert page.locator("#totals").get_attribute("data-resolution") == resolution
    if page.locator("#wiki").is_visible():
        assert page.locator("#history").get_attribute("data-resolution") == resolution
    assert page.locator(f'#range button[data-range="{name}"]').get_attribute("aria-pressed") == (
        "true"
    )


@pytest.mark.browser
def test_the_range_selector_switches_resolution_and_follows_new_windows(
    dashboard, redis_client, keys
):
    bucket = five_minutes_ago()
    starts = [bucket + i * WINDOW for i in range(10)]
    for start in starts:
        write_parts(redis_client, keys, start, {"en.wikipedia.org": EN, XSS: BOTS})
    starts.append(bucket + 300_000)  # closes the first 5-minute bucket
    write_parts(redis_client, keys, starts[-1], {"en.wikipedia.org": EN})
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(dashboard)
        page.wait_for_selector(f'#totals g.point[data-start="{starts[-1]}"]')
        page.wait_for_selector("#status.live")
        # the hour: every window, all wikis (EN and the 30 of BOTS, then EN alone)
        assert page.locator("#totals").get_attribute("data-resolution") == "window"
        assert points(page, "#totals", "start") == [str(s) for s in starts]
        assert points(page, "#totals", "count") == ["40"] * 10 + ["10"]
        assert points(page, "#totals", "bot") == ["31"] * 10 + ["4"]
        assert set(points(page, "#totals", "complete")) == {"true"}

        page.locator("#leaderboard tbody tr", has_text="en.wikipedia.org").click()
        page.wait_for_selector("#history g.point")
        assert page.locator("#parts-name").text_content() == "en.wikipedia.org"
        assert points(page, "#history", "count") == ["10"] * 11
        assert shown_parts(page, "point") == expected_parts(EN)  # the newest window
        assert shown_parts(page, "range") == expected_parts(EN, 11)

        # the day, per 5 minutes: the first bucket complete, the second still open
        select_range(page, "day")
        assert points(page, "#totals", "start") == [str(bucket), str(bucket + 300_000)]
        assert points(page, "#totals", "count") == ["400", "10"]
        assert points(page, "#history", "count") == ["100", "10"]
        assert points(page, "#history", "complete") == ["true", "false"]
        assert page.locator("#history g.point.partial").count() == 1
        assert page.locator("#parts").get_attribute("data-complete") == "false"
        assert "not complete yet" in page.locator("#parts-point").text_content()
        assert shown_parts(page, "point") == expected_parts(EN)
        page.locator("#history g.point").first.click()  # pick the complete bucket
        page.wait_for_selector(f'#parts[data-point="{bucket}"]')
        assert page.locator("#parts").get_attribute("data-complete") == "true"
        assert shown_parts(page, "point") == expected_parts(EN, 10)
        assert shown_parts(page, "range") == expected_parts(EN, 11)

        # live: a new window lands in the open bucket, the picked one stays picked
        starts.append(bucket + 330_000)
        write_parts(redis_client, keys, starts[-1], {"en.wikipedia.org": EN})
        page.wait_for_selector('#history g.point[data-count="20"]', timeout=5000)
        assert page.locator("#parts").get_attribute("data-point") == str(bucket)
        assert shown_parts(page, "range") == expected_parts(EN, 12)

        closed_end = starts[-1] + WINDOW
        counts = [10] * len(starts)
        for name in ("week", "year"):
            select_range(page, name)
            _, length = RANGES[name]
            shown = list(
                zip(
                    points(page, "#history", "start"),
                    points(page, "#history", "count"),
                    points(page, "#history", "complete"),
                    strict=True,
                )
            )
            assert shown == buckets(starts, counts, length, closed_end), name
            assert shown_parts(page, "range") == expected_parts(EN, 12)

        select_range(page, "hour")  # and back: every window again
        assert points(page, "#history", "start") == [str(s) for s in starts]
        page.screenshot(path=str(ARTIFACTS / "dashboard-ranges.png"), full_page=True)
        browser.close()


@pytest.mark.browser
def test_unusual_now_says_mostly_bots_and_the_wiki_view_keeps_names_text(
    dashboard, redis_client, keys
):
    write_hour(redis_client, keys, S3 - WINDOW)
    bot_run = [400, 390, 400, 0, 0, 0, 0, 0, 80_000, 0]  # a bot's 400 edits of 200 bytes
    people = [1500, 15, 1200, 100, 200, 0, 0, 0, 50_000, 70_000]
    write_parts(redis_client, keys, S3, {XSS: bot_run, "fr.wikipedia.org": people})
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(dashboard)
        page.wait_for_selector(f'#unusual[data-window="{S3}"]')
        rows = page.locator("#unusual tbody tr")
        assert rows.locator("td:nth-child(1)").all_text_contents() == [XSS, "fr.wikipedia.org"]
        hostile, humans = rows.nth(0), rows.nth(1)
        assert hostile.locator("td.bots .tag").text_content() == "mostly bots"
        assert hostile.locator("td.bots").text_content() == "mostly bots 98%"
        assert humans.locator("td.bots .tag").count() == 0
        assert humans.locator("td.bots").text_content() == "1%"

        hostile.click()
        page.wait_for_selector(f'#history g.point[data-start="{S3}"]')
        for name in ("hour", "day", "week", "year"):
            if name != "hour":
                select_range(page, name)
            assert page.locator("#history-name").text_content() == XSS, name
            assert page.locator("#parts-name").text_content() == XSS
            assert XSS in page.locator("#history").get_attribute("aria-label")
            # its newest window, 5 minutes, hour and day hold its only window: S3
            assert shown_parts(page, "point") == expected_parts(bot_run)
            assert shown_parts(page, "range") == expected_parts(bot_run)
            assert page.locator("img").count() == 0  # the name never became markup
            assert page.locator("script").count() == 1  # app.js alone
            assert page.evaluate("window.__xss") is None
        page.locator("#wiki-close").click()  # back to all wikis
        page.wait_for_selector("#wiki", state="hidden")
        assert page.locator("#parts-name").text_content() == "all wikis"
        browser.close()

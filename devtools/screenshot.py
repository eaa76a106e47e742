"""docs/dashboard.png: the dashboard over an hour of windows with the real stream's shape.

``python -m devtools.screenshot [PATH]`` writes an hour of complete windows drawn from
the recording's shares, with their breakdowns drawn from its events (`devtools.shapes`),
into a private Redis through `WindowStore.write`, with a bot run on one wiki in the last
five minutes, serves the dashboard on them, clicks that wiki in the "Unusual now" panel
and saves a screenshot taken by headless Chromium: the hour's totals, the wiki's
history and what its newest window was made of (bots, humans, kinds, bytes).
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from pathlib import Path

import redis
import uvicorn

from dashboard.app import create_app
from dashboard.settings import DashboardSettings
from devtools.servers import free_port, provide
from devtools.shapes import breakdowns_like_recording, windows_like_recording, write_complete
from wikipulse.store.keys import KeyLayout
from wikipulse.store.window_store import WindowStore

WINDOW = 30_000
BOT = "fr.wikipedia.org"


def fill(url: str, prefix: str) -> None:
    now = int(time.time() * 1000)
    store = WindowStore(redis.Redis.from_url(url), KeyLayout(prefix))
    windows = windows_like_recording(130, events_per_window=1_300)
    run = 25 * 30  # a bot at 25 edits/s
    for counts in windows[-10:]:
        counts[BOT] = counts.get(BOT, 0) + run
    parts = breakdowns_like_recording(windows[:-10])
    parts += breakdowns_like_recording(windows[-10:], seed=1, bots={BOT: run})
    write_complete(store, now - now % WINDOW - WINDOW, windows, WINDOW, parts)
    store.close()


def main() -> None:
    from playwright.sync_api import sync_playwright

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/dashboard.png")
    with provide(need=("redis",)) as services:
        prefix = "screenshot:"
        fill(services.redis_url, prefix)
        settings = DashboardSettings(redis_url=services.redis_url, redis_key_prefix=prefix)
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings), port=port, log_level="warning")
        )
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.1)
        chromium = shutil.which("chromium") or "/usr/bin/chromium"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(f"http://127.0.0.1:{port}")
            page.wait_for_selector("#unusual tbody tr")
            page.locator("#unusual tbody tr", has_text=BOT).click()
            page.wait_for_selector("#history g.point")
            page.wait_for_selector("#parts tbody tr")
            page.wait_for_selector("#status.live")
            page.screenshot(path=str(target), full_page=True)
            browser.close()
        server.should_exit = True
    print(f"wrote {target}")


if __name__ == "__main__":
    main()

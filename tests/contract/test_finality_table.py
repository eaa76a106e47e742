"""One rule, two languages: a window is final once the partition's clock has closed it.

`processor.windows` (Python) decides what is late with it; `write_windows.lua` decides
what to finalize with it. The same table of cases runs through both, so they can never
disagree: an event Python counts must land in a window Lua has not finalized yet, and a
window Lua finalizes must be one Python would call closed.
"""

from __future__ import annotations

import pytest
import redis

from processor.windows import closed_end, tally
from tests.support.names import Names
from wikipulse.events import HEARTBEAT_KEY
from wikipulse.store.keys import KeyLayout
from wikipulse.store.window_store import WindowStore
from wikipulse.store.writes import Progress

W, G = 30_000, 5_000
S = 1_767_225_600_000  # a window start

#: (event time, the partition clock after it) as offsets from S, and whether the window
#: of S is final then
CASES = [
    (1_000, 1_000, False),  # the clock inside the window
    (1_000, W - 1, False),  # at its last millisecond
    (1_000, W + G - 1, False),  # the grace not yet over
    (1_000, W + G, True),  # the grace just over: final
    (1_000, 2 * W + G, True),  # a window later
    (W - 1, W + G - 1, False),  # the window's last millisecond, the grace not over
]


@pytest.mark.parametrize(("event", "clock", "final"), CASES)
def test_python_and_lua_agree_on_when_a_window_is_final(redis_url, event, clock, final):
    store = WindowStore(redis.Redis.from_url(redis_url), KeyLayout(Names.fresh().prefix))
    records = [
        (0, S + event, b"en.wikipedia.org", b""),
        (1, S + clock, HEARTBEAT_KEY.encode(), b""),
    ]
    counted = tally(records, Progress(), window_ms=W, grace_ms=G)
    python_final = closed_end(S + clock, W, G) >= S + W
    assert python_final is final and counted.closed_end == closed_end(S + clock, W, G)
    # Python: an event for this window after the clock is late exactly when it is final
    late = tally([(2, S + event, b"x.org", b"")], counted.progress, window_ms=W, grace_ms=G)
    assert (late.late == 1) is python_final
    # Lua: the window is finalized by the same batch exactly when it is final
    store.write(counted.batch(0, Progress()), partitions=2, window_ms=W, ttl_seconds=60, source="t")
    keys = store.keys.source("t")
    lua_final = store.client.exists(keys.final(S)) == 1
    assert lua_final is final
    assert (store.open_windows(0, "t") == {S}) is not python_final

"""The Redis contract: where windows live, how they are written, how they are read.

Import each name from the room it lives in:

- `keys`: the key layout (`KeyLayout`, `SourceKeys`), the one place keys are built;
- `values`: what stored values mean (`BREAKDOWN`, `Breakdown`, `ALL_WIKIS`) and the
  resolutions of history (`Rollup`, `ROLLUPS`, `WINDOW_RESOLUTION`, `RESOLUTIONS`);
- `writes`: the processor's side (`Batch`, `Progress`, `StaleProgress`, `Written`,
  `WindowWriter`) and, beside it, `write_windows.lua`, the window lifecycle it runs;
- `reads`: complete windows, leaderboards, breakdowns, unusual wikis and health
  (`WindowReader`, `WindowSummary`, `Leaderboard`, `UnusualReport`, `Health`);
- `history`: series of windows and buckets (`HistoryReader`, `Point`, `Breakdowns`,
  `TooManyPoints`);
- `base`: the client and key layout both sides stand on, and ``meta``;
- `window_store`: `WindowStore`, both sides on one client (`WindowStore.connect`).

The table of keys is in docs/architecture.md ("The Redis contract").
"""

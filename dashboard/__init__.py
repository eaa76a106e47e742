"""The dashboard and the CLI: read-only views of the windows in Redis.

They read through `wikipulse.store` and nothing else, and only complete windows, so
they never show a partial leaderboard.
"""

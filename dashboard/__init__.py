"""The dashboard and the CLI: read-only views of the windows in Redis.

They read the key layout of `processor.keys` and nothing else, and only through the
index of complete windows, so they never show a partial leaderboard.
"""

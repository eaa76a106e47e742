"""Durations as people write them in settings and on command lines: ``90s``, ``30m``,
``1h``, ``1.5d`` (the producer's ``BACKFILL``, the replay server's ``--history``)."""

from __future__ import annotations

import re

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def duration_ms(text: str) -> int | None:
    """``90s``, ``30m``, ``1h``, ``1.5d`` as milliseconds; None for anything else."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        return None
    return int(float(match.group(1)) * _UNIT_MS[match.group(2)])

"""What is unusual right now: each wiki's count against its own recent baseline.

For a complete window ``S`` the baseline of a wiki is its counts in the complete windows
of the hour before ``S`` (a wiki absent from a window counted 0 there). A wiki is
*unusual* in ``S`` when

* its count is at least ``min_count`` (a wiki going from 0 to 3 is noise, not news), and
* it is more than ``threshold`` robust deviations above its baseline median:
  ``count > median + threshold * scale``, with ``scale = max(1.4826 * MAD, sqrt(median),
  1)``.

Median and MAD (median absolute deviation; 1.4826 makes it comparable to a standard
deviation for normal data) are robust: one earlier burst in the baseline moves them
little, where a mean and a standard deviation would be dragged along and hide the next
one. The ``sqrt(median)`` floor is the spread of a Poisson count of that size: a wiki
whose counts were identical in every window (MAD 0) is not flagged for one event more.

Only complete windows are used, and the baseline is defined by time (the windows that
start in ``[S - baseline, S)``), so the same window always gives the same answer.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: Makes the MAD an estimate of the standard deviation for normally distributed data.
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True, slots=True)
class Unusual:
    server_name: str
    count: int
    baseline_median: float
    baseline_scale: float
    score: float  # deviations above the median: (count - median) / scale


@dataclass(frozen=True, slots=True)
class Rule:
    """When a count is unusual (the `UNUSUAL_*` settings)."""

    threshold: float = 5.0
    min_count: int = 20
    min_baseline_windows: int = 10


def baseline(history: Sequence[int]) -> tuple[float, float]:
    """Median and robust scale of one wiki's counts in the baseline windows."""
    median = statistics.median(history)
    mad = statistics.median(abs(c - median) for c in history)
    return median, max(MAD_TO_SIGMA * mad, math.sqrt(median), 1.0)


def find_unusual(
    window: Mapping[str, int], history: Sequence[Mapping[str, int]], rule: Rule
) -> list[Unusual]:
    """The unusual wikis of ``window`` given the ``history`` windows, most unusual first.

    Nothing is unusual without at least ``rule.min_baseline_windows`` windows of history.
    """
    if len(history) < rule.min_baseline_windows:
        return []
    found = []
    for name, count in window.items():
        if count < rule.min_count:
            continue
        median, scale = baseline([h.get(name, 0) for h in history])
        score = (count - median) / scale
        if score > rule.threshold:
            found.append(Unusual(name, count, median, round(scale, 3), round(score, 2)))
    return sorted(found, key=lambda u: (-u.score, u.server_name))

"""The Redis key layout: the contract with every reader (dashboard, CLI, your scripts).

For a window starting at ``S`` (epoch ms, a multiple of the window length) and the
default prefix ``wikipulse:``:

=============================  ===========  =================================================
key                            type         content
=============================  ===========  =================================================
``wikipulse:window:S``         sorted set   member = server name, score = events in the window
``wikipulse:windows``          sorted set   the index of *complete* windows: member = ``S`` as
                                            text, score = ``S``
``wikipulse:closed``           hash         field = raw-topic partition, value = end (ms) of the
                                            newest window that partition has finalized
``wikipulse:pending``          sorted set   windows with counts written but not yet complete
channel ``wikipulse:windows``  pub/sub      ``S`` is published when window ``S`` becomes complete
=============================  ===========  =================================================

The completeness rule: window ``S`` is complete when every partition of the raw topic has
finalized past it (``closed[p] >= S + window`` for all ``p``). Only then is ``S`` added to
the index and announced; partitions still write their counts as they finalize, so a
reader that wants final numbers goes through the index, never straight to a window key.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KeyLayout:
    prefix: str = "wikipulse:"

    def window(self, start_ms: int | str) -> str:
        return f"{self.prefix}window:{start_ms}"

    @property
    def window_prefix(self) -> str:
        return f"{self.prefix}window:"

    @property
    def index(self) -> str:
        return f"{self.prefix}windows"

    @property
    def closed(self) -> str:
        return f"{self.prefix}closed"

    @property
    def pending(self) -> str:
        return f"{self.prefix}pending"

    @property
    def channel(self) -> str:
        return f"{self.prefix}windows"

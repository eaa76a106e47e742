"""What the stored values mean: a breakdown's fields, and the resolutions of history.

The writer (the processor tallies breakdowns in `BREAKDOWN` order), the Lua step (which
adds them up field by field) and every reader (`Breakdown.decode`) share this
vocabulary, so it lives apart from all three. It needs no Redis: the processor's pure
window rules (`processor.windows`) import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wikipulse.events import CHANGE_TYPES

#: The fields of a breakdown, in the order of its stored value (comma-separated
#: integers): events, events by bots, events per change type
#: (`wikipulse.events.CHANGE_TYPES`), bytes added, bytes removed (sizes of the events
#: that have lengths: a change of +d adds d, of -d removes d). ``count - bot`` are the
#: humans'; ``added - removed`` is the net change, ``added + removed`` all bytes changed.
BREAKDOWN: tuple[str, ...] = ("count", "bot", *CHANGE_TYPES, "added", "removed")
#: The member of a breakdown that holds the sum over every wiki (no wiki has this name:
#: an empty server name is never counted).
ALL_WIKIS = ""


@dataclass(frozen=True, slots=True)
class Rollup:
    """One resolution of history: buckets of ``seconds``, kept ``ttl_seconds``."""

    name: str
    seconds: int
    ttl_seconds: int

    @property
    def ms(self) -> int:
        return self.seconds * 1000


#: The resolutions complete windows roll up into (and their default retention).
ROLLUPS: tuple[Rollup, ...] = (
    Rollup("5m", 300, 7 * 86_400),
    Rollup("1h", 3_600, 90 * 86_400),
    Rollup("1d", 86_400, 730 * 86_400),
)
#: The name readers give the windows themselves, the finest resolution.
WINDOW_RESOLUTION = "window"
#: Every resolution a reader may ask for by name, finest first: the windows, then each
#: rollup (the names the API, the CLI and the series reader accept).
RESOLUTIONS: tuple[str, ...] = (WINDOW_RESOLUTION, *(rollup.name for rollup in ROLLUPS))


@dataclass(frozen=True, slots=True)
class Breakdown:
    """What the events of one wiki (or of all) in a window or bucket were made of."""

    count: int = 0
    bot: int = 0
    #: events per change type (`wikipulse.events.CHANGE_TYPES`, every type present)
    types: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHANGE_TYPES, 0))
    added: int = 0
    removed: int = 0

    @property
    def human(self) -> int:
        return self.count - self.bot

    @property
    def net_bytes(self) -> int:
        return self.added - self.removed

    @property
    def changed_bytes(self) -> int:
        """Bytes added plus bytes removed."""
        return self.added + self.removed

    @classmethod
    def decode(cls, value: bytes | None) -> Breakdown:
        """A stored breakdown value (`BREAKDOWN` order); absent: nothing counted."""
        if not value:
            return cls()
        numbers = [int(x) for x in value.split(b",")]
        numbers += [0] * (len(BREAKDOWN) - len(numbers))
        found = dict(zip(BREAKDOWN, numbers, strict=False))
        types = {t: found[t] for t in CHANGE_TYPES}
        return cls(found["count"], found["bot"], types, found["added"], found["removed"])

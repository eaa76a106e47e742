"""What every benchmark run does around its measurements, in one place.

`make bench` (`benchmarks.__main__`) and `make bench-cluster` (`benchmarks.cluster`)
measure different things the same way: a SIGTERM (e.g. from `timeout`) unwinds
normally, so the servers started for the run stop; the machine's calibration is printed
and recorded at the start and at the end, since a figure without it cannot tell a slow
machine from a regression (`benchmarks.calibration`); and the figures are written as
JSON to benchmarks/results/.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks.calibration import calibrate, describe

RESULTS = Path(__file__).resolve().parent / "results"
#: The window length, grace and partitions the catch-up parts preload and count with.
WINDOW_MS, GRACE_MS, PARTITIONS = 30_000, 5_000, 6


@dataclass
class Run:
    """One run: where it prints, and its report (saved by `save`)."""

    console: Console
    report: dict[str, Any]

    @classmethod
    def start(cls, events: int) -> Run:
        """Begin a run of ``events`` events: the report starts with the date, the machine
        and its calibration, which is printed."""
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        # wide enough for the tables when the output is a file or a CI log
        console = Console(width=None if sys.stdout.isatty() else 150)
        calibration = calibrate()
        console.print(describe(calibration))
        report: dict[str, Any] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "events": events,
            "cpus": os.cpu_count(),
            "calibration": calibration,
        }
        return cls(console, report)

    def calibrate_end(self) -> None:
        """Calibrate again, once the measurements are done (before anything is printed)."""
        self.report["calibration_end"] = calibrate()

    def save(self, kind: str = "", *, latest: bool = False) -> Path:
        """Print both calibrations and write the report to
        ``results/<kind><date>.json`` (and ``results/latest.json`` with ``latest``)."""
        self.console.print(f"at the start: {describe(self.report['calibration'])}")
        self.console.print(f"at the end:   {describe(self.report['calibration_end'])}")
        RESULTS.mkdir(exist_ok=True)
        text = json.dumps(self.report, indent=2)
        out = RESULTS / f"{kind}{self.report['date'][:19].replace(':', '')}.json"
        out.write_text(text)
        if latest:
            (RESULTS / "latest.json").write_text(text)
        self.console.print(f"figures written to {out}")
        return out

"""What machine made the figures: its Python speed, its CPU, and the code measured.

The limit contender is mostly C (librdkafka, orjson) while the processor and Bytewax are
mostly Python, so their ratio moves with the machine's Python speed: a figure without
this calibration cannot tell a slow machine from a regression.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import timeit
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _best_us(statement: Any, number: int) -> float:
    return round(min(timeit.repeat(statement, number=number, repeat=5)) / number * 1e6, 2)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _commit() -> str:
    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def calibrate() -> dict[str, Any]:
    """Python speed on two small pure-Python loads, plus CPU, versions and commit."""
    ints = list(range(1000))
    small = {"server_name": "en.wikipedia.org", "meta": {"id": "x" * 36}, "n": [1, 2, 3]}
    return {
        "sum_of_squares_1000_ints_us": _best_us(lambda: sum(i * i for i in ints), 1000),
        "json_round_trip_us": _best_us(lambda: json.loads(json.dumps(small)), 10_000),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "commit": _commit(),
    }


def describe(calibration: dict[str, Any]) -> str:
    return (
        f"machine: {calibration['cpu']}, {calibration['cpus']} CPUs, "
        f"Python {calibration['python']}; "
        f"sum(i*i) over 1 000 ints {calibration['sum_of_squares_1000_ints_us']} µs, "
        f"small json round trip {calibration['json_round_trip_us']} µs; "
        f"commit {calibration['commit']}"
    )

"""CPU time and memory of child processes, read from /proc (Linux)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Usage:
    cpu_seconds: float
    rss_kib: int
    peak_rss_kib: int


def usage(pid: int) -> Usage:
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(stat[11]) + int(stat[12])) / TICK  # utime + stime
    status = {
        line.split(":")[0]: line.split(":")[1].strip()
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if ":" in line
    }
    rss = int(status.get("VmRSS", "0 kB").split()[0])
    peak = int(status.get("VmHWM", "0 kB").split()[0])
    return Usage(cpu, rss, peak)

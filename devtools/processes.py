"""The services as processes, as a user starts them, for tests and benchmarks alike:
``python -m producer`` and the others from the project's root, output to a log file,
and what each costs (CPU, memory) read from /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")


def spawn(
    module: str, env: dict[str, str], log: Path, new_session: bool = False
) -> subprocess.Popen[bytes]:
    """``python -m module`` with ``env``, stdout and stderr appended to ``log``.
    ``new_session``: its own process group, so a signal to the caller's does not reach it."""
    with log.open("ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", module],
            env=env,
            cwd=ROOT,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
        )


@dataclass
class Service:
    """One service process; its output goes to ``log``."""

    module: str
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        self.process = spawn(self.module, self.env, self.log, new_session=True)
        return self

    def kill(self) -> None:
        """SIGKILL: no flush, no commit, no goodbye (and it must have died of it)."""
        assert self.process is not None
        assert self.process.poll() is None, f"{self.module} had already exited"
        self.process.kill()
        assert self.process.wait(10) == -signal.SIGKILL, self.process.returncode

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise AssertionError(f"{self.module} ignored SIGTERM for {timeout} s") from None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Usage:
    cpu_seconds: float
    rss_kib: int
    peak_rss_kib: int


def usage(pid: int) -> Usage:
    """CPU time (user + system) and resident memory of a process, from /proc (Linux)."""
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

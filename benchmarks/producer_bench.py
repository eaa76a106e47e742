"""Producer throughput: recorded events served as fast as a socket can, into Kafka."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from benchmarks.catchup import Result
from devtools.processes import spawn, usage
from devtools.recordings import DATA, load_events, restamp
from devtools.replay import frame, resume_offset
from devtools.servers import free_port


class FastSseServer:
    """Sends prebuilt SSE frames as fast as a socket can, with one disconnect and resume.

    The baseline (``?baseline=1``) gets every frame in one go. The producer's first
    connection gets the frames up to ``cut``, then the server closes it, as Wikimedia
    does every 15 minutes; the producer's reconnect with ``Last-Event-ID`` gets the rest,
    starting ``repeats`` frames before that id (a resume by timestamp repeats some, as
    Wikimedia's does), and then silence: the stream is quiet.
    """

    def __init__(self, frames: list[bytes], cut: int, repeats: int = 20) -> None:
        self.frames = frames
        self.cut = cut
        self.repeats = repeats
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        #: when each producer connection began to be served, and its first offset
        self.served: list[tuple[float, int]] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            conn, _ = self.sock.accept()
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            request += conn.recv(4096)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
        )
        if b"baseline=1" in request.split(b"\r\n", 1)[0]:
            conn.sendall(b"".join(self.frames))
            conn.close()
            return
        resumed = re.search(rb"(?im)^last-event-id:\s*(.+?)\r$", request)
        if resumed is None:
            self.served.append((time.monotonic(), 0))
            conn.sendall(b"".join(self.frames[: self.cut]))
            conn.close()
            return
        first = max(0, resume_offset(resumed.group(1).decode()) - self.repeats)
        self.served.append((time.monotonic(), first))
        conn.sendall(b"".join(self.frames[first:]))
        time.sleep(3600)  # quiet now


def frames(count: int) -> list[bytes]:
    """``count`` recorded events as SSE frames, each pass over the recording with fresh
    ``meta.id``s: the producer drops an event whose id it wrote already as a copy."""
    recorded = load_events(DATA / "recentchange-2026-06-20.sse")
    start = datetime.now(UTC)
    return [
        frame(i, restamp(recorded[i % len(recorded)], start, cycle=i // len(recorded)))
        for i in range(count)
    ]


def baseline(url: str, count: int) -> Result:
    """Only read the bytes and split them into SSE frames."""
    start, cpu = time.monotonic(), time.process_time()
    frames, rest = 0, b""
    with httpx.stream("GET", url, headers={"User-Agent": "bench"}, timeout=60) as response:
        for chunk in response.iter_bytes():
            parts = (rest + chunk).split(b"\n\n")
            rest = parts.pop()
            frames += len(parts)
    assert frames == count, (frames, count)
    return Result(
        "baseline: read + split SSE bytes",
        count,
        time.monotonic() - start,
        time.process_time() - cpu,
        0.0,
        note="in-process httpx",
    )


def run_producer(kafka: str, topic: str, count: int, workdir: Path) -> list[Result]:
    """The producer over ``count`` events with a disconnect and resume in the middle:
    results for the whole run, before the resume, after it, and the baseline."""
    cut = count * 2 // 5
    server = FastSseServer(frames(count), cut)
    url = f"http://127.0.0.1:{server.port}/v2/stream/recentchange"
    base = baseline(url + "?baseline=1", count)
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BROKER_ADDRESS": kafka,
        "RAW_TOPIC": topic,
        "SSE_URL": url,
        "BACKFILL": "0",  # the stream from its start, as generated
        "METRICS_PORT": str(port),
        "LOG_LEVEL": "WARNING",
    }
    proc = spawn("producer", env, workdir / "producer.log")
    try:
        while not server.served:
            if proc.poll() is not None:
                raise RuntimeError("producer exited")
            time.sleep(0.05)
        start, cpu0 = server.served[0][0], usage(proc.pid).cpu_seconds
        while published(port) < cut:
            time.sleep(0.05)
        cut_at, cpu_cut = time.monotonic(), usage(proc.pid).cpu_seconds
        while len(server.served) < 2:
            time.sleep(0.05)
        resumed_at = server.served[1][0]
        while published(port) < count:
            time.sleep(0.05)
        end_at, end = time.monotonic(), usage(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    rss = end.peak_rss_kib / 1024
    note = "parse, key, stamp, headers; idempotent, acks=all"
    return [
        Result(
            "wikipulse producer (whole run)",
            count,
            end_at - start,
            end.cpu_seconds - cpu0,
            rss,
            note=f"{note}; one resume after {cut} events, incl. the reconnect pause",
        ),
        Result(
            "  before the resume",
            cut,
            cut_at - start,
            cpu_cut - cpu0,
            rss,
            note="first connection until every event of it acked",
        ),
        Result(
            "  after the resume",
            count - cut,
            end_at - resumed_at,
            end.cpu_seconds - cpu_cut,
            rss,
            note="from the resumed connection's start",
        ),
        base,
    ]


def published(port: int) -> int:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return 0
    match = re.search(r"^wikipulse_producer_events_published_total (\S+)$", text, re.M)
    return int(float(match.group(1))) if match else 0


def main() -> None:
    """``python -m benchmarks.producer_bench [events]``: the producer part alone."""
    import sys
    import tempfile

    from benchmarks.calibration import calibrate
    from devtools.servers import provide

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    print(calibrate())
    with provide(need=("kafka",)) as services, tempfile.TemporaryDirectory() as tmp:
        topic = f"bench.producer.{time.monotonic_ns()}"
        for result in run_producer(services.kafka, topic, count, Path(tmp)):
            print(
                f"{result.name:34} {result.events:>8} {result.events_per_second:>9.0f}/s "
                f"{result.cpu_us_per_event:>7.1f} CPU µs/event"
            )


if __name__ == "__main__":
    main()

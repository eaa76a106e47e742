"""Producer throughput: recorded events served as fast as a socket can, into Kafka."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from benchmarks.catchup import Result, spawn
from benchmarks.data import DATA
from benchmarks.procstat import usage
from devtools.recordings import load_events, restamp
from devtools.replay import frame
from devtools.servers import free_port


class FastSseServer:
    """Sends a prebuilt SSE body in one go to each fresh client; resuming clients get silence."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.served_at: list[float] = []
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
        if re.search(rb"(?i)^last-event-id:", request, re.M):
            time.sleep(3600)  # a resuming producer: the stream is quiet now
        self.served_at.append(time.monotonic())
        conn.sendall(self.body)
        conn.close()


def body(count: int) -> bytes:
    """``count`` recorded events, each pass over the recording with fresh ``meta.id``s:
    the producer drops an event whose id it wrote already as a copy."""
    recorded = load_events(DATA / "recentchange-2026-06-20.sse")
    start = datetime.now(UTC)
    return b"".join(
        frame(i, restamp(recorded[i % len(recorded)], start, cycle=i // len(recorded)))
        for i in range(count)
    )


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


def run_producer(kafka: str, topic: str, count: int, workdir: Path) -> tuple[Result, Result]:
    server = FastSseServer(body(count))
    url = f"http://127.0.0.1:{server.port}/v2/stream/recentchange"
    base = baseline(url, count)
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
        while len(server.served_at) < 2:  # the baseline was the first client
            if proc.poll() is not None:
                raise RuntimeError("producer exited")
            time.sleep(0.01)
        start, cpu0 = server.served_at[-1], usage(proc.pid).cpu_seconds
        while published(port) < count:
            time.sleep(0.02)
        seconds = time.monotonic() - start
        end = usage(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
    ours = Result(
        "wikipulse producer",
        count,
        seconds,
        end.cpu_seconds - cpu0,
        end.peak_rss_kib / 1024,
        note="parse, key, stamp, headers; idempotent, acks=all",
    )
    return ours, base


def published(port: int) -> int:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return 0
    match = re.search(r"^wikipulse_producer_events_published_total (\S+)$", text, re.M)
    return int(float(match.group(1))) if match else 0

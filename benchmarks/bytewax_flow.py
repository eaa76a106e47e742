"""The job in Bytewax, the system of the original article, for the same harness.

Run by ``python -m bytewax.run benchmarks.bytewax_flow:flow`` in its own virtualenv
(.cache/bench-bytewax): Kafka input read to its end (``tail=False``), orjson decode,
30 s tumbling event-time windows counted per wiki, one Redis write per window result.
"""

import os
from datetime import UTC, datetime, timedelta

import bytewax.operators as op
import orjson
import redis
from bytewax.connectors.kafka import operators as kop
from bytewax.dataflow import Dataflow
from bytewax.operators.windowing import EventClock, TumblingWindower, count_window

ALIGN = datetime(2026, 1, 1, tzinfo=UTC)  # any multiple of 30 s aligns to the epoch
LENGTH = timedelta(seconds=30)
client = redis.Redis.from_url(os.environ["REDIS_URL"])
prefix = os.environ["REDIS_KEY_PREFIX"]

flow = Dataflow("wikipulse")
messages = kop.input(
    "kafka",
    flow,
    brokers=[os.environ["KAFKA_BROKER_ADDRESS"]],
    topics=[os.environ["RAW_TOPIC"]],
    tail=False,
)
events = op.filter_map("decode", messages.oks, lambda m: orjson.loads(m.value) if m.value else None)
clock = EventClock(
    lambda e: datetime.fromisoformat(e["meta"]["dt"]), wait_for_system_duration=timedelta(seconds=5)
)
counts = count_window(
    "count", events, clock, TumblingWindower(LENGTH, ALIGN), lambda e: e["server_name"]
)


def write(_step: str, item: tuple[str, tuple[int, int]]) -> None:
    wiki, (window_id, count) = item
    start = int((ALIGN + window_id * LENGTH).timestamp() * 1000)
    client.zadd(f"{prefix}window:{start}", {wiki: count})


op.inspect("redis", counts.down, write)

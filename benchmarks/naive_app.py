"""The straightforward Quix Streams version of the job, as a peer to compare with.

JSON deserializer, ``tumbling_window(30 s).count().final()``, one Redis write per window
result; default settings otherwise (at-least-once, per-key closing), except the commit
interval: the harness stops the clock when every offset is committed, so the naive app
commits as often as ours (``COMMIT_INTERVAL_SECONDS``, 0.5 s) instead of Quix's default
5 s, which would add up to 5 s of idle waiting to its time.
"""

from __future__ import annotations

import os

import redis
from quixstreams import Application


def main() -> None:
    app = Application(
        broker_address=os.environ["KAFKA_BROKER_ADDRESS"],
        consumer_group=os.environ["CONSUMER_GROUP"],
        auto_offset_reset="earliest",
        state_dir=os.environ["STATE_DIR"],
        loglevel="WARNING",
        commit_interval=float(os.environ.get("COMMIT_INTERVAL_SECONDS", "0.5")),
        # the topic ends with empty heartbeat records, which JSON cannot decode: skip them
        on_consumer_error=lambda _exc, _msg, _log: True,
    )
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    prefix = os.environ["REDIS_KEY_PREFIX"]
    topic = app.topic(os.environ["RAW_TOPIC"], value_deserializer="json")
    sdf = app.dataframe(topic)
    sdf = sdf.filter(lambda event: bool(event) and "server_name" in event)
    sdf = sdf.tumbling_window(30_000, grace_ms=5_000).count().final()

    def write(result: dict, key: bytes, _ts: int, _headers: object) -> None:
        client.zadd(f"{prefix}window:{result['start']}", {key.decode(): result["value"]})

    sdf.update(write, metadata=True)
    app.run()


if __name__ == "__main__":
    main()

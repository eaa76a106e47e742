"""The straightforward Quix Streams version of the job, as a peer to compare with.

JSON deserializer, ``tumbling_window(30 s, grace 5 s).count().final(closing_strategy=
"partition")``, one Redis write per window result; default settings otherwise
(at-least-once), except the commit interval: the harness stops the clock when every
offset is committed, so the naive app commits as often as ours
(``COMMIT_INTERVAL_SECONDS``, 0.5 s) instead of Quix's default 5 s, which would add up
to 5 s of idle waiting to its time.

``WINDOW_SECONDS`` and ``GRACE_SECONDS`` set the window (30 and 5 by default, as ours);
``NAIVE_CLOSING_STRATEGY`` (``partition`` by default, or ``key``) how windows close.
With ``partition``, any record of a partition closes every key's windows it has passed,
as our processor's partition clock does; the producer's heartbeats (empty records of
their own key) go through the window too, so they close a partition's last windows, and
they are counted under their own key only, which is never written. ``tests/integration/
test_oracle.py`` runs this job beside ours as an oracle.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import redis
from quixstreams import Application
from quixstreams.models.serializers import SerializationContext
from quixstreams.models.serializers.json import JSONDeserializer

#: The producer's heartbeat key (`wikipulse.events.HEARTBEAT_KEY`), written out here so
#: that this job shares no code with the one it checks.
HEARTBEAT_KEY = b"\x00heartbeat"


class JSONOrHeartbeat(JSONDeserializer):
    """JSON, except that an empty value (a heartbeat) is an empty object, not an error."""

    def __call__(self, value: bytes, ctx: SerializationContext) -> Any:
        return {} if value == b"" else super().__call__(value, ctx)


def main() -> None:
    window_ms = int(float(os.environ.get("WINDOW_SECONDS", "30")) * 1000)
    grace_ms = int(float(os.environ.get("GRACE_SECONDS", "5")) * 1000)
    asked = os.environ.get("NAIVE_CLOSING_STRATEGY", "partition")
    strategies: dict[str, Literal["key", "partition"]] = {"key": "key", "partition": "partition"}
    if asked not in strategies:
        raise SystemExit(f"NAIVE_CLOSING_STRATEGY is key or partition, not {asked!r}")
    closing = strategies[asked]
    app = Application(
        broker_address=os.environ["KAFKA_BROKER_ADDRESS"],
        consumer_group=os.environ["CONSUMER_GROUP"],
        auto_offset_reset="earliest",
        state_dir=os.environ["STATE_DIR"],
        loglevel="WARNING",
        commit_interval=float(os.environ.get("COMMIT_INTERVAL_SECONDS", "0.5")),
        # records JSON cannot decode (bad input) are skipped
        on_consumer_error=lambda _exc, _msg, _log: True,
    )
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    prefix = os.environ["REDIS_KEY_PREFIX"]
    topic = app.topic(os.environ["RAW_TOPIC"], value_deserializer=JSONOrHeartbeat())
    sdf = app.dataframe(topic)
    sdf = sdf.filter(
        lambda event, key, _ts, _headers: (
            isinstance(event, dict) and (key == HEARTBEAT_KEY or "server_name" in event)
        ),
        metadata=True,
    )
    sdf = sdf.tumbling_window(window_ms, grace_ms=grace_ms).count().final(closing_strategy=closing)

    def write(result: dict[str, Any], key: bytes, _ts: int, _headers: object) -> None:
        if key != HEARTBEAT_KEY:
            client.zadd(f"{prefix}window:{result['start']}", {key.decode(): result["value"]})

    sdf.update(write, metadata=True)
    app.run()


if __name__ == "__main__":
    main()

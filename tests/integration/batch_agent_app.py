"""A Faust worker with one batch agent, run as a real process by test_batch_agent.py.

It writes one JSON line per batch ([[partition, offset, value], ...]) to BATCH_OUT, and
raises on a record whose value is BATCH_FAIL_ON (when set): the crash path under test."""

from __future__ import annotations

import json
import os
from typing import Any

from beacon.runtime.faust_app import make_faust_app, run_worker
from beacon.runtime.faust_batch import batch_agent, use_batching_consumer
from beacon.runtime.settings import load_settings

TOPIC = "beacon.test.batches"

settings = load_settings()
app = make_faust_app("batch-test", settings, int(os.environ["BATCH_PORT"]), broker_max_poll_records=50)
use_batching_consumer(app)
topic = app.topic(TOPIC, key_serializer="raw", value_serializer="raw", partitions=4)
fail_on = os.environ.get("BATCH_FAIL_ON", "").encode() or None


@batch_agent(app, topic)
async def record_batch(messages: list[Any]) -> None:
    if fail_on is not None and any(m.value == fail_on for m in messages):
        raise RuntimeError("poison record")
    with open(os.environ["BATCH_OUT"], "a") as out:  # noqa: ASYNC230 - a test app: one small append per batch
        out.write(json.dumps([[m.partition, m.offset, m.value.decode()] for m in messages]) + "\n")


if __name__ == "__main__":
    run_worker(app, settings)

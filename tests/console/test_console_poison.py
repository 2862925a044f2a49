"""No record freezes the console: arbitrary records (hypothesis, ``harness/poison.py``),
null values, 100,000-deep JSON, a ~950 KB invalid record, wrong shapes and unknown types
on every topic it reads (events, alerts, acks, audit, console users), before it starts and while it
runs. It stays ready (/healthz and /readyz 200: a deep record made /readyz 503
RecursionError forever), counts each skipped record in
beacon_console_records_skipped_total{topic,reason}, and shows the valid record produced
after the poison. (It dead-letters nothing: it is one of many read-only replicas; the
workers reading those topics write the letters.)"""

from __future__ import annotations

import re
import time

import httpx
import pytest
from hypothesis import HealthCheck, Phase, example, given
from hypothesis import settings as hypothesis_settings

from beacon.core.topics import ACKS, ALERTS, AUDIT, CONSOLE_USERS, EVENTS
from beacon.runtime.decoding import REASON_CLASSES
from console.support import console_url, logged_in_client, reported_event
from harness.kafka import produce, produce_events
from harness.poison import arbitrary_records, named_poison

pytestmark = pytest.mark.slow

TOPICS = (EVENTS, ALERTS, ACKS, AUDIT, CONSOLE_USERS)
POISON_KEY = b"CH-POISON-KEY-1"  # kafka-python needs a key for a null value
SKIPPED = re.compile(r'^beacon_console_records_skipped_total\{reason="([^"]+)",topic="([^"]+)"\} (\S+)$', re.MULTILINE)


def skipped(settings) -> dict[tuple[str, str], float]:
    text = httpx.get(f"{console_url(settings)}/metrics", timeout=5).text
    return {(topic, reason): float(n) for reason, topic, n in SKIPPED.findall(text)}


def test_poison_already_on_every_topic_at_start_is_skipped_and_the_console_gets_ready(settings, start_console):
    for topic in TOPICS:
        produce(settings, topic, [(POISON_KEY, value) for value in named_poison()])
    produce_events(settings, EVENTS, [reported_event("CH-AFTER-0001", "MET-AFTER-001")])
    start_console()  # returns once /readyz answers 200
    assert httpx.get(f"{console_url(settings)}/healthz").status_code == 200
    ready = httpx.get(f"{console_url(settings)}/readyz").json()
    assert ready["ready"] is True and ready["failed"] is None
    counts = skipped(settings)
    assert {topic: sum(n for (t, _), n in counts.items() if t == topic) for topic in TOPICS} == {
        topic: len(named_poison()) for topic in TOPICS
    }
    assert {reason for _, reason in counts} <= set(REASON_CLASSES)
    assert "CH-AFTER-0001" in logged_in_client(settings).get("/").text


@pytest.fixture
def running_console(settings, start_console):
    start_console()
    return {"examples": 0, "poisoned": 0, "client": logged_in_client(settings)}


@hypothesis_settings(
    max_examples=6, deadline=None, phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck)
)
@example(extra=named_poison())
@given(extra=arbitrary_records)
def test_poison_arriving_while_it_runs_is_skipped_and_the_next_record_shown(settings, running_console, extra):
    running_console["examples"] += 1
    child = f"CH-POISON-{running_console['examples']:04d}"
    for topic in TOPICS:
        produce(settings, topic, [(POISON_KEY, value) for value in extra])
    running_console["poisoned"] += len(TOPICS) * len(extra)
    produce_events(settings, EVENTS, [reported_event(child, f"MET-{child}")])
    deadline = time.monotonic() + 60
    while child not in running_console["client"].get("/").text:
        assert time.monotonic() < deadline, "the valid record after the poison never appeared"
        time.sleep(0.3)
    while sum(skipped(settings).values()) < running_console["poisoned"]:  # the topics are read in any order
        assert time.monotonic() < deadline, f"skipped {skipped(settings)}, poisoned {running_console['poisoned']}"
        time.sleep(0.3)
    assert sum(skipped(settings).values()) == running_console["poisoned"]
    assert httpx.get(f"{console_url(settings)}/healthz").status_code == 200
    ready = httpx.get(f"{console_url(settings)}/readyz").json()
    assert ready["ready"] is True and ready["failed"] is None

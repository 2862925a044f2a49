"""No record stops a worker: arbitrary records (hypothesis, ``harness/poison.py``: bytes,
JSON of any shape, event-shaped JSON that breaks the contract), null values, 100,000-deep
JSON, a ~950 KB invalid record, wrong shapes and unknown types, produced to every topic
each Faust worker reads, against the real worker processes on the real broker.

For each worker: it stays up (process alive, /healthz and /readyz 200), every poison
record is dead-lettered to beacon.events.dlq with its reason (matched by SHA-256 and
source topic), and the valid record produced after the poison is processed. The console
(a read-only projection) is covered in tests/console/test_console_poison.py."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, example, given
from hypothesis import settings as hypothesis_settings

from beacon.core.alerts import AlertRecord, Severity, alert_id
from beacon.core.events import build_event
from beacon.core.topics import ACKS, ALERTS, ALERTS_BACKLOG, EVENTS, EVENTS_DLQ, EVENTS_RAW
from beacon.runtime.decoding import REASON_CLASSES
from harness.kafka import produce, read_topic
from harness.poison import arbitrary_records, named_poison
from harness.services import ServiceProcess

pytestmark = [pytest.mark.slow, pytest.mark.table_stores]

INPUTS = "beacon.notifier.inputs"


# A bounded number of examples against one running worker per test (each example: its
# poison on every topic, then one valid record; no shrinking against real processes).
fuzz = hypothesis_settings(
    max_examples=6,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
POISON_KEY = b"CH-PSN-KEY-1"  # kafka-python needs a key for a null value


def report(child: str, risk: str = "high") -> dict:
    now = datetime.now(UTC).replace(microsecond=0)
    return build_event(
        "beacon.episode.reported.v1",
        child,
        {
            "episode_ref": f"MET-{child}",
            "category": "missing",
            "started_at": (now - timedelta(minutes=10)).isoformat().replace("+00:00", "Z"),
            "risk": risk,
            "age_years": 14,
            "looked_after": True,
            "reporting_org": "met-police",
            "placing_council": "southwark",
        },
        time=now.isoformat().replace("+00:00", "Z"),
        source="urn:beacon:source:poison",
        event_id=f"psn-{child}",  # ids the doors accept: no four letters in a row
    )


class Poisoner:
    """Produces each example's poison and remembers every letter the worker owes."""

    def __init__(self, settings_, worker: ServiceProcess, port: int, topics: list[str]):
        self.settings, self.worker, self.port, self.topics = settings_, worker, port, topics
        self.owed: Counter[tuple[str, str | None]] = Counter()
        self.examples = 0

    def produce_poison(self, values: list[bytes | None]) -> str:
        """Every value to every topic; returns a fresh child reference for the valid record."""
        self.examples += 1
        for topic in self.topics:
            produce(self.settings, topic, [(POISON_KEY, value) for value in values])
            self.owed.update((topic, hashlib.sha256(v).hexdigest() if v is not None else None) for v in values)
        return f"CH-PSN-{self.examples:04d}"  # a reference the doors accept (no four letters in a row)

    def assert_dead_lettered_and_up(self, service: str) -> None:
        """One letter per poison record so far, from the topic it was on, with a known
        reason; the worker alive and ready."""
        expected = sum(self.owed.values())
        letters = [json.loads(r.value) for r in read_topic(self.settings, EVENTS_DLQ, expect=expected, timeout_s=120)]
        assert Counter((letter["topic"], letter["original_sha256"]) for letter in letters) == self.owed
        for letter in letters:
            assert letter["service"] == service and letter["reason_class"] in REASON_CLASSES and letter["reason"]
            assert isinstance(letter["partition"], int) and isinstance(letter["offset"], int)
        assert self.worker.process is not None and self.worker.process.poll() is None, self.worker.log_tail()
        assert httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=5).status_code == 200
        deadline = time.monotonic() + 30
        while httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, (
                f"{self.worker.name} not ready after the poison:\n{self.worker.log_tail()}"
            )
            time.sleep(0.5)


@pytest.fixture
def correlator(settings, env, tmp_path) -> Iterator[Poisoner]:
    with ServiceProcess("correlator", env, tmp_path / "correlator.log", port=settings.correlator_port) as worker:
        yield Poisoner(settings, worker, settings.correlator_port, [EVENTS])


@pytest.fixture
def validator(settings, env, tmp_path) -> Iterator[Poisoner]:
    with ServiceProcess("validator", env, tmp_path / "validator.log", port=settings.validator_port) as worker:
        yield Poisoner(settings, worker, settings.validator_port, [EVENTS_RAW])


@pytest.fixture
def notifier(settings, env, tmp_path) -> Iterator[Poisoner]:
    # Every example's alert pages the same on-call person: no one-a-minute bundling here.
    unthrottled = {**env, "BEACON_NOTIFIER_CONTACT_MIN_INTERVAL_S": "0"}
    with ServiceProcess("notifier", unthrottled, tmp_path / "notifier.log", port=settings.notifier_port) as worker:
        yield Poisoner(settings, worker, settings.notifier_port, [ALERTS, ALERTS_BACKLOG, ACKS, INPUTS])


@fuzz
@example(extra=named_poison())
@given(extra=arbitrary_records)
def test_the_correlator_dead_letters_any_record_and_still_raises_the_next_alert(correlator: Poisoner, extra):
    child = correlator.produce_poison(extra)
    produce(correlator.settings, EVENTS, [(child.encode(), json.dumps(report(child)).encode())])
    wait_for_records(correlator.settings, ALERTS, lambda r: AlertRecord.from_json(r.value).child_ref == child)
    correlator.assert_dead_lettered_and_up("correlator")


@fuzz
@example(extra=named_poison())
@given(extra=arbitrary_records)
def test_the_validator_dead_letters_any_record_and_still_forwards_the_next_event(validator: Poisoner, extra):
    child = validator.produce_poison(extra)
    produce(validator.settings, EVENTS_RAW, [(child.encode(), json.dumps(report(child)).encode())])
    wait_for_records(validator.settings, EVENTS, lambda r: json.loads(r.value)["subject"] == child)
    validator.assert_dead_lettered_and_up("validator")


@fuzz
@example(extra=named_poison())
@given(extra=arbitrary_records)
def test_the_notifier_dead_letters_any_record_on_each_topic_and_still_pages_the_next_alert(notifier: Poisoner, extra):
    child = notifier.produce_poison(extra)
    now = datetime.now(UTC)
    alert = AlertRecord(
        alert_id=alert_id(child, f"MET-{child}", "triage", "high"),
        status="raised",
        child_ref=child,  # type: ignore[arg-type]
        episode_ref=f"MET-{child}",
        rule="triage",
        step="high",
        severity=Severity.high,
        reason="Child reported missing, police risk high",
        council="southwark",
        occurred_at=now,
        emitted_at=now,
    )
    produce(notifier.settings, ALERTS, [(alert.key, alert.to_json())])
    outbox = notifier.settings.outbox_dir / "notifications.jsonl"
    deadline = time.monotonic() + 120
    while not (outbox.exists() and alert.alert_id in outbox.read_text()):
        assert time.monotonic() < deadline, notifier.worker.log_tail()
        time.sleep(0.5)
    notifier.assert_dead_lettered_and_up("notifier")


def wait_for_records(settings_, topic: str, match: Callable[[Any], bool]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(match(r) for r in read_topic(settings_, topic, expect=1, timeout_s=5, settle_s=0)):
            return
    raise AssertionError(f"no matching record on {topic}")

"""The correlator writes alert records as ``Alert`` (msgspec, not validated again);
every reader parses them as ``AlertRecord`` (pydantic). Both must stay one format."""

from __future__ import annotations

from datetime import UTC

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from beacon.core.alerts import Alert, AlertRecord, Severity, alert_id

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
# The correlator writes UTC times (engine.as_datetime, the worker's clock).
TIMES = st.datetimes(timezones=st.just(UTC))


def test_same_fields_in_the_same_order_with_the_same_defaults():
    fields = msgspec.structs.fields(Alert)
    assert [f.name for f in fields] == list(AlertRecord.model_fields)
    for f in fields:
        record_field = AlertRecord.model_fields[f.name]
        expected = msgspec.NODEFAULT if record_field.is_required() else record_field.default
        if f.name == "trigger_event_ids":
            expected = msgspec.NODEFAULT  # always written, as AlertRecord writes an empty tuple
        assert f.default == expected, f.name


@given(
    child=TEXT.filter(bool),
    episode=st.none() | TEXT,
    rule=TEXT,
    step=TEXT,
    severity=st.sampled_from(Severity),
    status=st.sampled_from(["raised", "resolved"]),
    reason=st.text(max_size=300),
    council=st.none() | TEXT,
    notify=st.none() | TEXT,
    occurred_at=TIMES,
    emitted_at=TIMES,
    triggers=st.lists(TEXT, max_size=3),
)
def test_an_alert_written_by_the_correlator_reads_back_as_the_same_record(
    child, episode, rule, step, severity, status, reason, council, notify, occurred_at, emitted_at, triggers
):
    fields = {
        "alert_id": alert_id(child, episode, rule, step),
        "status": status,
        "child_ref": child,
        "episode_ref": episode,
        "rule": rule,
        "step": step,
        "severity": severity,
        "reason": reason,
        "council": council,
        "notify": notify,
        "occurred_at": occurred_at,
        "emitted_at": emitted_at,
        "trigger_event_ids": tuple(triggers),
    }
    written = Alert(**fields).to_json()
    assert written == AlertRecord(**fields).to_json()  # byte for byte
    read = AlertRecord.from_json(written)
    assert read == AlertRecord(**fields)
    assert read.to_json() == written

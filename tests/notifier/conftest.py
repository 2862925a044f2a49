"""Shared builders for the notifier's unit tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from beacon.core.alerts import AlertRecord, Severity, alert_id
from beacon.notifier.oncall import OnCallConfig, load_oncall

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "oncall" / "example.yaml"
T0 = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def oncall() -> OnCallConfig:
    return load_oncall(EXAMPLE)


def make_alert(
    status: str = "raised",
    severity: Severity = Severity.high,
    rule: str = "triage",
    council: str | None = "southwark",
    episode: str | None = "MET-2026-000123",
    child: str = "CH-7F3A9C21",
    notify: str | None = None,
    step: str = "high",
) -> AlertRecord:
    return AlertRecord(
        alert_id=alert_id(child, episode, rule, step),
        status=status,
        child_ref=child,  # type: ignore[arg-type]
        episode_ref=episode,
        rule=rule,
        step=step,
        severity=severity,
        reason="Child reported missing, risk high",
        council=council,
        notify=notify,
        occurred_at=T0,
        emitted_at=T0,
    )

"""The bulk import CLI against a real broker."""

from __future__ import annotations

import csv
import json

import pytest

from beacon.core.events import event_from_json
from beacon.core.schemas import example_event
from beacon.core.topics import EVENTS_HISTORY
from harness.cli import beacon_cli
from harness.kafka import read_topic
from harness.services import REPO_ROOT

from .forbidden import forbidden_events

pytestmark = pytest.mark.slow


def _history(n: int) -> list[dict]:
    events = []
    for i in range(n):
        event = example_event("beacon.episode.sighting.v1")
        event.update(id=f"hst-{i:05d}", subject=f"CH-HST-{i % 7:03d}")
        events.append(event)
    return events


def _write_jsonl(path, events, bad_lines):
    lines = [json.dumps(e) for e in events]
    for position, text in bad_lines:
        lines.insert(position, text)
    path.write_text("\n".join(lines) + "\n")


def test_import_counts_rejects_dry_run_and_resume(settings, ingest_env, tmp_path):
    events = _history(40)
    bad_risk = {**example_event("beacon.episode.reported.v1"), "id": "hst-bad-1"}
    bad_risk["data"] = {**bad_risk["data"], "risk": "extreme"}
    source = tmp_path / "history.jsonl"
    _write_jsonl(source, events, [(5, "{broken json"), (20, json.dumps(bad_risk))])
    rejects = tmp_path / "rejects.jsonl"

    dry = beacon_cli(ingest_env, "import", str(source), "--dry-run", "--rejects", str(rejects))
    assert "dry run" in dry.stdout and "accepted: 40" in dry.stdout and "rejected: 2" in dry.stdout
    assert read_topic(settings, EVENTS_HISTORY, expect=0, settle_s=1.0) == []
    assert not (tmp_path / "history.jsonl.checkpoint").exists()

    # An interrupted run (stopped after 15 lines), then a resume to the end.
    first = beacon_cli(ingest_env, "import", str(source), "--rejects", str(rejects), "--limit", "15", "--chunk", "4")
    assert "accepted: 14" in first.stdout and "rejected: 1" in first.stdout
    assert json.loads((tmp_path / "history.jsonl.checkpoint").read_text())["last_line"] == 15
    second = beacon_cli(ingest_env, "import", str(source), "--rejects", str(rejects), "--resume", "--chunk", "4")
    assert (
        "accepted: 26" in second.stdout and "rejected: 1" in second.stdout and "skipped (resume): 15" in second.stdout
    )
    assert "data/risk" in second.stdout  # summary by reason

    written = [event_from_json(r.value) for r in read_topic(settings, EVENTS_HISTORY, expect=40)]
    assert sorted(e.id for e in written) == sorted(e["id"] for e in events)  # each exactly once
    refused = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [r["line"] for r in refused] == [6, 21]
    assert "not valid JSON" in refused[0]["errors"][0]["reason"]
    assert refused[1]["errors"][0]["field"] == "data/risk"


def test_import_csv(settings, ingest_env, tmp_path):
    source = tmp_path / "council.csv"
    columns = [
        "id",
        "source",
        "type",
        "time",
        "subject",
        "data.level",
        "data.screened_at",
        "data.disclosure",
        "data.episode_ref",
        "data.status",
        "data.recorded_at",
        "data.reason",
    ]
    rows = [
        {
            "id": "swk-1",
            "source": "urn:beacon:source:southwark",
            "type": "beacon.cse.screened.v1",
            "time": "2025-03-01T10:00:00Z",
            "subject": "CH-CSV-001",
            "data.level": "high",
            "data.screened_at": "2025-03-01T09:00:00Z",
            "data.disclosure": "true",
        },
        {
            "id": "swk-2",
            "source": "urn:beacon:source:southwark",
            "type": "beacon.return_interview.recorded.v1",
            "time": "2025-03-04T10:00:00Z",
            "subject": "CH-CSV-001",
            "data.episode_ref": "MET-2025-1",
            "data.status": "declined",
            "data.recorded_at": "2025-03-04T09:00:00Z",
        },  # no reason: rejected
    ]
    with open(source, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    result = beacon_cli(ingest_env, "import", str(source))
    assert "accepted: 1" in result.stdout and "rejected: 1" in result.stdout
    [record] = read_topic(settings, EVENTS_HISTORY, expect=1)
    event = event_from_json(record.value)
    assert event.id == "swk-1" and event.data.disclosure is True and record.key == b"CH-CSV-001"


def test_the_csv_example_imports(settings, ingest_env):
    result = beacon_cli(ingest_env, "import", str(REPO_ROOT / "examples" / "history.csv"), "--dry-run")
    assert "accepted: 2" in result.stdout and "rejected: 0" in result.stdout


def test_import_refuses_what_the_schema_or_the_date_window_forbids(settings, ingest_env, tmp_path):
    probes = forbidden_events()
    source = tmp_path / "forbidden.jsonl"
    _write_jsonl(source, [event for _, event in probes], [])
    rejects = tmp_path / "rejects.jsonl"
    result = beacon_cli(ingest_env, "import", str(source), "--rejects", str(rejects))
    assert f"accepted: 0  rejected: {len(probes)}" in result.stdout
    refused = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [[e["field"] for e in r["errors"]] for r in refused] == [[field] for field, _ in probes]
    assert read_topic(settings, EVENTS_HISTORY, expect=0, settle_s=1.0) == []

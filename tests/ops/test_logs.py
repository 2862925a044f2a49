"""beacon.runtime.logs in a fresh interpreter (it reconfigures global logging): structlog and
stdlib lines come out as one JSON object per line, with payload-like keys redacted."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.services import REPO_ROOT, service_env

SCRIPT = r"""
import logging, warnings
from beacon.runtime.logs import configure_logging, get_logger
configure_logging("INFO")
log = get_logger("notifier")
log.info("alert paged", alert_id="A-1", channel="sms", body="BEACON HIGH: case MET-1", payload={"name": "Jolene Testchild"})
log.debug("below the level")
logging.getLogger("faust.worker").info("multi\nline table")
logging.getLogger("kafka.conn").info("chatty client line")
warnings.warn("a library warning")
raise RuntimeError("crash")
"""


def test_every_line_is_json_and_payload_keys_are_redacted():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(REPO_ROOT / "services"), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 1
    lines = (result.stdout + result.stderr).splitlines()
    records = [json.loads(line) for line in lines]  # fails on any non-JSON line
    assert [r["event"] for r in records][:2] == ["alert paged", "multi\nline table"]
    paged = records[0]
    assert paged["alert_id"] == "A-1" and paged["level"] == "info" and paged["service"] == "notifier"
    assert paged["body"] == "[redacted]" and paged["payload"] == "[redacted]"
    assert "MET-1" not in result.stdout and "Jolene" not in result.stdout
    assert not any(r["event"] in {"below the level", "chatty client line"} for r in records)
    assert any("a library warning" in r["event"] for r in records)
    crash = records[-1]
    assert crash["level"] == "critical" and "RuntimeError: crash" in crash["exception"]


@pytest.mark.parametrize("service", ["ingest", "validator", "correlator", "notifier", "console"])
def test_a_service_that_refuses_to_start_says_why_in_one_json_line(service, tmp_path):
    env = service_env(ingest_port="70000", data_dir=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "beacon", service], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    records = [json.loads(line) for line in (result.stdout + result.stderr).splitlines()]
    assert records and all({"event", "level", "timestamp"} <= r.keys() for r in records)
    assert records[-1]["event"] == "refused_to_start" and "BEACON_INGEST_PORT" in records[-1]["reason"]

"""Schemathesis against the published ``schemas/openapi.json`` and the ingest service as a
real process on a real broker: positive and negative data, every response check.

Negative data (anything the published schema forbids, e.g. ``"time": 1796000000`` or
``"age_years": "14"``) must be refused with a 4xx; no input may give a 5xx; every answer
must be a documented status with a body of its documented schema.
``positive_data_acceptance`` is left out on purpose: a request the schema allows can still
be refused for reasons a schema cannot express (the key's source and scope, the clock, the
cross-field rules), each with a documented 4xx that the other checks hold to.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from beacon.core.events import EVENT_TYPES
from beacon.ingest.openapi import OPENAPI_FILE
from harness.cli import beacon_cli
from harness.services import REPO_ROOT, ServiceProcess

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
CONFIG = HERE / "schemathesis.toml"


@pytest.fixture
def open_ingest(settings, ingest_env, tmp_path):
    """The ingest service with one scope for every type and no practical rate limit, so a
    refusal comes from the contract, not from the key's scope or the token bucket."""
    env = {
        **ingest_env,
        "BEACON_INGEST_SCOPES": json.dumps({"everything": sorted(EVENT_TYPES)}),
        "BEACON_INGEST_RATE_PER_S": "1000000",
        "BEACON_INGEST_RATE_BURST": "1000000",
    }
    with ServiceProcess("ingest", env, tmp_path / "ingest.log", port=settings.ingest_port):
        yield env


def test_ingest_is_exactly_as_strict_as_its_published_schema(settings, open_ingest, tmp_path):
    token = beacon_cli(
        open_ingest, "apikeys", "create", "--source", "met-police", "--scope", "everything"
    ).stdout.strip()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(CONFIG),
            "run",
            str(OPENAPI_FILE),
            "--url",
            f"http://127.0.0.1:{settings.ingest_port}",
            "--header",
            f"Authorization: Bearer {token}",
            "--mode",
            "all",
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "150",
            "--seed",
            "1",
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--suppress-health-check",
            "all",
            "--request-timeout",
            "30",
            "--no-color",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "services"), str(HERE)]),
            "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
        },
    )
    output = result.stdout + result.stderr
    (tmp_path / "schemathesis.txt").write_text(output)
    assert result.returncode == 0, output[-6000:]
    assert "No issues found" in output or "0 failures" in output or "passed" in output, output[-3000:]

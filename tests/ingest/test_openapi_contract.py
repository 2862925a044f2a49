"""The checked-in OpenAPI document is a usable contract: Prism (a third-party OpenAPI
validator, in tests/tools) loads it, accepts every example event and refuses a broken
one, so integrators can develop against ``prism mock schemas/openapi.json``."""

from __future__ import annotations

import copy
import time

import httpx
import pytest

from beacon.core.events import EVENT_TYPES
from beacon.core.schemas import example_event
from beacon.ingest.openapi import OPENAPI_FILE
from beacon.runtime import processes
from beacon.runtime.broker import free_port
from harness.services import REPO_ROOT

pytestmark = pytest.mark.slow

PRISM = REPO_ROOT / "tests" / "tools" / "node_modules" / ".bin" / "prism"


@pytest.fixture
def prism(tmp_path):
    port = free_port()
    process = processes.start(
        [PRISM, "mock", "-p", str(port), "-h", "127.0.0.1", OPENAPI_FILE], log_file=tmp_path / "prism.log"
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "prism.log").read_text()
            try:
                httpx.get(base + "/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        yield base
    finally:
        processes.stop(process, timeout_s=10)


def test_prism_accepts_the_examples_and_refuses_a_broken_event(prism):
    headers = {"Authorization": "Bearer bk_example", "Content-Type": "application/cloudevents+json"}
    with httpx.Client(base_url=prism, timeout=30) as client:
        for event_type in EVENT_TYPES:
            r = client.post("/v1/events", json=example_event(event_type), headers=headers)
            assert r.status_code == 202, (event_type, r.text)
        batch = [example_event(t) for t in EVENT_TYPES]
        r = client.post(
            "/v1/events", json=batch, headers={**headers, "Content-Type": "application/cloudevents-batch+json"}
        )
        assert r.status_code == 202, r.text

        broken = copy.deepcopy(example_event("beacon.episode.reported.v1"))
        broken["data"]["risk"] = "extreme"
        r = client.post("/v1/events", json=broken, headers=headers)
        assert r.status_code == 422

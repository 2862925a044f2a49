"""A restarted console resumes from its read model: the timeline is there at once and the
history is not read again (the real console process on this test's broker)."""

from __future__ import annotations

import json
import time

import pytest

from beacon.core.topics import ALERTS, EVENTS
from console.support import logged_in_client, raised_alert, reported_event
from harness.kafka import produce, produce_events
from harness.services import ServiceProcess

pytestmark = pytest.mark.slow


def feed_started(log_text: str) -> dict:
    lines = [json.loads(line) for line in log_text.splitlines() if '"console_feed_started"' in line]
    assert lines, log_text[-2000:]
    return lines[-1]


def test_the_timeline_survives_a_restart_without_a_full_replay(settings, console_env, tmp_path):
    children = [f"CH-RST-{n:03d}" for n in range(30)]
    produce_events(settings, EVENTS, [reported_event(c, f"EP-RST-{n:03d}") for n, c in enumerate(children)])
    alert = raised_alert(children[0], "EP-RST-000")
    produce(settings, ALERTS, [(alert.key, alert.to_json())])

    first_log, second_log = tmp_path / "console-1.log", tmp_path / "console-2.log"
    with ServiceProcess("console", console_env, first_log, port=settings.console_port):
        first = feed_started(first_log.read_text())
        assert first["records_to_read"] >= len(children) + 1  # an empty read model reads everything
        page = logged_in_client(settings).get(f"/children/{children[0]}").text
        assert "Reported missing by met-police" in page and "Alert raised" in page

    produce_events(settings, EVENTS, [reported_event("CH-RST-NEW", "EP-RST-NEW")])
    started = time.monotonic()
    with ServiceProcess("console", console_env, second_log, port=settings.console_port):
        print(f"restarted console ready in {time.monotonic() - started:.1f} s")  # measured by the bench, not here
        second = feed_started(second_log.read_text())
        # Only what arrived while it was down (and the small sessions topic) is read again.
        assert second["records_to_read"] < first["records_to_read"]
        assert second["records_to_read"] <= 1 + (second["records_at_start"] - first["records_at_start"])
        client = logged_in_client(settings)
        page = client.get(f"/children/{children[0]}").text
        assert "Reported missing by met-police" in page and "Alert raised" in page
        dashboard = client.get("/").text
        assert all(child in dashboard for child in [*children, "CH-RST-NEW"])

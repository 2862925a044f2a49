"""A real Prometheus scrapes the running services: the series exist and move when events flow.

Services run as real processes on a real broker; Debian's ``prometheus`` scrapes them every
second; every check goes through the HTTP query API and waits with a deadline (the first
sample appears a few seconds after start), never for a fixed time.
"""

from __future__ import annotations

import copy
from contextlib import ExitStack
from dataclasses import dataclass

import pytest

from beacon.core.schemas import example_event
from beacon.core.topics import EVENTS
from harness.kafka import produce_events
from harness.services import ServiceProcess
from ops.prometheus_server import PrometheusServer

pytestmark = pytest.mark.slow

# What every Faust worker exports on its own, before any event arrives.
WORKER_SERIES = ('beacon_timer_last_run_timestamp_seconds{loop="consumer_progress"}', "beacon_consumer_lag_records")


@dataclass(frozen=True)
class Scraped:
    name: str  # ``python -m beacon <name>``; scraped as job ``beacon-<name>``
    port_setting: str  # the Settings field holding its HTTP port
    must_export: tuple[str, ...] = ()  # selectors that must have series for this job


# Every service this test starts and Prometheus scrapes. Adding a service is one line.
SERVICES: tuple[Scraped, ...] = (
    Scraped("correlator", "correlator_port", WORKER_SERIES),
    Scraped("notifier", "notifier_port", WORKER_SERIES),
    Scraped("validator", "validator_port", WORKER_SERIES),
    Scraped("ingest", "ingest_port"),
    Scraped("console", "console_port"),
)

EVENT_COUNT = 5
DEADLINE_S = 90.0


def high_risk_reports(count: int) -> list[dict]:
    """Distinct children reported missing at high risk: each raises one alert and one page."""
    events = []
    for n in range(count):
        event = copy.deepcopy(example_event("beacon.episode.reported.v1"))
        event["id"] = f"scr-{n:04d}"
        event["subject"] = f"CH-SCR-{n:04d}"
        event["data"]["episode_ref"] = f"SCR-2026-{n:06d}"
        events.append(event)
    return events


def with_job(selector: str, job: str) -> str:
    if "{" in selector:
        return selector.replace("{", f'{{job="{job}",', 1)
    return f'{selector}{{job="{job}"}}'


def test_prometheus_scrapes_every_service_and_series_move_with_events(settings, env, tmp_path):
    with ExitStack() as stack:
        for service in SERVICES:
            stack.enter_context(
                ServiceProcess(
                    service.name, env, tmp_path / f"{service.name}.log", port=getattr(settings, service.port_setting)
                )
            )
        targets = {f"beacon-{s.name}": f"127.0.0.1:{getattr(settings, s.port_setting)}" for s in SERVICES}
        prometheus = stack.enter_context(PrometheusServer(tmp_path / "prometheus", targets))

        # Every target up, and each exports its own series before any event flows.
        for job in targets:
            prometheus.wait_for(lambda job=job: prometheus.value(f'up{{job="{job}"}}') == 1, DEADLINE_S, f"{job} up")
        for service in SERVICES:
            for selector in service.must_export:
                query = with_job(selector, f"beacon-{service.name}")
                prometheus.wait_for(lambda query=query: bool(prometheus.query(query)), DEADLINE_S, query)

        heartbeat = 'max(beacon_timer_last_run_timestamp_seconds{job="beacon-correlator",loop="consumer_progress"})'
        first_beat = prometheus.value(heartbeat)
        assert first_beat is not None
        assert prometheus.query("beacon_alerts_raised_total") == []  # nothing has happened yet

        produce_events(settings, EVENTS, high_risk_reports(EVENT_COUNT))

        committed = (
            'sum(beacon_consumer_committed_offset{job="beacon-correlator",group="beacon-correlator",'
            f'topic="{EVENTS}"}})'
        )
        moves = {
            committed: EVENT_COUNT,
            "sum(beacon_alerts_raised_total)": EVENT_COUNT,
            'sum(beacon_alerts_raised_total{rule="triage",severity="high"})': EVENT_COUNT,
            # Every alert reaches escalation step 1; the pages to one on-call person are
            # bundled (1 message a minute per contact), so at least one notification.
            'sum(beacon_escalation_steps_total{step="1"})': EVENT_COUNT,
            "sum(beacon_notifications_total)": 1,
            'sum(beacon_consumer_committed_offset{job="beacon-notifier",group="beacon-notifier"})': EVENT_COUNT,
        }
        for query, at_least in moves.items():
            prometheus.wait_for(
                lambda query=query, at_least=at_least: (prometheus.value(query) or 0) >= at_least,
                DEADLINE_S,
                f"{query} >= {at_least}",
            )
        # The heartbeat keeps beating, and once everything is committed nothing lags.
        prometheus.wait_for(lambda: prometheus.value(heartbeat) > first_beat, DEADLINE_S, "heartbeat moves")
        prometheus.wait_for(
            lambda: prometheus.value("sum(beacon_consumer_lag_records)") == 0, DEADLINE_S, "lag back to 0"
        )

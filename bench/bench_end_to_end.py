"""End-to-end paging latency: from the ingest API's 202 to the SMS request reaching the
Twilio mock (Prism behind the recording proxy), through real ingest, correlator and
notifier processes on the embedded broker.

National volume is ~590 child missing incidents a day (shared/domain.md); with the 2x
monthly swing, 10x peak is ~0.14 reports/s. The default (1/s for 90 reports) is ~7x
that again, so the run takes under two minutes; ``--rate 0.14 --reports 40`` is the
literal 10x peak. The notifier's per-contact limit (1 message a minute, bundling) is
set to 0 here: it is a deliberate delay, not pipeline latency.

    .venv/bin/python bench/bench_end_to_end.py [--reports N] [--rate R]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "services"), str(ROOT / "tests")]

import httpx

from beacon.core.events import build_event
from beacon.ingest.apikey_topic import ApiKeyStore
from beacon.ingest.settings import IngestSettings
from beacon.runtime.broker import EmbeddedBroker, free_port
from beacon.runtime.settings import load_settings
from beacon.runtime.topic_admin import ensure_topics
from harness import twilio_mock
from harness.services import ServiceProcess, service_env
from harness.stats import percentile


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def report(n: int) -> dict:
    now = datetime.now(UTC)
    return build_event(
        "beacon.episode.reported.v1",
        f"CH-E2E-{n:06d}",
        {
            "episode_ref": f"E2E-{n:06d}",
            "category": "missing",
            "started_at": iso(now - timedelta(minutes=20)),
            "risk": "high",
            "age_years": 14,
            "looked_after": True,
            "reporting_org": "met-police",
            "placing_council": "southwark",
        },
        time=iso(now),
        source="urn:beacon:source:met-police",
        event_id=f"e2e-{n}",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=90)
    parser.add_argument("--rate", type=float, default=1.0, help="reports per second")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name, EmbeddedBroker(log_file=Path(tmp_name) / "broker.log") as broker:
        tmp = Path(tmp_name)
        ports = {name: free_port() for name in ("ingest_port", "correlator_port", "notifier_port")}
        common = dict(
            kafka_bootstrap_servers=broker.bootstrap,
            kafka_single_record_batches=True,
            data_dir=tmp / "data",
            outbox_dir=tmp / "outbox",
            **ports,
        )
        ensure_topics(load_settings(**common))
        ingest_settings = load_settings(IngestSettings, **common)
        _, token = ApiKeyStore(ingest_settings).create("met-police", "police", ingest_settings.ingest_scopes)
        prism = twilio_mock.Prism(tmp / "prism.log").start()
        proxy = twilio_mock.TwilioProxy(prism).start()
        env = service_env(
            **common,
            oncall_file=ROOT / "deploy" / "oncall" / "example.yaml",
            twilio_account_sid=twilio_mock.ACCOUNT_SID,
            twilio_auth_token=twilio_mock.AUTH_TOKEN,
            twilio_from_number=twilio_mock.FROM_NUMBER,
            twilio_api_base_url=proxy.url,
            public_base_url=f"http://127.0.0.1:{ports['notifier_port']}",
            notifier_contact_min_interval_s=0,
            log_level="WARNING",
        )
        services = [
            ServiceProcess(name, env, tmp / f"{name}.log", port=ports[f"{name}_port"])
            for name in ("ingest", "correlator", "notifier")
        ]
        try:
            for service in services:
                service.start()
            accepted_at: dict[str, float] = {}
            client = httpx.Client(
                base_url=f"http://127.0.0.1:{ports['ingest_port']}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            start = time.time()
            for n in range(args.reports):
                time.sleep(max(0.0, start + n / args.rate - time.time()))
                event = report(n)
                response = client.post("/v1/events", json=event)
                if response.status_code != 202:
                    print(f"ingest refused report {n}: {response.status_code} {response.text}", file=sys.stderr)
                    return 1
                accepted_at[event["data"]["episode_ref"]] = time.time()
            arrived = proxy.first_seen(list(accepted_at))
            latencies = [(arrived[e] - accepted_at[e]) * 1000 for e in arrived]
            if not latencies:
                print("no SMS reached the Twilio mock", file=sys.stderr)
                return 1
            print(
                f"end to end: {len(arrived)}/{args.reports} reports paged at {args.rate:g}/s offered "
                f"(10x national peak is ~0.14/s)"
            )
            print(
                f"latency ingest 202 -> Twilio mock (ms): p50 {percentile(latencies, 50):.1f}  "
                f"p99 {percentile(latencies, 99):.1f}  max {max(latencies):.1f}  "
                f"mean {statistics.mean(latencies):.1f}  (target p99 < 500)"
            )
            return 0 if len(arrived) == args.reports else 1
        finally:
            for service in reversed(services):
                service.stop()
            proxy.stop()
            prism.stop()


if __name__ == "__main__":
    raise SystemExit(main())

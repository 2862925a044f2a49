"""Notifier latency and throughput: AlertRecord on ALERTS -> SMS request reaching the
Twilio mock (Prism behind the recording proxy), through a real notifier process on
the embedded broker.

National volume is ~590 child missing incidents a day (shared/domain.md); with a 2x
monthly peak, 10x peak is ~0.14 alerts/s. The default rate (3/s) is ~20x that, so
the run finishes in about a minute; ``--rate 0.14 --alerts 50`` is the literal 10x
peak. The per-contact rate limit is set to 0 here: it is a deliberate delay
(bundling), not pipeline latency, and with it every alert to the same on-call
person would wait for their one-a-minute slot. The latency includes the policy's
group wait (``group_seconds``, 2 s in the example on-call file: pages of one episode
raised together leave as one), so expect about 2 s plus the pipeline (measured: p50
2073 ms, p99 2555 ms with ``--alerts 60``; the hops before the dispatcher stay at tens
of milliseconds).

    PYTHONPATH=services:tests .venv/bin/python bench/bench_notifier.py [--alerts N] [--rate R]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "services"), str(ROOT / "tests")]

from beacon.core.alerts import AlertRecord, Severity, alert_id
from beacon.core.topics import ALERTS
from beacon.runtime.broker import EmbeddedBroker, free_port
from beacon.runtime.kafka import make_producer
from beacon.runtime.settings import load_settings
from beacon.runtime.topic_admin import ensure_topics
from harness import twilio_mock
from harness.services import ServiceProcess, service_env
from harness.stats import percentile


def print_hops(settings, sent_at: dict[str, float], arrived: dict[str, float]) -> None:
    """Where the time goes, from broker record timestamps: ALERTS -> the notifier's
    internal inputs topic (routing agent) -> first audit record (escalation agent)
    -> the SMS reaching the mock (dispatcher and Twilio client)."""
    from beacon.core.audit import AuditRecord
    from beacon.notifier.escalation import Envelope
    from harness.kafka import read_topic

    by_alert = {alert_id(f"CH-BENCH-{int(e.split('-')[1])}", e, "triage", "high"): e for e in sent_at}
    routed: dict[str, float] = {}
    for record in read_topic(settings, "beacon.notifier.inputs", expect=len(sent_at), timeout_s=10, settle_s=0.5):
        env = Envelope.from_json(record.value)
        if env.input.type == "raised":
            routed.setdefault(by_alert[env.alert_id], record.timestamp / 1000)
    audited: dict[str, float] = {}
    for record in read_topic(settings, "beacon.audit", expect=len(sent_at), timeout_s=10, settle_s=0.5):
        rec = AuditRecord.from_json(record.value)
        if rec.kind == "alert_raised" and rec.alert_id in by_alert:
            audited.setdefault(by_alert[rec.alert_id], record.timestamp / 1000)
    common = [e for e in arrived if e in routed and e in audited]
    if not common:
        return
    hops = {
        "ALERTS -> routed": [routed[e] - sent_at[e] for e in common],
        "routed -> escalated": [audited[e] - routed[e] for e in common],
        "escalated -> Twilio mock": [arrived[e] - audited[e] for e in common],
    }
    print(
        "  per hop, p50 / p99 (ms): "
        + "; ".join(
            f"{name} {percentile(v, 50) * 1000:.0f} / {percentile(v, 99) * 1000:.0f}" for name, v in hops.items()
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=150)
    parser.add_argument("--rate", type=float, default=3.0, help="alerts per second")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name, EmbeddedBroker(log_file=Path(tmp_name) / "broker.log") as broker:
        tmp = Path(tmp_name)
        port = free_port()
        settings = load_settings(
            kafka_bootstrap_servers=broker.bootstrap,
            kafka_single_record_batches=True,
            data_dir=tmp / "data",
            outbox_dir=tmp / "outbox",
            notifier_port=port,
        )
        ensure_topics(settings)
        prism = twilio_mock.Prism(tmp / "prism.log").start()
        proxy = twilio_mock.TwilioProxy(prism).start()
        env = service_env(
            kafka_bootstrap_servers=broker.bootstrap,
            kafka_single_record_batches=True,
            data_dir=tmp / "data",
            outbox_dir=tmp / "outbox",
            notifier_port=port,
            twilio_account_sid=twilio_mock.ACCOUNT_SID,
            twilio_auth_token=twilio_mock.AUTH_TOKEN,
            twilio_from_number=twilio_mock.FROM_NUMBER,
            twilio_api_base_url=proxy.url,
            public_base_url=f"http://127.0.0.1:{port}",
            notifier_contact_min_interval_s=0,
            log_level="WARNING",
        )
        notifier = ServiceProcess("notifier", env, tmp / "notifier.log", port=port)
        try:
            notifier.start()
            producer = make_producer(settings, linger_ms=0)
            sent_at: dict[str, float] = {}
            start = time.time()
            for n in range(args.alerts):
                due = start + n / args.rate
                time.sleep(max(0.0, due - time.time()))
                episode = f"BENCH-{n:06d}"
                now = datetime.now(UTC)
                alert = AlertRecord(
                    alert_id=alert_id(f"CH-BENCH-{n}", episode, "triage", "high"),
                    status="raised",
                    child_ref=f"CH-BENCH-{n}",
                    episode_ref=episode,
                    rule="triage",
                    step="high",
                    severity=Severity.high,
                    reason="bench",
                    council="southwark",
                    occurred_at=now,
                    emitted_at=now,
                )
                sent_at[episode] = time.time()
                producer.send(ALERTS, key=alert.key, value=alert.to_json())
                producer.flush()
            producer.close()
            arrived = proxy.first_seen(list(sent_at))
            latencies = [(arrived[e] - sent_at[e]) * 1000 for e in arrived]
            if not latencies:
                print("no SMS reached the Twilio mock", file=sys.stderr)
                return 1
            elapsed = max(arrived.values()) - start
            print(
                f"notifier: {len(arrived)}/{args.alerts} alerts paged at {args.rate:g}/s offered "
                f"(10x national peak is ~0.14/s); throughput {len(arrived) / elapsed:.2f} pages/s"
            )
            print(
                f"latency ALERTS -> Twilio mock (ms): p50 {percentile(latencies, 50):.1f}  "
                f"p99 {percentile(latencies, 99):.1f}  max {max(latencies):.1f}  "
                f"mean {statistics.mean(latencies):.1f}"
            )
            print_hops(settings, sent_at, arrived)
            return 0 if len(arrived) == args.alerts else 1
        finally:
            notifier.stop()
            proxy.stop()
            prism.stop()


if __name__ == "__main__":
    raise SystemExit(main())

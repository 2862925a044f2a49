"""A surge for one team: 50 children reported in 60 s, all paging the same on-call
phone, through a real notifier process (embedded broker, Prism behind the recording
proxy) with the default per-contact rate limit (one message a minute, bundles of five).

Prints, in the notifier's time from the first report: when every critical page had
reached the phone, and when every page had been delivered or listed in a bundle. The
surge itself runs in real time; afterwards the notifier's test clock is moved on a
minute at a time (so a ten-minute backlog takes seconds), and its time is real time
plus what was added.

    PYTHONPATH=services:tests .venv/bin/python bench/bench_surge.py [--reports 50] [--seconds 60] [--critical 0.2]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "services"), str(ROOT / "tests")]

from beacon.core.alerts import AlertRecord, Severity, alert_id
from beacon.core.topics import ALERTS
from beacon.notifier.oncall import load_oncall
from beacon.runtime.broker import EmbeddedBroker, free_port
from beacon.runtime.kafka import make_producer
from beacon.runtime.settings import load_settings
from beacon.runtime.topic_admin import ensure_topics
from harness import twilio_mock
from harness.services import ServiceProcess, service_env

ONCALL = ROOT / "deploy" / "oncall" / "example.yaml"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--critical", type=float, default=0.2, help="share of critical reports; the rest high")
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    severities = [Severity.critical if rng.random() < args.critical else Severity.high for _ in range(args.reports)]

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
            oncall_file=ONCALL,
            twilio_account_sid=twilio_mock.ACCOUNT_SID,
            twilio_auth_token=twilio_mock.AUTH_TOKEN,
            twilio_from_number=twilio_mock.FROM_NUMBER,
            twilio_api_base_url=proxy.url,
            public_base_url=f"http://127.0.0.1:{port}",
            notifier_test_clock=True,
            notifier_tick_interval_s=0.5,
            log_level="WARNING",
        )
        notifier = ServiceProcess("notifier", env, tmp / "notifier.log", port=port)
        base = f"http://127.0.0.1:{port}"
        try:
            notifier.start()
            now = datetime.fromisoformat(httpx.get(f"{base}/test/clock", timeout=5).json()["now"])
            phone = load_oncall(ONCALL).teams["southwark-mash"].rotation.on_call(now)
            number = next(c.to for c in load_oncall(ONCALL).people[phone].contacts if c.channel == "sms")
            producer = make_producer(settings, linger_ms=0)
            episodes: dict[str, Severity] = {}
            start = time.time()
            for n, severity in enumerate(severities):
                time.sleep(max(0.0, start + n * args.seconds / args.reports - time.time()))
                episode = f"SURGE-{n:04d}"
                at = datetime.now(UTC)
                alert = AlertRecord(
                    alert_id=alert_id(f"CH-SURGE-{n}", episode, "triage", severity.value),
                    status="raised",
                    child_ref=f"CH-SURGE-{n}",
                    episode_ref=episode,
                    rule="triage",
                    step=severity.value,
                    severity=severity,
                    reason="bench",
                    council="southwark",
                    occurred_at=at,
                    emitted_at=at,
                )
                episodes[episode] = severity
                producer.send(ALERTS, key=alert.key, value=alert.to_json())
                producer.flush()
            producer.close()

            advances: list[tuple[float, float]] = []  # (real time, seconds added)
            listed: dict[str, float] = {}
            deadline = time.time() + 300
            while len(listed) < len(episodes) and time.time() < deadline:
                for sms in proxy.delivered(number):
                    for episode in episodes:
                        if episode not in listed and episode in sms.body:
                            listed[episode] = sms.received_at
                if len(listed) < len(episodes) and time.time() - start > args.seconds + 2:
                    httpx.post(f"{base}/test/clock/advance", json={"seconds": 60}, timeout=5)
                    advances.append((time.time(), 60.0))
                time.sleep(1.0)

            def notifier_time(real: float) -> float:
                return real - start + sum(added for at, added in advances if at <= real)

            critical = [e for e, s in episodes.items() if s is Severity.critical]
            messages = proxy.delivered(number)
            print(
                f"surge: {len(episodes)} reports in {args.seconds:g} s for one team "
                f"({len(critical)} critical, {len(episodes) - len(critical)} high), one on-call phone, "
                f"one message a minute, bundles of five"
            )
            if len(listed) < len(episodes):
                print(f"  only {len(listed)} of {len(episodes)} pages reached the phone", file=sys.stderr)
                return 1
            every_critical = max(notifier_time(listed[e]) for e in critical) if critical else 0.0
            worst_critical_wait = max(
                (notifier_time(listed[e]) - args.seconds * int(e.split("-")[1]) / args.reports for e in critical),
                default=0.0,
            )
            print(f"  every critical page on the phone after {every_critical:.1f} s")
            print(f"  longest a critical page waited from its report: {worst_critical_wait:.1f} s")
            print(f"  every page delivered or listed after {max(notifier_time(t) for t in listed.values()):.1f} s")
            print(f"  SMS sent: {len(messages)}")
            return 0
        finally:
            notifier.stop()
            proxy.stop()
            prism.stop()


if __name__ == "__main__":
    raise SystemExit(main())

"""Years of history: does any worker's cost grow with what happened, not with what is open?

Runs the whole pipeline as real processes on the embedded broker (ingest, correlator,
notifier, console, Prism as the Twilio mock behind the recording proxy), then:

1. measures the EMPTY system: live page latency (ingest 202 -> SMS at the Twilio mock, p50
   and p99 over ``--live`` high-risk reports), the notifier's timer stall and reply lookup,
   the console's RSS and time to ready after a restart;
2. imports ``--years`` of synthetic national history (the correlator bench's generator,
   ``bench_correlator.synthetic_history``, as the doors accept it) with
   ``python -m beacon import``, and while the import is being worked through sends live
   reports and measures their page latency (``live_p99_during_import_ms``);
3. waits until the correlator has processed the whole import and the notifier and console
   have caught up, then measures everything of step 1 again on the LOADED system and prints
   each ratio loaded / empty.

Only public surfaces are measured, so the bench measures whatever notifier and console are
in the tree: HTTP (ingest 202, the Twilio mock, the notifier's signed SMS webhook, the
console's ``/readyz``), ``/metrics`` (the correlator's processed-events counter, consumer
lag), and the RSS of the console process (``/proc``).

- *Timer stall*: the notifier's timer pass runs on its event loop, so while it runs no
  HTTP request is answered. The bench probes the notifier's ``/healthz`` every 20 ms for
  ``--probe-s`` seconds (several timer periods) and reports the p99 and max answer time:
  a pass that scans everything ever stored shows up as a stall of its length.
- *Reply lookup*: an SMS reply with a code nobody was sent (``999a``) from an on-call
  number: the webhook's answer time is the lookup over that person's alerts.
- *Console*: SIGTERM, start again on the same data directory, time until ``/readyz`` is 200,
  then the RSS of the process.

The example on-call file is used with ``group_seconds: 0`` and the per-contact minimum
interval 0: both are deliberate delays (bundling), not pipeline latency.

Targets (issue 14) at ``--years 5``: ratios at most 1.5, console RSS under 400 MiB, console
ready under 30 s, live p99 under 2 s during the import. The default (``--years 0.02``, about
a week, ~18,000 events) finishes in a few minutes on 2 shared cores; ``--years 5`` imports
~5 M events and takes hours here.

    PYTHONPATH=services:tests .venv/bin/python bench/bench_history_scale.py [--years N]

Last line: ``history-scale: years=N live_p99_ratio=X timer_ratio=X console_rss_mib=N
console_ready_s=N live_p99_during_import_ms=N``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "services"), str(ROOT / "tests"), str(ROOT / "bench")]

import httpx

from beacon.core.events import build_event
from beacon.ingest.apikey_topic import ApiKeyStore
from beacon.ingest.settings import IngestSettings
from beacon.runtime import processes
from beacon.runtime.broker import EmbeddedBroker, free_port
from beacon.runtime.settings import load_settings
from beacon.runtime.topic_admin import ensure_topics
from bench_correlator import for_the_doors, synthetic_history
from harness import twilio_mock
from harness.kafka import read_alerts
from harness.services import ServiceProcess, service_env
from harness.stats import percentile

SERVICES = ("ingest", "correlator", "notifier", "console")
ONCALL_NUMBER = "+447700900001"  # an on-call worker of the example file (replies come from here)
PAGE_TIMEOUT_S = 180.0  # a live report not paged by then counts as paged then (and is reported)
CONSOLE_USER, CONSOLE_PASSWORD = "bench-duty", "bench-password-0123456789"


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def live_report(tag: str, n: int) -> dict:
    now = datetime.now(UTC)
    return build_event(
        "beacon.episode.reported.v1",
        f"CH-L{tag}-{n:06d}",
        {
            "episode_ref": f"L{tag}-{n:06d}",
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
        event_id=f"l{tag}-{n:06d}",
    )


def metric_sum(port: int, prefix: str, contains: str = "") -> float:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return -1.0
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(prefix) and contains in line and not line.startswith("#")
    )


def rss_mib(pid: int) -> float:
    """Resident set of a process and of its children (should the service fork)."""
    kib = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            kib = int(line.split()[1])
    children = Path(f"/proc/{pid}/task/{pid}/children")
    below = sum(rss_mib(int(child)) for child in children.read_text().split()) if children.exists() else 0.0
    return kib / 1024 + below


@dataclass
class Measures:
    live_p50_ms: float
    live_p99_ms: float
    timer_p99_ms: float
    timer_max_ms: float
    reply_ms: float
    console_ready_s: float
    console_rss_mib: float


class System:
    def __init__(self, tmp: Path, broker: EmbeddedBroker):
        self.tmp = tmp
        self.ports = {f"{name}_port": free_port() for name in SERVICES}
        common = dict(
            kafka_bootstrap_servers=broker.bootstrap,
            kafka_single_record_batches=True,
            data_dir=tmp / "data",
            outbox_dir=tmp / "outbox",
            **self.ports,
        )
        self.settings = load_settings(**common)
        ensure_topics(self.settings)
        ingest_settings = load_settings(IngestSettings, **common)  # the key goes to its topic, beacon.apikeys
        _, self.token = ApiKeyStore(ingest_settings).create("met-police", "police", ingest_settings.ingest_scopes)
        shutil.copytree(ROOT / "deploy" / "oncall", tmp / "oncall")  # with the files it names
        oncall = tmp / "oncall" / "example.yaml"
        oncall.write_text(oncall.read_text().replace("group_seconds: 2", "group_seconds: 0"))
        self.prism = twilio_mock.Prism(tmp / "prism.log").start()
        self.twilio = twilio_mock.TwilioProxy(self.prism).start()
        self.twilio.notifier_url = f"http://127.0.0.1:{self.ports['notifier_port']}"
        self.env = service_env(
            **common,
            oncall_file=oncall,
            twilio_account_sid=twilio_mock.ACCOUNT_SID,
            twilio_auth_token=twilio_mock.AUTH_TOKEN,
            twilio_from_number=twilio_mock.FROM_NUMBER,
            twilio_api_base_url=self.twilio.url,
            public_base_url=self.twilio.notifier_url,
            notifier_contact_min_interval_s=0,
            log_level="WARNING",
        )
        subprocess.run(
            [
                sys.executable,
                "-m",
                "beacon",
                "console-user",
                "add",
                CONSOLE_USER,
                "--org",
                "met-police",
                "--role",
                "responder",
            ],
            input=CONSOLE_PASSWORD + "\n",
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        self.services = {
            name: ServiceProcess(
                name, self.env, tmp / f"{name}.log", port=self.ports[f"{name}_port"], ready_timeout_s=600
            )
            for name in SERVICES
        }
        self.accepted: dict[str, float] = {}  # live episode ref -> when ingest answered 202
        self.ingest = httpx.Client(
            base_url=f"http://127.0.0.1:{self.ports['ingest_port']}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )

    def start(self) -> None:
        for service in self.services.values():
            service.start()

    def stop(self) -> None:
        for service in reversed(list(self.services.values())):
            service.stop()
        self.twilio.stop()
        self.prism.stop()

    # -- measures

    def live_latencies(self, tag: str, count: int, rate: float) -> list[float]:
        accepted: dict[str, float] = {}
        start = time.time()
        for n in range(count):
            time.sleep(max(0.0, start + n / rate - time.time()))
            event = live_report(tag, n)
            response = self.ingest.post("/v1/events", json=event)
            if response.status_code != 202:
                raise RuntimeError(f"ingest refused a live report: {response.status_code} {response.text}")
            accepted[event["data"]["episode_ref"]] = time.time()
        self.accepted.update(accepted)
        arrived = self.twilio.first_seen(list(accepted), timeout_s=PAGE_TIMEOUT_S)
        missing = set(accepted) - set(arrived)
        if missing:
            print(f"  {len(missing)} of {count} live reports not paged within {PAGE_TIMEOUT_S:g} s (counted as that)")
        waited = time.time()
        return [((arrived.get(ref) or waited) - accepted[ref]) * 1000 for ref in accepted]

    def correlator_latencies(self, tag: str) -> list[float]:
        """Ingest 202 -> the correlator's alert (its ``emitted_at``, on beacon.alerts), for
        the live reports of ``tag``: the correlator's share of the page latency."""
        wanted = {ref: at for ref, at in self.accepted.items() if ref.startswith(f"L{tag}-")}
        emitted: dict[str, float] = {}
        for record in read_alerts(self.settings, expect=1, timeout_s=120, settle_s=2):
            alert = json.loads(record.value)
            ref = alert.get("episode_ref")
            if ref in wanted and alert.get("status") == "raised":
                at = datetime.fromisoformat(alert["emitted_at"]).timestamp()
                emitted[ref] = min(emitted.get(ref, at), at)
        return [(emitted[ref] - wanted[ref]) * 1000 for ref in wanted if ref in emitted]

    def timer_stall(self, seconds: float) -> tuple[float, float]:
        url = f"http://127.0.0.1:{self.ports['notifier_port']}/healthz"
        answers: list[float] = []
        with httpx.Client(timeout=30) as client:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                began = time.perf_counter()
                client.get(url)
                answers.append((time.perf_counter() - began) * 1000)
                time.sleep(0.02)
        return percentile(answers, 99), max(answers)

    def reply_lookup(self, tries: int = 10) -> float:
        url = f"{self.twilio.notifier_url}/webhooks/twilio/sms"
        times = []
        for n in range(tries):
            params = {
                "From": ONCALL_NUMBER,
                "To": twilio_mock.FROM_NUMBER,
                "Body": "999a",
                "MessageSid": f"SM{n:032d}{int(time.time() * 1000) % 100:02d}",
                "AccountSid": twilio_mock.ACCOUNT_SID,
            }
            began = time.perf_counter()
            response = twilio_mock.signed_post(url, params)
            times.append((time.perf_counter() - began) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"SMS webhook answered {response.status_code}: {response.text[:200]}")
        return sorted(times)[len(times) // 2]

    def console_restart(self) -> tuple[float, float]:
        console = self.services["console"]
        console.stop()
        began = time.monotonic()
        console.start()  # returns once /readyz answers (caught up with what was there)
        ready_s = time.monotonic() - began
        assert console.process is not None
        return ready_s, rss_mib(console.process.pid)

    def measure(self, tag: str, live: int, rate: float, probe_s: float) -> Measures:
        latencies = self.live_latencies(tag, live, rate)
        timer_p99, timer_max = self.timer_stall(probe_s)
        reply = self.reply_lookup()
        ready_s, rss = self.console_restart()
        return Measures(percentile(latencies, 50), percentile(latencies, 99), timer_p99, timer_max, reply, ready_s, rss)

    # -- the import

    def correlated(self) -> float:
        return metric_sum(self.ports["correlator_port"], "beacon_correlator_events_total{")

    def lag(self, service: str) -> float:
        return metric_sum(self.ports[f"{service}_port"], "beacon_consumer_lag_records{")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--years", type=float, default=0.02, help="years of national history to import")
    parser.add_argument("--live", type=int, default=20, help="live reports per latency measure")
    parser.add_argument("--rate", type=float, default=2.0, help="live reports per second")
    parser.add_argument("--probe-s", type=float, default=12.0, help="seconds of notifier probing (timer stall)")
    args = parser.parse_args()

    days = max(1, round(args.years * 365.25))
    print(f"synthetic national history: {args.years:g} years ({days} days) ...", flush=True)
    history = for_the_doors(synthetic_history(days))
    print(f"  {len(history):,} events the doors accept", flush=True)

    with tempfile.TemporaryDirectory() as tmp_name, EmbeddedBroker(log_file=Path(tmp_name) / "broker.log") as broker:
        tmp = Path(tmp_name)
        source = tmp / "history.jsonl"
        with open(source, "w") as f:
            f.writelines(json.dumps(event) + "\n" for event in history)
        total = len(history)
        del history
        system = System(tmp, broker)
        try:
            system.start()
            print("empty system ...", flush=True)
            empty = system.measure("E", args.live, args.rate, args.probe_s)

            print(f"importing {total:,} events while live reports arrive ...", flush=True)
            base = system.correlated()
            importer = processes.start(
                [sys.executable, "-m", "beacon", "import", str(source), "--chunk", "2000"],
                # Kafka batches, as in production: only table changelogs need the embedded
                # broker's one-record batches (its ListOffsets defect), and a fast import is
                # the hard case: the correlator then has a backlog when the live reports come.
                {**system.env, "BEACON_KAFKA_SINGLE_RECORD_BATCHES": "false"},
                tmp / "import.log",
                cwd=ROOT,
            )
            began = time.monotonic()
            while system.correlated() < base + min(2000, total // 4):  # the correlator is working through it
                if importer.poll() not in (None, 0):
                    raise RuntimeError("import failed:\n" + (tmp / "import.log").read_text()[-2000:])
                time.sleep(0.2)
            notifier_lag = system.lag("notifier")
            left = base + total - system.correlated()
            imported = "still running" if importer.poll() is None else "done"
            print(
                f"  live reports begin with the import {imported}, {max(0, left):,.0f} of {total:,} history events "
                f"still to correlate, the notifier {notifier_lag:,.0f} records behind",
                flush=True,
            )
            during = system.live_latencies("D", args.live, args.rate)
            if importer.wait(timeout=24 * 3600) != 0:
                raise RuntimeError("import failed:\n" + (tmp / "import.log").read_text()[-2000:])
            while system.correlated() < base + total + args.live:
                time.sleep(1)
            correlated_s = time.monotonic() - began
            while system.lag("notifier") > 0:
                time.sleep(1)
            caught_up_s = time.monotonic() - began
            print(f"  correlated in {correlated_s:.0f} s; notifier caught up after {caught_up_s:.0f} s", flush=True)

            correlated_during = system.correlator_latencies("D")
            print("loaded system ...", flush=True)
            loaded = system.measure("L", args.live, args.rate, args.probe_s)
        finally:
            system.stop()

    during_p99 = percentile(during, 99)
    rows = [
        ("live page p50 (ms)", empty.live_p50_ms, loaded.live_p50_ms),
        ("live page p99 (ms)", empty.live_p99_ms, loaded.live_p99_ms),
        ("notifier timer stall p99 (ms)", empty.timer_p99_ms, loaded.timer_p99_ms),
        ("notifier timer stall max (ms)", empty.timer_max_ms, loaded.timer_max_ms),
        ("notifier reply lookup p50 (ms)", empty.reply_ms, loaded.reply_ms),
        ("console ready after restart (s)", empty.console_ready_s, loaded.console_ready_s),
        ("console RSS (MiB)", empty.console_rss_mib, loaded.console_rss_mib),
    ]
    print(f"\n{'':34} {'empty':>10} {'loaded':>10} {'ratio':>8}")
    for name, before, after in rows:
        print(f"  {name:32} {before:>10.1f} {after:>10.1f} {after / before if before else float('inf'):>8.2f}")
    print(
        f"  live page during the import: p50 {percentile(during, 50):.1f} ms, p99 {during_p99:.1f} ms "
        f"(targets at 5 years: ratios <= 1.5, console RSS < 400 MiB, ready < 30 s, p99 during import < 2000 ms)"
    )
    if correlated_during:
        print(
            f"  of which ingest 202 -> correlator alert: p50 {percentile(correlated_during, 50):.1f} ms, "
            f"p99 {percentile(correlated_during, 99):.1f} ms ({len(correlated_during)} live reports; the rest is "
            f"the notifier and the Twilio mock)"
        )
    print(
        f"history-scale: years={args.years:g} live_p99_ratio={loaded.live_p99_ms / empty.live_p99_ms:.2f} "
        f"timer_ratio={loaded.timer_p99_ms / empty.timer_p99_ms:.2f} console_rss_mib={loaded.console_rss_mib:.0f} "
        f"console_ready_s={loaded.console_ready_s:.1f} live_p99_during_import_ms={during_p99:.0f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

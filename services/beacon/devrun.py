"""``make run``: the whole service on the embedded broker, with demo events.

Starts Tansu, creates the topics, runs each service as its own process (as in
production), feeds the demo stream and prints every notification the moment
the dev-mode outbox receives it. Ctrl-C stops everything, children included.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from beacon.core.broker import EmbeddedBroker, free_port, kafka_answers
from beacon.core.kafka import make_producer
from beacon.core.settings import Settings, load_settings
from beacon.core.topics import EVENTS, ensure_topics
from beacon.demo import demo_events


@dataclass(frozen=True)
class Service:
    name: str
    url_setting: str | None  # the Settings field holding its HTTP port, if it serves one
    what: str


# Every long-running process of Beacon. Each one is ``python -m beacon <name>``.
SERVICES: tuple[Service, ...] = (
    Service("correlator", "correlator_port", "correlator worker (health, metrics)"),
    Service("notifier", "notifier_port", "notifier (acknowledgement links, webhooks, metrics)"),
    Service("console", "console_port", "web console for on-call staff (python -m beacon console-user add NAME)"),
)


def _spawn(service: Service, env: dict[str, str], log_dir: Path) -> subprocess.Popen[bytes]:
    log = open(log_dir / f"{service.name}.log", "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "beacon", service.name],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


def _stop(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in processes.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in processes.values():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _print_new_notifications(outbox: Path, seen: int) -> int:
    if not outbox.exists():
        return seen
    lines = outbox.read_text().splitlines()
    for line in lines[seen:]:
        note = json.loads(line)
        print(f"  >> {note.get('channel', '?'):6} {note.get('to', ''):18} {note.get('body', '')}", flush=True)
    return len(lines)


def run(with_demo: bool = True) -> int:
    base = load_settings()
    var = base.data_dir.parent
    log_dir = var / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    outbox = base.outbox_dir / "notifications.jsonl"
    if outbox.exists():
        outbox.unlink()  # the embedded broker starts empty, so does the outbox

    port = 9092 if not kafka_answers("127.0.0.1:9092", 0.3) else free_port()
    broker = EmbeddedBroker(port=port, log_file=log_dir / "broker.log")
    processes: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def _on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        broker.start()
        env = {**os.environ, "BEACON_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
               "BEACON_KAFKA_SINGLE_RECORD_BATCHES": "true"}
        settings: Settings = load_settings(kafka_bootstrap_servers=broker.bootstrap, kafka_single_record_batches=True)
        ensure_topics(settings)
        for service in SERVICES:
            processes[service.name] = _spawn(service, env, log_dir)

        print(f"\nBeacon is running on the embedded broker ({broker.bootstrap}).")
        for service in SERVICES:
            if service.url_setting:
                print(f"  {service.name:11} http://{settings.bind_host}:{getattr(settings, service.url_setting)}/  {service.what}")
        print(f"  logs        {log_dir}/")
        print(f"  outbox      {outbox}  (dev mode: no Twilio or SMTP configured)")
        print("Ctrl-C stops everything.\n", flush=True)

        if with_demo:
            producer = make_producer(settings)
            events = demo_events()
            for event in events:
                producer.send(EVENTS, key=event["subject"].encode(), value=json.dumps(event).encode())
            producer.flush()
            producer.close()
            print(f"Fed {len(events)} demo events. Notifications appear below as they are sent:", flush=True)

        seen = 0
        while not stopping:
            for name, proc in processes.items():
                if proc.poll() is not None:
                    print(f"service {name} exited with status {proc.returncode}; see {log_dir}/{name}.log",
                          file=sys.stderr)
                    return 1
            seen = _print_new_notifications(outbox, seen)
            time.sleep(0.5)
        return 0
    finally:
        print("\nStopping Beacon ...", flush=True)
        _stop(processes)
        broker.stop()
        print("Stopped.", flush=True)

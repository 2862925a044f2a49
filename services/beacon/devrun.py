"""``make run``: the whole service on the embedded broker, with demo events.

Starts Tansu, creates the topics, runs each service as its own process (as in
production), feeds the demo stream and prints every notification the moment
the dev-mode outbox receives it. Ctrl-C stops everything, children included.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from beacon.demo import demo_events
from beacon.runtime import processes
from beacon.runtime.broker import EmbeddedBroker, free_port, kafka_answers
from beacon.runtime.settings import ENV_PREFIX, Settings, load_settings, required_secrets
from beacon.runtime.topic_admin import ensure_topics

DEMO_ORGANISATIONS = ("met-police", "southwark")  # the organisations the demo events name


@dataclass(frozen=True)
class Service:
    name: str
    url_setting: str | None  # the Settings field holding its HTTP port, if it serves one
    what: str


# Every long-running process of Beacon. Each one is ``python -m beacon <name>``.
SERVICES: tuple[Service, ...] = (
    Service("correlator", "correlator_port", "correlator worker (health, metrics)"),
    Service("notifier", "notifier_port", "notifier (acknowledgement links, webhooks, metrics)"),
    Service("ingest", "ingest_port", "HTTP ingest API: POST /v1/events (docs at /docs)"),
    Service("validator", "validator_port", "validator of direct Kafka producers (raw topic -> events / DLQ)"),
    Service("console", "console_port", "web console for on-call staff (python -m beacon console-user add NAME)"),
)


def _spawn(service: Service, env: dict[str, str], log_dir: Path) -> processes.Process:
    return processes.start([sys.executable, "-m", "beacon", service.name], env, log_dir / f"{service.name}.log")


def _print_new_notifications(outbox: Path, seen: int) -> int:
    if not outbox.exists():
        return seen
    lines = outbox.read_text().splitlines()
    for line in lines[seen:]:
        note = json.loads(line)
        text = " ".join(str(note.get("body", "")).split())  # one line per notification
        text = text if len(text) <= 150 else text[:147] + "..."
        print(f"  >> {note.get('channel', '?'):6} {note.get('to', ''):30} {text}", flush=True)
    return len(lines)


def dev_secrets(environ: dict[str, str]) -> dict[str, str]:
    """Fresh random secrets for this run, for each required secret the environment does not
    set (production refuses to start without them; dev mode makes its own, every run)."""
    from beacon.console.settings import ConsoleSettings
    from beacon.notifier.settings import NotifierSettings

    names = {f"{ENV_PREFIX}{n.upper()}" for cls in (NotifierSettings, ConsoleSettings) for n in required_secrets(cls)}
    return {name: secrets.token_urlsafe(32) for name in sorted(names) if not environ.get(name)}


def _create_demo_console_user(settings: Settings) -> tuple[str, str]:
    """A console login for this run (its password changes every run): a responder of the demo's
    organisations, written to beacon.console.users as `console-user add` does."""
    from beacon.console.users import user_set_record
    from beacon.core.topics import CONSOLE_USERS
    from beacon.runtime.kafka import make_producer

    name, password = "duty-demo", secrets.token_urlsafe(12)
    record = user_set_record(name, password, list(DEMO_ORGANISATIONS), "responder", time.time())
    producer = make_producer(settings)
    try:
        producer.send(CONSOLE_USERS, key=record.key, value=record.to_json()).get(timeout=10)
    finally:
        producer.close(timeout=5)
    return name, password


def _post_demo_events(
    ingest_url: str, events: list[dict[str, object]], ingest: processes.Process, demo_key_ids: list[str]
) -> None:
    """The real path: one demo API key per source (created now, shown once, revoked at
    exit), events POSTed in order."""
    import httpx

    from beacon.ingest.apikey_topic import ApiKeyStore
    from beacon.ingest.settings import IngestSettings

    ingest_settings = load_settings(IngestSettings)
    store = ApiKeyStore(ingest_settings)
    scopes = {"met-police": "police", "southwark": "council"}
    tokens = {}
    for source, scope in scopes.items():
        key, tokens[source] = store.create(source, scope, ingest_settings.ingest_scopes)
        demo_key_ids.append(key.key_id)
        print(f"  demo API key {key.key_id} for {source} ({scope}): {tokens[source]}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and ingest.poll() is None:
        try:
            if httpx.get(f"{ingest_url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    with httpx.Client(base_url=ingest_url, timeout=30) as client:
        for event in events:
            source = str(event["source"]).removeprefix(ingest_settings.ingest_source_prefix)
            response = client.post("/v1/events", json=event, headers={"Authorization": f"Bearer {tokens[source]}"})
            if response.status_code != 202:
                raise RuntimeError(f"demo event refused ({response.status_code}): {response.text}")


def run(with_demo: bool = True) -> int:
    base: Settings = load_settings()
    var = base.data_dir.parent
    log_dir = var / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    outbox = base.outbox_dir / "notifications.jsonl"
    if outbox.exists():
        outbox.unlink()  # the embedded broker starts empty, so does the outbox

    port = 9092 if not kafka_answers("127.0.0.1:9092", 0.3) else free_port()
    broker = EmbeddedBroker(port=port, log_file=log_dir / "broker.log")
    children: dict[str, processes.Process] = {}
    demo_key_ids: list[str] = []
    stopping = False

    def _on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        broker.start()
        generated = dev_secrets(dict(os.environ))
        env = {
            **os.environ,
            **generated,
            "BEACON_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
            "BEACON_KAFKA_SINGLE_RECORD_BATCHES": "true",
        }
        settings: Settings = load_settings(kafka_bootstrap_servers=broker.bootstrap, kafka_single_record_batches=True)
        ensure_topics(settings)
        for service in SERVICES:
            children[service.name] = _spawn(service, env, log_dir)

        print(f"\nBeacon is running on the embedded broker ({broker.bootstrap}).")
        for service in SERVICES:
            if service.url_setting:
                print(
                    f"  {service.name:11} http://{settings.bind_host}:{getattr(settings, service.url_setting)}/  {service.what}"
                )
        user, password = _create_demo_console_user(settings)
        print(f"  console login: {user} / {password}")
        if generated:
            print(
                f"  dev mode: fresh random {', '.join(generated)} for this run "
                "(links and console sessions of earlier runs no longer work)"
            )
        print(f"  logs        {log_dir}/")
        print(f"  outbox      {outbox}  (dev mode: no Twilio or SMTP configured)")
        print("Ctrl-C stops everything.\n", flush=True)

        ingest_url = f"http://{settings.bind_host}:{settings.ingest_port}"
        print(f"Ingest API: {ingest_url}/v1/events  (OpenAPI: {ingest_url}/openapi.json, docs: {ingest_url}/docs)")
        if with_demo:
            events = demo_events()
            _post_demo_events(ingest_url, events, children["ingest"], demo_key_ids)
            print(
                f"Fed {len(events)} demo events through the ingest API. Notifications appear below as they are sent:",
                flush=True,
            )

        seen = 0
        while not stopping:
            for name, proc in children.items():
                if proc.poll() is not None:
                    print(
                        f"service {name} exited with status {proc.returncode}; see {log_dir}/{name}.log",
                        file=sys.stderr,
                    )
                    return 1
            seen = _print_new_notifications(outbox, seen)
            time.sleep(0.5)
        return 0
    finally:
        print("\nStopping Beacon ...", flush=True)
        processes.stop_all(children.values(), timeout_s=15)
        broker.stop()
        print("Stopped.", flush=True)

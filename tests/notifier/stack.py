"""The notifier as a real process with its real peers: the broker (per test), Prism
behind a recording proxy (Twilio), aiosmtpd with STARTTLS + AUTH (email)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from twilio.request_validator import RequestValidator

from beacon.core.alerts import AlertRecord, Severity, alert_id
from beacon.core.audit import AuditRecord
from beacon.core.topics import ALERTS, AUDIT
from beacon.notifier.oncall import OnCallConfig, load_oncall
from beacon.runtime.broker import free_port
from beacon.runtime.settings import Settings
from harness import smtp as smtp_harness
from harness import twilio_mock
from harness.kafka import produce, read_topic
from harness.services import ServiceProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
ONCALL_FILE = REPO_ROOT / "deploy" / "oncall" / "example.yaml"
API_TOKEN = "test-api-token-" + secrets.token_urlsafe(32)


def spare_port(settings: Settings) -> int:
    """A free port none of the test's services has been given (they bind later)."""
    taken = {
        settings.notifier_port,
        settings.correlator_port,
        settings.ingest_port,
        settings.console_port,
        settings.validator_port,
    }
    while (port := free_port()) in taken:
        pass
    return port


def notifier_env(
    env: dict[str, str],
    settings: Settings,
    twilio: twilio_mock.TwilioProxy,
    smtp: smtp_harness.SmtpServer,
    **extra: str,
) -> dict[str, str]:
    return {
        **env,
        "BEACON_ONCALL_FILE": str(ONCALL_FILE),
        "BEACON_TWILIO_ACCOUNT_SID": twilio_mock.ACCOUNT_SID,
        "BEACON_TWILIO_AUTH_TOKEN": twilio_mock.AUTH_TOKEN,
        "BEACON_TWILIO_FROM_NUMBER": twilio_mock.FROM_NUMBER,
        "BEACON_TWILIO_API_BASE_URL": twilio.url,
        "BEACON_SMTP_HOST": "127.0.0.1",
        "BEACON_SMTP_PORT": str(smtp.port),
        "BEACON_SMTP_USERNAME": smtp_harness.USERNAME,
        "BEACON_SMTP_PASSWORD": smtp_harness.PASSWORD,
        "BEACON_SMTP_FROM": "beacon@beacon.example.org",
        "BEACON_SMTP_CA_FILE": str(smtp.cert_file),
        "BEACON_PUBLIC_BASE_URL": f"http://127.0.0.1:{settings.notifier_port}",
        "BEACON_NOTIFIER_TEST_CLOCK": "true",
        "BEACON_NOTIFIER_API_TOKEN": API_TOKEN,
        "BEACON_NOTIFIER_RETRY_BACKOFF_S": "0.05",
        "BEACON_NOTIFIER_TICK_INTERVAL_S": "0.5",
        **extra,
    }


@dataclass
class Stack:
    settings: Settings
    env: dict[str, str]
    twilio: twilio_mock.TwilioProxy
    smtp: smtp_harness.SmtpServer
    log_file: Path
    oncall: OnCallConfig = field(default_factory=lambda: load_oncall(ONCALL_FILE))
    notifier: ServiceProcess | None = None
    _alerts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.notifier_port}"

    def start(self) -> Stack:
        self.notifier = ServiceProcess("notifier", self.env, self.log_file, port=self.settings.notifier_port)
        self.notifier.start()
        self.twilio.notifier_url = self.url
        return self

    def restart_after_kill(self, data_dir: Path | None = None) -> None:
        """SIGKILL, then start again: on the same data directory, or on ``data_dir`` (a new
        pod's empty one, so the whole table changelog is read)."""
        assert self.notifier is not None
        self.notifier.kill()
        if data_dir is not None:
            self.env = {**self.env, "BEACON_DATA_DIR": str(data_dir)}
        self.start()

    # --- people -------------------------------------------------------------
    def now(self) -> datetime:
        return datetime.fromisoformat(httpx.get(f"{self.url}/test/clock", timeout=5).json()["now"])

    def oncall_person(self, team: str = "southwark-mash") -> str:
        return self.oncall.teams[team].rotation.on_call(self.now())

    def role(self, role: str, team: str = "southwark-mash") -> str:
        return self.oncall.teams[team].roles[role]

    def contact(self, person: str, channel: str) -> str:
        return next(c.to for c in self.oncall.people[person].contacts if c.channel == channel)

    def phone(self, person: str) -> twilio_mock.Phone:
        return self.twilio.phone(self.contact(person, "sms"))

    # --- alerts, clock, API -------------------------------------------------
    def raise_alert(
        self,
        severity: Severity = Severity.high,
        council: str = "southwark",
        rule: str = "triage",
        step: str = "high",
        notify: str | None = None,
        episode: str | None = None,
    ) -> AlertRecord:
        """A new episode's alert (or, given ``episode``, another alert of that episode)."""
        if episode is None:
            self._alerts += 1
            episode = f"MET-2026-{self._alerts:06d}"
        now = datetime.now(UTC)
        alert = AlertRecord(
            alert_id=alert_id("CH-TEST-0001", episode, rule, step),
            status="raised",
            child_ref="CH-TEST-0001",
            episode_ref=episode,
            rule=rule,
            step=step,
            severity=severity,
            reason="Child reported missing, police risk high",
            council=council,
            notify=notify,
            occurred_at=now,
            emitted_at=now,
        )
        produce(self.settings, ALERTS, [(alert.key, alert.to_json())])
        return alert

    def resolve(self, alert: AlertRecord) -> None:
        resolved = alert.model_copy(update={"status": "resolved", "emitted_at": datetime.now(UTC)})
        produce(self.settings, ALERTS, [(resolved.key, resolved.to_json())])

    def advance(self, minutes: float = 0, hours: float = 0) -> None:
        response = httpx.post(
            f"{self.url}/test/clock/advance", json={"seconds": minutes * 60 + hours * 3600}, timeout=5
        )
        assert response.status_code == 200, response.text

    def alert_state(self, alert: AlertRecord) -> dict[str, Any]:
        response = httpx.get(
            f"{self.url}/v1/alerts/{alert.alert_id}", timeout=5, headers={"Authorization": f"Bearer {API_TOKEN}"}
        )
        return response.json() if response.status_code == 200 else {}

    def wait_state(
        self, alert: AlertRecord, check: Callable[[dict[str, Any]], bool], timeout_s: float = 30
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            state = self.alert_state(alert)
            if state and check(state):
                return state
            time.sleep(0.2)
        raise AssertionError(f"alert state never matched; last: {state}")

    def audit(self, expect: int = 1) -> list[AuditRecord]:
        return [AuditRecord.from_json(r.value) for r in read_topic(self.settings, AUDIT, expect=expect, timeout_s=10)]


@contextmanager
def notifier_stack(settings: Settings, env: dict[str, str], tmp_path: Path, **extra: str) -> Iterator[Stack]:
    """A Stack with its own Prism, Twilio proxy and SMTP server, the notifier not started yet
    (``Stack.start``); everything stopped on exit. ``extra``: BEACON_* settings of the notifier."""
    prism = twilio_mock.Prism(tmp_path / "prism.log").start()
    twilio = twilio_mock.TwilioProxy(prism, port=spare_port(settings)).start()
    smtp = smtp_harness.SmtpServer(tmp_path / "tls", port=spare_port(settings)).start()
    s = Stack(settings, notifier_env(env, settings, twilio, smtp, **extra), twilio, smtp, tmp_path / "notifier.log")
    try:
        yield s
    finally:
        if s.notifier:
            s.notifier.stop()
        smtp.stop()
        twilio.stop()
        prism.stop()


def replica_env(env: dict[str, str], service: str, port: int, data_dir: Path) -> dict[str, str]:
    """The environment of one replica of ``service``: its own HTTP port and data directory
    (as each pod has its own), everything else shared (the same group, topics and secrets)."""
    return {**env, f"BEACON_{service.upper()}_PORT": str(port), "BEACON_DATA_DIR": str(data_dir)}


def start_replicas(
    service: str, env: dict[str, str], settings: Settings, tmp_path: Path, count: int
) -> list[ServiceProcess]:
    """``count`` processes of ``service`` in one consumer group, each on a spare port with its
    own data directory and log (``<tmp>/<service>-<n>.log``), started one after the other
    (each answers /readyz before the next starts). The caller stops them."""
    started: list[ServiceProcess] = []
    try:
        for number in range(count):
            port = spare_port(settings)
            process_env = replica_env(env, service, port, tmp_path / f"{service}-{number}-data")
            replica = ServiceProcess(service, process_env, tmp_path / f"{service}-{number}.log", port=port)
            started.append(replica.start())
    except BaseException:
        for replica in started:
            replica.stop()
        raise
    return started


def reply_through(replica_url: str, public_url: str, phone: str, body: str, sid: str) -> str:
    """An inbound SMS as Twilio sends it behind a load balancer: signed over the public URL
    (``BEACON_PUBLIC_BASE_URL``, which every replica verifies against), reaching
    ``replica_url``. Returns the TwiML answer."""
    params = {"From": phone, "To": twilio_mock.FROM_NUMBER, "Body": body, "MessageSid": sid}
    signature = RequestValidator(twilio_mock.AUTH_TOKEN).compute_signature(f"{public_url}/webhooks/twilio/sms", params)
    response = httpx.post(
        f"{replica_url}/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": signature}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.text

"""Every Kafka client over TLS with SASL/SCRAM, against Apache Kafka's SASL_SSL listener
(a CA made by the test, a SCRAM user made when the storage was formatted): the CLI, ingest,
the correlator and notifier (Faust) and the console. A wrong password, an untrusted CA or a
plaintext client are refused with an error that says so, and nothing reaches Kafka."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from beacon.core.alerts import AlertRecord
from beacon.core.schemas import example_event
from beacon.runtime.broker import free_port
from beacon.runtime.settings import Settings, load_settings
from harness.brokers import PRODUCTION_TABLE_STORE, production_broker_settings
from harness.cli import beacon_cli
from harness.kafka import read_alerts
from harness.kafka_tls import SCRAM_MECHANISM, SCRAM_PASSWORD, SCRAM_USER, SCRAM_USER_WITHOUT_ACLS
from harness.services import ServiceProcess, service_env
from harness.strimzi import user_acls

pytestmark = [pytest.mark.slow, pytest.mark.kafka]

SERVICE_FIELDS = (
    "kafka_bootstrap_servers",
    "kafka_security_protocol",
    "kafka_sasl_mechanism",
    "kafka_sasl_username",
    "kafka_ssl_ca_file",
    "data_dir",
    "outbox_dir",
    "correlator_port",
    "notifier_port",
    "ingest_port",
    "console_port",
    "validator_port",
)


@pytest.fixture
def secure_settings(kafka_cluster, tmp_path: Path) -> Settings:
    """The test's SCRAM user, allowed exactly what production's KafkaUser is (its ACLs in
    deploy/k8s/kafka.yaml) by a cluster that authorizes every SASL_SSL request."""
    kafka_cluster.reset()
    kafka_cluster.grant(SCRAM_USER, user_acls("beacon"))
    return load_settings(
        **production_broker_settings(kafka_cluster.replication_factor),
        kafka_bootstrap_servers=kafka_cluster.secure_bootstrap,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism=SCRAM_MECHANISM,
        kafka_sasl_username=SCRAM_USER,
        kafka_sasl_password=SCRAM_PASSWORD,
        kafka_ssl_ca_file=kafka_cluster.tls.ca_file,
        data_dir=tmp_path / "data",
        outbox_dir=tmp_path / "outbox",
        correlator_port=free_port(),
        notifier_port=free_port(),
        ingest_port=free_port(),
        console_port=free_port(),
        validator_port=free_port(),
    )


def _env(settings: Settings, **extra: object) -> dict[str, str]:
    env = service_env(
        **{f: getattr(settings, f) for f in SERVICE_FIELDS},
        **{f: getattr(settings, f) for f in production_broker_settings(1) if f != "topic_replication_factor"},
        topic_replication_factor=settings.topic_replication_factor,
        table_store=PRODUCTION_TABLE_STORE,
    )
    env["BEACON_KAFKA_SASL_PASSWORD"] = settings.kafka_sasl_password.get_secret_value()
    env.update({f"BEACON_{k.upper()}": str(v) for k, v in extra.items()})
    return env


def test_every_client_works_over_sasl_ssl_with_scram(secure_settings: Settings, tmp_path: Path):
    env = _env(secure_settings)
    created = beacon_cli(env, "topics", "create", check=False)
    assert created.returncode == 0 and "created: " in created.stdout, created.stderr

    # The CLI writes the key to its compacted topic over SASL_SSL too; ingest reads it there.
    issued = beacon_cli(env, "apikeys", "create", "--source", "met-police", "--scope", "police", check=False)
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()

    now = datetime.now(UTC)
    report = example_event("beacon.episode.reported.v1")  # high risk: pages at once
    report["time"] = now.isoformat()
    report["data"] = {**report["data"], "started_at": (now - timedelta(minutes=30)).isoformat()}
    s = secure_settings
    with (
        ServiceProcess("ingest", env, tmp_path / "ingest.log", port=s.ingest_port, ready_path="/readyz"),
        ServiceProcess("correlator", env, tmp_path / "correlator.log", port=s.correlator_port),
        ServiceProcess("notifier", env, tmp_path / "notifier.log", port=s.notifier_port),
    ):
        _wait_for(lambda: httpx.get(f"http://127.0.0.1:{s.ingest_port}/readyz").status_code == 200, "ingest ready")
        posted = httpx.post(
            f"http://127.0.0.1:{s.ingest_port}/v1/events",
            json=report,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert posted.status_code == 202, posted.text

        outbox = s.outbox_dir / "notifications.jsonl"
        _wait_for(outbox.exists, "a page in the outbox", timeout_s=90)
        pages = [json.loads(line) for line in outbox.read_text().splitlines()]
        alerts = [AlertRecord.from_json(r.value) for r in read_alerts(s, expect=1, timeout_s=30)]
        raised = {a.alert_id for a in alerts if a.episode_ref == report["data"]["episode_ref"]}
        assert raised and any(page["alert_id"] in raised for page in pages)

    console_env = env
    # Ready only once its feed has read every topic from the start: over SASL_SSL too.
    with ServiceProcess("console", console_env, tmp_path / "console.log", port=s.console_port) as console:
        _wait_for(lambda: httpx.get(f"http://127.0.0.1:{s.console_port}/readyz").status_code == 200, "console ready")
        assert console.process is not None and console.process.poll() is None

    for log in tmp_path.glob("*.log"):
        assert SCRAM_PASSWORD not in log.read_text(errors="replace"), f"{log.name} shows the SCRAM password"


def test_a_login_without_the_kafka_users_acls_is_refused_everything(secure_settings):
    """The authorizer is really on: the ACLs above are what lets Beacon work, not luck."""
    env = {**_env(secure_settings), "BEACON_KAFKA_SASL_USERNAME": SCRAM_USER_WITHOUT_ACLS}
    refused = beacon_cli(env, "topics", "create", check=False)
    assert refused.returncode != 0
    assert "error: could not create the topics on" in refused.stderr, refused.stderr
    assert "TopicAuthorizationFailed" in refused.stderr, refused.stderr


def test_an_untrusted_broker_certificate_is_refused_with_the_reason(secure_settings):
    env = _env(secure_settings)
    del env["BEACON_KAFKA_SSL_CA_FILE"]  # the system's trust store: it does not hold the test's CA
    refused = beacon_cli(env, "topics", "create", check=False)
    assert refused.returncode != 0
    assert "error: could not create the topics on" in refused.stderr and "(SASL_SSL)" in refused.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in refused.stdout  # the client's log line gives the reason
    assert SCRAM_PASSWORD not in refused.stdout + refused.stderr


def test_a_wrong_password_is_refused_and_the_broker_records_the_failed_login(secure_settings, kafka_cluster):
    env = _env(secure_settings)
    env["BEACON_KAFKA_SASL_PASSWORD"] = "not-the-password"
    broker_log = kafka_cluster.workdir / "node-1" / "kafka.log"
    failures_before = broker_log.read_text(errors="replace").count("Failed authentication")
    refused = beacon_cli(env, "topics", "create", check=False)
    assert refused.returncode != 0
    assert "error: could not create the topics on" in refused.stderr and "(SASL_SSL)" in refused.stderr
    assert "not-the-password" not in refused.stdout + refused.stderr
    # kafka-python 3.0.12 sees only "socket disconnected" (docs/kafka.md); the broker says why.
    after = broker_log.read_text(errors="replace")
    assert after.count("Failed authentication") > failures_before
    assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in after
    admin = kafka_cluster.admin()
    try:
        assert [t for t in admin.list_topics() if not t.startswith("__")] == []  # nothing was created
    finally:
        admin.close()


def test_sasl_without_a_login_is_refused_at_start_naming_the_variable(secure_settings):
    env = _env(secure_settings)
    del env["BEACON_KAFKA_SASL_USERNAME"], env["BEACON_KAFKA_SASL_PASSWORD"]
    refused = beacon_cli(env, "topics", "create", check=False)
    assert refused.returncode != 0
    assert "BEACON_KAFKA_SASL_USERNAME: Value error, required with BEACON_KAFKA_SECURITY_PROTOCOL=SASL_SSL" in (
        refused.stderr
    )
    assert "BEACON_KAFKA_SASL_PASSWORD" in refused.stderr


def _wait_for(condition, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")

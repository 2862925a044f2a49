"""Deployment files, validated without a Docker engine or a cluster (none exists here):

- docker-compose.yml against the Compose spec (check-jsonschema's vendored schema);
- core Kubernetes manifests (Namespace, ConfigMap, Deployment, StatefulSet, Service,
  PodDisruptionBudget) with kubernetes-validate --strict against its bundled schemas;
- custom resources (Strimzi Kafka/KafkaNodePool/KafkaTopic, ServiceMonitor, PrometheusRule)
  against the structural schemas in tests/ops/crd_schemas.py;
- and consistency: ports, settings names, topics, rules and scrape jobs agree everywhere.

The validators run with HTTP(S) proxies pointing at a closed port, so a validator that
tried to fetch a schema from the network would fail instead of passing by luck.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml

from beacon.core.topics import TOPICS
from beacon.devrun import SERVICES as DEV_SERVICES
from beacon.registry import known_setting_names
from beacon.runtime.settings import Settings, load_settings, required_secrets
from beacon.runtime.topic_admin import topic_configs
from harness.services import REPO_ROOT
from ops.crd_schemas import CRD_SCHEMAS

sys.path.insert(0, str(REPO_ROOT / "deploy" / "k8s"))
import sync_prometheusrule

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
K8S = REPO_ROOT / "deploy" / "k8s"
PROM = REPO_ROOT / "deploy" / "prometheus"
BEACON_IMAGE = "beacon:0.1.0"
CORE_KINDS = {"Namespace", "ConfigMap", "Deployment", "StatefulSet", "Service", "PodDisruptionBudget"}
SECRET_SETTINGS = {
    "BEACON_ACK_LINK_SECRET",
    "BEACON_CONSOLE_SESSION_SECRET",
    "BEACON_NOTIFIER_API_TOKEN",
    "BEACON_TWILIO_AUTH_TOKEN",
    "BEACON_SMTP_PASSWORD",
    "BEACON_TWILIO_ACCOUNT_SID",
    "BEACON_KAFKA_SASL_PASSWORD",
}


def offline_env() -> dict[str, str]:
    closed = "http://127.0.0.1:9"
    return {
        **os.environ,
        "HTTP_PROXY": closed,
        "HTTPS_PROXY": closed,
        "http_proxy": closed,
        "https_proxy": closed,
        "NO_PROXY": "",
        "no_proxy": "",
    }


def tool(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def default_port(service: str) -> int:
    return Settings.model_fields[f"{service}_port"].default


def assert_settings_names(names: set[str], where: str) -> None:
    fields = {f"BEACON_{name.upper()}" for name in known_setting_names()}
    assert names - fields == set(), f"{where}: not Beacon settings: {sorted(names - fields)}"


# ------------------------------------------------------------------------- compose


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def beacon_services() -> dict[str, dict]:
    return {
        name: svc
        for name, svc in compose()["services"].items()
        if svc.get("image") == BEACON_IMAGE and name != "topics"
    }


def test_compose_file_is_valid_against_the_compose_spec():
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        env=offline_env(),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


def test_compose_validation_catches_a_broken_file(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        COMPOSE_FILE.read_text().replace("    depends_on:\n      kafka:", "    depends_onn:\n      kafka:")
    )
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(broken)],
        capture_output=True,
        text=True,
        env=offline_env(),
        timeout=120,
        check=False,
    )
    assert result.returncode == 1 and "depends_onn" in result.stdout + result.stderr


def test_compose_runs_every_beacon_process_from_the_one_image():
    services = beacon_services()
    assert set(services) == {"ingest", "validator", "correlator", "notifier", "console"}
    assert {s.name for s in DEV_SERVICES} <= set(services), "a process `make run` starts is not deployed"
    for name, svc in services.items():
        assert svc["command"] == [name]
        assert svc["depends_on"]["topics"] == {"condition": "service_completed_successfully"}
        probe = " ".join(svc["healthcheck"]["test"])
        assert f"http://127.0.0.1:{default_port(name)}/readyz" in probe, name
        assert_settings_names(set(svc["environment"]), f"compose {name}")
    topics = compose()["services"]["topics"]
    assert topics["command"] == ["topics", "create"] and topics["build"] == "."
    assert topics["depends_on"]["kafka"] == {"condition": "service_healthy"}


def test_compose_kafka_is_kraft_and_every_image_is_pinned():
    services = compose()["services"]
    kafka = services["kafka"]
    assert re.fullmatch(r"apache/kafka:\d+\.\d+\.\d+", kafka["image"])
    assert set(kafka["environment"]["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "zookeeper" not in COMPOSE_FILE.read_text().lower()
    for name, svc in services.items():
        image = svc["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: unpinned image {image}"


def test_compose_points_the_notifier_at_the_smtp_catch_all_and_commits_no_secret():
    services = compose()["services"]
    env = services["notifier"]["environment"]
    assert env["BEACON_SMTP_HOST"] == "mailpit" and "mailpit" in services
    assert services["mailpit"]["image"].startswith("axllent/mailpit:v")
    text = COMPOSE_FILE.read_text()
    assert "BEACON_ACK_LINK_SECRET" in text
    for name in (n for n in SECRET_SETTINGS if n in text):
        assert re.search(rf"{name}: \$\{{{name}:[?-]", text), f"{name} must come from the environment"
    assert re.search(r"GF_SECURITY_ADMIN_PASSWORD: \$\{GRAFANA_ADMIN_PASSWORD:\?", text)


def test_compose_prometheus_scrapes_every_service_and_loads_the_rules():
    services = compose()["services"]
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    for name in beacon_services():
        assert jobs[f"beacon-{name}"] == [f"{name}:{default_port(name)}"]
    volumes = services["prometheus"]["volumes"]
    assert "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in volumes
    assert "./deploy/prometheus/beacon-rules.yml:/etc/prometheus/beacon-rules.yml:ro" in volumes
    assert config["rule_files"] == ["beacon-rules.yml"]


def test_compose_grafana_is_provisioned_with_the_dashboard():
    grafana = compose()["services"]["grafana"]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in grafana["volumes"] if v.startswith("./"))
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load((REPO_ROOT / "deploy/grafana/provisioning/dashboards/beacon.yml").read_text())
    assert mounts["./deploy/grafana/dashboards"] == provider["providers"][0]["options"]["path"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (REPO_ROOT / "deploy/grafana/dashboards" / Path(home).name).is_file()


# ---------------------------------------------------------------------- Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (REPO_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_dockerfile_builds_a_non_root_image_of_the_locked_package():
    instructions = dockerfile_instructions()
    assert instructions[0][0] == "FROM" and instructions[0][1].startswith("python:3.11-slim")
    users = [arg for op, arg in instructions if op == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert ("ENTRYPOINT", '["python", "-m", "beacon"]') in instructions
    runs = " ".join(arg for op, arg in instructions if op == "RUN")
    assert "pip install -c requirements.lock -e ." in runs


def test_dockerfile_copies_only_files_that_exist_and_are_not_dockerignored():
    ignored = [
        line.strip().rstrip("/")
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for op, arg in dockerfile_instructions():
        if op != "COPY":
            continue
        *sources, _destination = arg.split()
        for source in sources:
            assert (REPO_ROOT / source).exists(), source
            clean = source.rstrip("/")
            assert not any(clean == pattern or clean.startswith(pattern + "/") for pattern in ignored), source


# ---------------------------------------------------------------------- Kubernetes


def manifests() -> list[tuple[Path, dict]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [(path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def of_kind(kind: str) -> list[dict]:
    return [doc for _, doc in manifests() if doc["kind"] == kind]


def kubernetes_validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("kubernetes-validate"), "--strict", "--kubernetes-version", "1.31.0", str(path)],
        capture_output=True,
        text=True,
        env=offline_env(),
        timeout=300,
        check=False,
    )


def test_every_manifest_kind_is_validated_by_one_of_the_two_validators():
    kinds = {(doc["apiVersion"], doc["kind"]) for _, doc in manifests()}
    assert {k for _, k in kinds} - CORE_KINDS == {k for _, k in CRD_SCHEMAS}
    assert "Secret" not in {k for _, k in kinds}  # secrets are created out of band, never committed


def test_core_manifests_pass_kubernetes_validate_strict_offline(tmp_path):
    core = [doc for _, doc in manifests() if doc["kind"] in CORE_KINDS]
    bundle = tmp_path / "core.yaml"
    bundle.write_text(yaml.safe_dump_all(core))
    result = kubernetes_validate(bundle)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (result.stdout + result.stderr).count(" passed for resource ") == len(core)


def test_kubernetes_validate_rejects_an_unknown_field(tmp_path):
    (deployment, *_) = of_kind("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    bundle = tmp_path / "broken.yaml"
    bundle.write_text(yaml.safe_dump(deployment))
    result = kubernetes_validate(bundle)
    assert result.returncode != 0 and "livenesProbe" in result.stdout + result.stderr


def test_custom_resources_match_their_structural_schemas():
    for path, doc in manifests():
        schema = CRD_SCHEMAS.get((doc["apiVersion"], doc["kind"]))
        if schema is not None:
            jsonschema.validate(doc, schema)  # raises with the path of the first problem


def test_crd_schemas_reject_a_misspelt_field():
    (topic, *_) = of_kind("KafkaTopic")
    topic["spec"]["partition"] = topic["spec"].pop("partitions")
    errors = list(jsonschema.Draft202012Validator(CRD_SCHEMAS[(topic["apiVersion"], "KafkaTopic")]).iter_errors(topic))
    assert errors


def test_kafka_is_kraft_with_node_pools():
    (kafka,) = of_kind("Kafka")
    assert kafka["metadata"]["annotations"] == {"strimzi.io/node-pools": "enabled", "strimzi.io/kraft": "enabled"}
    assert "zookeeper" not in kafka["spec"]
    roles = {role for pool in of_kind("KafkaNodePool") for role in pool["spec"]["roles"]}
    assert roles == {"controller", "broker"}
    assert all(
        p["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
        for p in of_kind("KafkaNodePool") + of_kind("KafkaTopic")
    )


def beacon_config() -> dict:
    (config,) = [c for c in of_kind("ConfigMap") if c["metadata"]["name"] == "beacon-config"]
    return config


def test_kafka_topics_are_beacons_topics_with_the_configured_partitions():
    config = beacon_config()
    settings = config["data"]
    topics = {t["spec"]["topicName"]: t["spec"] for t in of_kind("KafkaTopic")}
    assert set(topics) == {spec.name for spec in TOPICS}
    declared = load_settings(
        topic_partitions=settings["BEACON_TOPIC_PARTITIONS"],
        topic_replication_factor=settings["BEACON_TOPIC_REPLICATION_FACTOR"],
    )
    for spec in TOPICS:
        topic = topics[spec.name]
        assert topic["partitions"] == declared.topic_partitions
        assert topic["replicas"] == declared.topic_replication_factor
        assert topic["config"] == topic_configs(spec, declared), spec.name


def test_config_map_holds_only_beacon_settings_and_no_secret():
    assert {c["metadata"]["name"] for c in of_kind("ConfigMap")} == {"beacon-config", "beacon-oncall"}
    config = beacon_config()
    assert_settings_names(set(config["data"]), "ConfigMap beacon-config")
    assert SECRET_SETTINGS.isdisjoint(config["data"])


def test_every_pod_logs_in_to_kafka_over_tls_as_the_kafka_user():
    """One listener, TLS with SCRAM; the ConfigMap points every pod at it as the KafkaUser
    whose Secret (made by Strimzi's User Operator) holds the password, trusting the cluster
    CA mounted where BEACON_KAFKA_SSL_CA_FILE says. (The ACLs themselves are proved
    sufficient by tests/integration/test_kafka_security.py on an authorizing Kafka.)"""
    (kafka,) = of_kind("Kafka")
    cluster = kafka["metadata"]["name"]
    (listener,) = kafka["spec"]["kafka"]["listeners"]  # no plaintext one beside it
    assert listener["tls"] is True and listener["authentication"] == {"type": "scram-sha-512"}
    assert kafka["spec"]["kafka"]["authorization"] == {"type": "simple"}
    assert "userOperator" in kafka["spec"]["entityOperator"]
    (user,) = of_kind("KafkaUser")
    assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
    data = beacon_config()["data"]
    assert data["BEACON_KAFKA_BOOTSTRAP_SERVERS"] == f"{cluster}-kafka-bootstrap:{listener['port']}"
    assert data["BEACON_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert data["BEACON_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert data["BEACON_KAFKA_SASL_USERNAME"] == user["metadata"]["name"]
    ca_file = Path(data["BEACON_KAFKA_SSL_CA_FILE"])
    for workload in of_kind("Deployment") + of_kind("StatefulSet"):
        pod = workload["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        password = {e["name"]: e.get("valueFrom") for e in container["env"]}["BEACON_KAFKA_SASL_PASSWORD"]
        assert password == {"secretKeyRef": {"name": user["metadata"]["name"], "key": "password", "optional": False}}
        (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == str(ca_file.parent)]
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert volume["secret"]["secretName"] == f"{cluster}-cluster-ca-cert"
        assert volume["secret"]["items"] == [{"key": "ca.crt", "path": ca_file.name}]


def test_every_service_runs_with_probes_resources_a_service_and_a_disruption_budget():
    workloads = {w["metadata"]["name"]: w for w in of_kind("Deployment") + of_kind("StatefulSet")}
    assert set(workloads) == {"ingest", "validator", "correlator", "notifier", "console"}
    assert {s.name for s in DEV_SERVICES} <= set(workloads)
    assert {workloads["correlator"]["kind"], workloads["notifier"]["kind"]} == {"StatefulSet"}
    services = of_kind("Service")
    budgets = of_kind("PodDisruptionBudget")
    for name, workload in workloads.items():
        pod = workload["spec"]["template"]
        labels = pod["metadata"]["labels"]
        assert workload["spec"]["selector"]["matchLabels"].items() <= labels.items()
        (container,) = pod["spec"]["containers"]
        assert container["image"] == BEACON_IMAGE and container["args"] == [name]
        assert container["ports"] == [{"name": "http", "containerPort": default_port(name), "protocol": "TCP"}]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        resources = container["resources"]
        assert resources["requests"]["cpu"] and resources["requests"]["memory"] == resources["limits"]["memory"]
        assert container["securityContext"]["runAsNonRoot"] and container["securityContext"]["readOnlyRootFilesystem"]
        assert {"configMapRef": {"name": "beacon-config"}} in container["envFrom"]
        assert {"secretRef": {"name": "beacon-secrets"}} in container["envFrom"]
        assert_settings_names({e["name"] for e in container["env"]}, f"{name} env")
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        # BEACON_DATA_DIR and the outbox, writable; ingest keeps no local state (tests/ops/test_image_and_config.py)
        assert ("/var/lib/beacon" in mounts) == (name != "ingest")
        if workload["kind"] == "StatefulSet":
            assert [t["metadata"]["name"] for t in workload["spec"]["volumeClaimTemplates"]] == ["data"]
            assert any(
                s["metadata"]["name"] == workload["spec"]["serviceName"] and s["spec"].get("clusterIP") == "None"
                for s in services
            )
        scraped = [s for s in services if s["metadata"]["name"] == name]
        assert len(scraped) == 1 and scraped[0]["spec"]["selector"].items() <= labels.items()
        assert scraped[0]["metadata"]["labels"]["beacon/job"] == f"beacon-{name}"
        assert any(b["spec"]["selector"]["matchLabels"].items() <= labels.items() for b in budgets), name


def test_service_monitor_scrapes_the_labelled_services_once_each():
    (monitor,) = of_kind("ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    selected = [
        s["metadata"]["name"] for s in of_kind("Service") if selector.items() <= s["metadata"]["labels"].items()
    ]
    assert sorted(selected) == sorted(w["metadata"]["name"] for w in of_kind("Deployment") + of_kind("StatefulSet"))
    assert monitor["spec"]["endpoints"][0]["port"] == "http" and monitor["spec"]["endpoints"][0]["path"] == "/metrics"


def test_prometheus_rule_is_the_rules_file():
    (rule,) = of_kind("PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load((PROM / "beacon-rules.yml").read_text())["groups"]
    assert (K8S / "monitoring.yaml").read_text() == sync_prometheusrule.render(), (
        "run: python deploy/k8s/sync_prometheusrule.py"
    )


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(
        p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"
    )


# ------------------------------------------------------------------------- secrets


def service_settings() -> dict[str, type[Settings]]:
    from beacon.console.settings import ConsoleSettings
    from beacon.correlator.settings import CorrelatorSettings
    from beacon.ingest.settings import IngestSettings
    from beacon.notifier.settings import NotifierSettings

    return {
        "ingest": IngestSettings,
        "validator": IngestSettings,
        "correlator": CorrelatorSettings,
        "notifier": NotifierSettings,
        "console": ConsoleSettings,
    }


def test_compose_and_kubernetes_require_every_secret_a_service_cannot_start_without():
    compose_text = COMPOSE_FILE.read_text()
    workloads = {w["metadata"]["name"]: w for w in of_kind("Deployment") + of_kind("StatefulSet")}
    required_somewhere = set()
    for name, settings_cls in service_settings().items():
        required = {f"BEACON_{field.upper()}" for field in required_secrets(settings_cls)}
        required_somewhere |= required
        env = compose()["services"][name]["environment"]
        (container,) = workloads[name]["spec"]["template"]["spec"]["containers"]
        from_secret = {
            e["name"]: e["valueFrom"]["secretKeyRef"]
            for e in container["env"]
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        for variable in required:
            # compose stops with the message when the operator has not exported it
            assert variable in env and re.search(rf"{variable}: \$\{{{variable}:\?", compose_text), (name, variable)
            # the pod does not start without the key in the Secret
            assert from_secret[variable] == {"name": "beacon-secrets", "key": variable, "optional": False}
        assert SECRET_SETTINGS >= set(from_secret)
    assert required_somewhere == {"BEACON_ACK_LINK_SECRET", "BEACON_CONSOLE_SESSION_SECRET"}

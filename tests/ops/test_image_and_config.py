"""The image holds everything a service opens at start, and each deployment gives every
service the configuration it needs, from the image or a mounted ConfigMap: no writable local
state, no file that exists only on a developer's machine.

No Docker engine runs here (`docker compose` is not installed either), so both are computed
the way Docker does: the build context is the work tree minus `.dockerignore` (Moby's pattern
rules: patterns anchored at the context root, `*` and `?` within one path segment, `**` across
segments, a match on a directory excludes what is under it, `!` re-includes, the last matching
pattern wins); the image's files are what the Dockerfile's COPY instructions take from it,
under WORKDIR; a service's environment is the Dockerfile's ENV overlaid by the manifest's
(ConfigMap, env, Secret keys). Each service's settings are then loaded from that environment
(a missing required setting fails here as it would stop the pod) and every file it reads at
start is looked up in the image or in a mounted ConfigMap or bind mount, and read.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import sys
from pathlib import Path

import pytest
import yaml

from beacon.core.policy import load_policy
from beacon.notifier.oncall import load_oncall
from beacon.runtime.settings import PROJECT_ROOT, Settings, load_settings
from harness.services import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "deploy" / "k8s"))
import sync_oncall

K8S = REPO_ROOT / "deploy" / "k8s"
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
IMAGE_ROOT = Path("/app")  # the Dockerfile's WORKDIR: PROJECT_ROOT inside the image
A_SECRET = secrets.token_hex(32)  # stands in for each value the operator puts in beacon-secrets


# ------------------------------------------------------------------ the build context


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def dockerignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        pattern = line[1:].strip() if exclusion else line
        pattern = str(Path(pattern.lstrip("/"))).removeprefix("./")
        rules.append((exclusion, _pattern_regex(pattern)))
    return rules


def ignored(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Moby's MatchesOrParentMatches: the path or one of its parents matches; the last rule wins."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for exclusion, regex in rules:
        if any(regex.match(prefix) for prefix in prefixes):
            excluded = not exclusion
    return excluded


def build_context(root: Path = REPO_ROOT) -> set[str]:
    rules = dockerignore_rules((root / ".dockerignore").read_text())
    return {
        rel
        for path in root.rglob("*")
        if path.is_file() and not ignored(rel := path.relative_to(root).as_posix(), rules)
    }


def dockerfile() -> list[tuple[str, str]]:
    text = (REPO_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def image_files() -> set[Path]:
    """Every file the Dockerfile's COPY instructions put in the image (absolute paths)."""
    context = build_context()
    files: set[Path] = set()
    workdir = Path("/")
    for op, arg in dockerfile():
        if op == "WORKDIR":
            workdir = workdir / arg
        if op != "COPY":
            continue
        assert not arg.startswith("--"), f"COPY {arg}: only plain COPY from the context is modelled"
        *sources, destination = shlex.split(arg)
        target = workdir / destination
        for source in sources:
            source = source.rstrip("/")
            if source in context:
                files.add(target / Path(source).name if destination.endswith("/") else target)
                continue
            under = [f for f in context if f.startswith(source + "/")]
            assert under, f"COPY {source}: nothing of it is in the build context"
            files |= {target / Path(f).relative_to(source) for f in under}
    return files


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for op, arg in dockerfile():
        if op == "ENV":
            env.update(dict(item.split("=", 1) for item in shlex.split(arg)))
    return env


def test_the_context_rules_are_dockers():
    rules = dockerignore_rules("tests\n**/__pycache__\ndeploy/*\n!deploy/policies\n*.md\n!README.md\n")
    assert ignored("tests/x.py", rules) and not ignored("services/tests/x.py", rules)  # anchored at the root
    assert ignored("services/beacon/__pycache__/a.pyc", rules) and ignored("__pycache__/a.pyc", rules)
    assert ignored("deploy/k8s/a.yaml", rules) and not ignored("deploy/policies/default.yaml", rules)
    assert ignored("NOTES.md", rules) and not ignored("README.md", rules) and not ignored("docs/a.md", rules)


def test_the_image_holds_the_package_its_data_and_no_development_state():
    files = image_files()
    tracked_package = {p.relative_to(REPO_ROOT) for p in (REPO_ROOT / "services" / "beacon").rglob("*") if p.is_file()}
    for rel in tracked_package:
        if "__pycache__" not in rel.parts and rel.suffix != ".pyc":
            assert IMAGE_ROOT / rel in files, f"{rel} is not in the image"
    for path in files:
        rel = path.relative_to(IMAGE_ROOT).as_posix()
        assert not rel.startswith(("var/", "tests/", ".venv/", "deploy/oncall/")), f"{rel} should not be in the image"


# ------------------------------------------------------------------ the deployments


def _k8s_docs() -> list[dict]:
    docs: list[dict] = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _config_maps() -> dict[str, dict[str, str]]:
    return {d["metadata"]["name"]: d.get("data", {}) for d in _k8s_docs() if d["kind"] == "ConfigMap"}


def _workloads() -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in _k8s_docs() if d["kind"] in ("Deployment", "StatefulSet")}


SERVICE_SETTINGS = {
    "ingest": "beacon.ingest.settings:IngestSettings",
    "validator": "beacon.ingest.settings:IngestSettings",
    "correlator": "beacon.correlator.settings:CorrelatorSettings",
    "notifier": "beacon.notifier.settings:NotifierSettings",
    "console": "beacon.console.settings:ConsoleSettings",
}


def _settings_class(service: str) -> type[Settings]:
    import importlib

    module, name = SERVICE_SETTINGS[service].split(":")
    return getattr(importlib.import_module(module), name)


def files_read_at_start(service: str, settings: Settings) -> list[Path]:
    """The files SERVICE reads before it serves (beyond its code): the policy (correlator) and
    the on-call file with the calendars it names (notifier)."""
    if service == "correlator":
        return [settings.policy_file]
    if service == "notifier":
        oncall = settings.oncall_file  # type: ignore[attr-defined]
        return [oncall]
    return []


def _load(service: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in [n for n in os.environ if n.startswith("BEACON_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings(_settings_class(service))


def _in_image(path: Path) -> Path | None:
    """Where ``path`` (as this checkout resolves it) is in the image, if it is under PROJECT_ROOT."""
    try:
        return IMAGE_ROOT / path.relative_to(PROJECT_ROOT)
    except ValueError:
        return None


def _k8s_env(container: dict) -> dict[str, str]:
    env = dict(image_env())
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(_config_maps()[source["configMapRef"]["name"]])
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", A_SECRET)  # else from beacon-secrets
    return env


def _with_secret_files(env: dict[str, str], container: dict, pod: dict, tmp_path: Path) -> dict[str, str]:
    """``env`` with each setting that names a file on a Secret volume (the Kafka cluster CA,
    which Strimzi makes) pointed at a stand-in: the manifest must mount that Secret key at
    exactly that path, and the pod cannot be shown the real contents here."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    on_secrets = {
        Path(m["mountPath"]) / item["path"]: volumes[m["name"]]["secret"]["secretName"]
        for m in container.get("volumeMounts", [])
        if "secret" in volumes.get(m["name"], {})
        for item in volumes[m["name"]]["secret"]["items"]
    }
    patched = dict(env)
    for name, value in env.items():
        if Path(value) in on_secrets:
            stand_in = tmp_path / f"{on_secrets[Path(value)]}-{Path(value).name}"
            stand_in.write_text("stand-in for the Secret's key\n")
            patched[name] = str(stand_in)
    return patched


@pytest.mark.parametrize("service", sorted(SERVICE_SETTINGS))
def test_each_kubernetes_pod_starts_on_the_image_and_its_mounted_configuration(service, monkeypatch, tmp_path):
    (container,) = _workloads()[service]["spec"]["template"]["spec"]["containers"]
    pod = _workloads()[service]["spec"]["template"]["spec"]
    env = _with_secret_files(_k8s_env(container), container, pod, tmp_path)
    settings = _load(service, env, monkeypatch)  # a missing or invalid setting stops the pod: it fails here
    files = image_files()
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {
        Path(m["mountPath"]): volumes[m["name"]] for m in container.get("volumeMounts", []) if m["name"] in volumes
    }
    for wanted in files_read_at_start(service, settings):
        local = _in_image(wanted)
        if local is not None:
            assert local in files, f"{service} reads {local} at start, which is not in the image"
            continue
        (mount,) = [m for m in mounts if wanted.is_relative_to(m)] or [None]
        assert mount is not None, f"{service} reads {wanted}, which neither the image nor a volume holds"
        config_map = mounts[mount].get("configMap")
        assert config_map, f"{service}: {wanted} is on a {sorted(mounts[mount])} volume, not a ConfigMap"
        data = _config_maps()[config_map["name"]]
        key = wanted.relative_to(mount).as_posix()
        assert key in data, f"ConfigMap {config_map['name']} has no {key} for {service}"
        for name, text in data.items():  # as the pod sees it, then read as the service reads it
            (tmp_path / name).write_text(text)
        if service == "notifier":
            load_oncall(tmp_path / key)
    if service == "correlator":
        load_policy(settings.policy_file)
    for mount in container.get("volumeMounts", []):  # read-only root: only volumes are writable
        assert Path(mount["mountPath"]).is_absolute()
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_ingest_keeps_no_local_state():
    pod = _workloads()["ingest"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    kinds = {v["name"]: "secret" if "secret" in v else "emptyDir" if "emptyDir" in v else "?" for v in pod["volumes"]}
    writable = [m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")]
    assert writable == ["/tmp"] and kinds == {"tmp": "emptyDir", "kafka-ca": "secret"}


def test_the_oncall_config_map_is_the_on_call_file_and_its_calendars():
    assert (K8S / "oncall.yaml").read_text() == sync_oncall.render(), "run: python deploy/k8s/sync_oncall.py"
    (container,) = _workloads()["notifier"]["spec"]["template"]["spec"]["containers"]
    oncall = next(e["value"] for e in container["env"] if e["name"] == "BEACON_ONCALL_FILE")
    assert Path(oncall).name == sync_oncall.MOUNTED_AS
    assert "oncall.yaml" in yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]


# ------------------------------------------------------------------ docker compose


def _interpolate(value: str) -> str:
    """Compose's ${VAR:?msg} / ${VAR:-default}: required ones get a test value, optional their default."""

    def one(match: re.Match[str]) -> str:
        op, rest = match.group(2), match.group(3)
        if op == ":?":
            return A_SECRET
        return rest if op == ":-" else ""

    return re.sub(r"\$\{(\w+)(:\?|:-)?([^}]*)\}", one, value)


@pytest.mark.parametrize("service", sorted(SERVICE_SETTINGS))
def test_each_compose_service_starts_on_the_image_and_its_mounts(service, monkeypatch):
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    svc = compose["services"][service]
    env = {**image_env(), **{k: _interpolate(str(v)) for k, v in svc["environment"].items()}}
    env = {k: v for k, v in env.items() if v != ""}  # an empty optional variable is unset
    settings = _load(service, env, monkeypatch)
    files = image_files()
    binds = {}
    for volume in svc.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            binds[Path(target)] = (REPO_ROOT / source).resolve()
    for wanted in files_read_at_start(service, settings):
        local = _in_image(wanted)
        if local is not None:
            assert local in files, f"compose {service} reads {local} at start, which is not in the image"
            continue
        (mount,) = [m for m in binds if wanted.is_relative_to(m)] or [None]
        assert mount is not None, f"compose {service} reads {wanted}, which neither the image nor a bind mount holds"
        on_host = binds[mount] / wanted.relative_to(mount)
        assert on_host.is_file(), f"compose {service}: {on_host} does not exist"
        if service == "notifier":
            load_oncall(on_host)

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from beacon.core.policy import PolicyError, load_policy
from beacon.registry import check_config_file
from beacon.runtime.settings import SettingsError, load_settings
from harness.services import REPO_ROOT, TEST_SECRETS, service_env

POLICIES = REPO_ROOT / "deploy" / "policies"


def test_defaults_load():
    s = load_settings()
    assert s.topic_partitions >= 4 and s.bootstrap_servers == ["127.0.0.1:9092"]


def test_bad_environment_variable_is_named_with_the_reason(monkeypatch):
    monkeypatch.setenv("BEACON_TOPIC_PARTITIONS", "zero")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "BEACON_TOPIC_PARTITIONS" in str(err.value) and "integer" in str(err.value)


def test_settings_file_is_read_and_environment_wins(monkeypatch, tmp_path):
    config = tmp_path / "beacon.yaml"
    config.write_text("topic_partitions: 12\ningest_port: 9000\n")
    monkeypatch.setenv("BEACON_CONFIG_FILE", str(config))
    monkeypatch.setenv("BEACON_INGEST_PORT", "9100")
    s = load_settings()
    assert (s.topic_partitions, s.ingest_port) == (12, 9100)


def test_missing_settings_file_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("BEACON_CONFIG_FILE", str(tmp_path / "nope.yaml"))
    with pytest.raises(SettingsError, match="BEACON_CONFIG_FILE"):
        load_settings()


def test_a_service_with_a_bad_setting_refuses_to_start_and_says_why():
    result = subprocess.run(
        [sys.executable, "-m", "beacon", "topics", "create"],
        env=service_env(ingest_port="70000"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "BEACON_INGEST_PORT" in result.stderr and "less than or equal to 65535" in result.stderr


@pytest.mark.parametrize("path", sorted(POLICIES.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_policies_are_valid(path: Path):
    assert load_policy(path).council


def test_invalid_policy_names_the_key_and_the_reason(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "council: x\nrepeat_episodes: {count: 1, window_days: 42}\n"
        "duration_ladder: {steps: [{after_hours: 48, severity: high, notify: a}, "
        "{after_hours: 24, severity: high, notify: b}]}\n"
    )
    with pytest.raises(PolicyError) as err:
        load_policy(bad)
    text = str(err.value)
    assert "repeat_episodes.count" in text and "greater than or equal to 2" in text
    assert "duration_ladder.steps" in text and "ascending" in text


def test_unknown_policy_key_is_refused(tmp_path):
    bad = tmp_path / "typo.yaml"
    bad.write_text("council: x\nrepeat_episode: {count: 3}\n")
    with pytest.raises(PolicyError, match="repeat_episode: Extra inputs are not permitted"):
        load_policy(bad)


def test_one_config_file_serves_every_service_and_typos_are_refused(monkeypatch, tmp_path):
    from beacon.console.settings import ConsoleSettings
    from beacon.notifier.settings import NotifierSettings

    config = tmp_path / "beacon.yaml"
    config.write_text("topic_partitions: 8\nconsole_timezone: Europe/London\nnotifier_max_bundle: 3\n")
    monkeypatch.setenv("BEACON_CONFIG_FILE", str(config))
    for name, value in TEST_SECRETS.items():
        monkeypatch.setenv(f"BEACON_{name.upper()}", value)
    assert load_settings(NotifierSettings).notifier_max_bundle == 3
    assert load_settings(ConsoleSettings).console_timezone == "Europe/London"
    assert load_settings().topic_partitions == 8

    config.write_text("topic_partitions: 8\nnotifier_max_bundel: 3\n")
    with pytest.raises(SettingsError, match="notifier_max_bundel: not a Beacon setting"):
        check_config_file(str(config))  # the CLI's check, before any service starts

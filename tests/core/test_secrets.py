"""Secrets (issue 11, item 1): a service refuses to start with a missing, published or short
secret, naming the variable; one rule for every secret."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beacon.console.settings import ConsoleSettings
from beacon.devrun import dev_secrets
from beacon.notifier.settings import NotifierSettings
from beacon.runtime.settings import MIN_SECRET_BYTES, SettingsError, load_settings, required_secrets, secret_problem
from harness.services import TEST_SECRETS, service_env

OLD_DEFAULT = "dev-only-secret-change-me"
SHORT = "0123456789abcdef0123456789abcd"  # 30 bytes, random-looking
STRONG = "0123456789abcdef0123456789abcdef"  # 32 bytes


@given(st.text(min_size=1).filter(lambda s: len(s.encode()) < MIN_SECRET_BYTES))
def test_every_secret_shorter_than_32_bytes_is_refused(value):
    assert secret_problem(value) is not None


@given(st.binary(min_size=MIN_SECRET_BYTES // 2, max_size=64).map(bytes.hex))
def test_every_random_secret_of_32_bytes_or_more_is_accepted(value):
    if len(set(value)) >= 8:  # hex of random bytes; a run like 000...0 is the one thing refused
        assert secret_problem(value) is None


@pytest.mark.parametrize("value", ["", OLD_DEFAULT, "CHANGE-ME", SHORT, "a" * 64, "ab" * 40])
def test_missing_published_short_and_placeholder_secrets_are_refused(value):
    assert secret_problem(value)


def test_the_rule_names_the_variable_for_every_secret(monkeypatch):
    for name in ("BEACON_ACK_LINK_SECRET", "BEACON_NOTIFIER_API_TOKEN", "BEACON_TWILIO_AUTH_TOKEN"):
        monkeypatch.setenv(name, SHORT)
    monkeypatch.setenv("BEACON_TWILIO_ACCOUNT_SID", "AC0123")
    with pytest.raises(SettingsError) as err:
        load_settings(NotifierSettings)
    for name in ("BEACON_ACK_LINK_SECRET", "BEACON_NOTIFIER_API_TOKEN", "BEACON_TWILIO_AUTH_TOKEN"):
        assert f"{name}: Value error, too short" in str(err.value)
    assert SHORT not in str(err.value)  # the refusal never echoes a secret


def test_optional_secrets_may_be_empty_while_their_feature_is_off(monkeypatch):
    monkeypatch.setenv("BEACON_ACK_LINK_SECRET", STRONG)
    settings = load_settings(NotifierSettings)
    assert settings.notifier_api_token.get_secret_value() == "" and settings.twilio_account_sid == ""


def test_the_required_secrets_are_the_ack_link_and_session_secrets():
    assert required_secrets(NotifierSettings) == ["ack_link_secret"]
    assert required_secrets(ConsoleSettings) == ["console_session_secret"]


def test_dev_mode_makes_fresh_secrets_per_run_and_keeps_the_ones_set():
    first, second = dev_secrets({}), dev_secrets({})
    assert set(first) == {"BEACON_ACK_LINK_SECRET", "BEACON_CONSOLE_SESSION_SECRET"}
    assert all(secret_problem(v) is None for v in first.values())
    assert first["BEACON_ACK_LINK_SECRET"] != second["BEACON_ACK_LINK_SECRET"]
    assert set(dev_secrets({"BEACON_ACK_LINK_SECRET": STRONG})) == {"BEACON_CONSOLE_SESSION_SECRET"}
    assert all(secret_problem(v) is None for v in TEST_SECRETS.values())


CASES = [
    # (service, variable, extra settings)
    ("notifier", "BEACON_ACK_LINK_SECRET", {}),
    ("console", "BEACON_CONSOLE_SESSION_SECRET", {}),
    ("notifier", "BEACON_TWILIO_AUTH_TOKEN", {"twilio_account_sid": "AC0123456789", "twilio_from_number": "+441"}),
    ("notifier", "BEACON_NOTIFIER_API_TOKEN", {}),
]
VALUES = {"missing": None, "old default": OLD_DEFAULT, "short": SHORT}


def _params():
    for service, variable, extra in CASES:
        for label, value in VALUES.items():
            if variable == "BEACON_NOTIFIER_API_TOKEN" and value is None:
                continue  # empty turns the API off: nothing to refuse
            yield pytest.param(service, variable, extra, value, id=f"{service}-{variable}-{label}")


@pytest.mark.slow  # starts the real service processes
@pytest.mark.parametrize(("service", "variable", "extra", "value"), list(_params()))
def test_a_service_refuses_to_start_without_a_strong_secret(service, variable, extra, value, tmp_path):
    env = service_env(
        **extra,
        **{variable.removeprefix("BEACON_").lower(): value},
        data_dir=tmp_path / "data",
        kafka_bootstrap_servers="127.0.0.1:9",  # refused before any connection is tried
    )
    result = subprocess.run(
        [sys.executable, "-m", "beacon", service], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2, result.stderr
    assert variable in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    if value:
        assert value not in result.stderr

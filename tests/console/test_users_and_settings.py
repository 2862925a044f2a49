"""Console accounts (scrypt hashes, organisations and roles on beacon.console.users) and console settings."""

from __future__ import annotations

import json

import pytest

from beacon.console.access import Principal, Role
from beacon.console.app import _format_duration, _local_path
from beacon.console.settings import ConsoleSettings
from beacon.console.users import UserDirectory, UserError, hash_password, user_set_record, verify_password
from beacon.core.console_users import ConsoleUserRecord
from beacon.runtime.settings import SettingsError, load_settings

FAST = {"n": 2**10, "r": 8, "p": 1}  # cheap parameters where only the format is under test


def test_hash_verifies_only_the_right_password_and_is_salted():
    encoded = hash_password("a long enough password", **FAST)
    assert encoded.startswith("scrypt$1024$8$1$")
    assert verify_password("a long enough password", encoded)
    assert not verify_password("a long enough passwore", encoded)
    assert hash_password("a long enough password", **FAST) != encoded


@pytest.mark.parametrize(
    "garbage", ["", "plain", "bcrypt$1$2$3$4$5", "scrypt$x$8$1$AA==$AA==", "scrypt$1024$8$1$!!$!!"]
)
def test_a_malformed_hash_never_verifies(garbage):
    assert verify_password("anything at all", garbage) is False


def _record(name="alice", password="first password 123", orgs=("southwark",), role="responder", at=1.0):
    return user_set_record(name, password, list(orgs), role, at)


def test_the_directory_follows_the_topic_latest_record_of_each_name():
    directory = UserDirectory()
    assert not directory.authenticate("alice", "whatever password")
    directory.apply(_record())
    assert directory.authenticate("alice", "first password 123")
    assert directory.principal("alice") == Principal("alice", frozenset({"southwark"}), Role.responder)
    directory.apply(_record(password="second password 456", orgs=("lambeth", "met-police"), role="viewer", at=2.0))
    assert not directory.authenticate("alice", "first password 123")
    assert directory.authenticate("alice", "second password 456")
    assert directory.principal("alice") == Principal("alice", frozenset({"lambeth", "met-police"}), Role.viewer)
    directory.apply(ConsoleUserRecord(kind="user_removed", name="alice", at=3.0))
    assert not directory.exists("alice") and not directory.authenticate("alice", "second password 456")


def test_a_user_record_round_trips_and_never_holds_the_password():
    record = _record()
    assert b"first password" not in record.to_json()
    assert ConsoleUserRecord.from_json(record.to_json()) == record
    assert record.key == b"alice"


@pytest.mark.parametrize(
    "payload",
    [
        {"kind": "user_set", "name": "alice", "at": 1.0, "role": "admin", "organisations": ["southwark"]},  # no hash
        {"kind": "user_set", "name": "alice", "at": 1.0, "password_hash": "scrypt$1$8$1$AA==$AA==", "role": "admin"},
        {"kind": "user_removed", "name": "alice", "at": 1.0, "role": "admin"},
        {"kind": "user_set", "name": "../x", "at": 1.0},
    ],
)
def test_incomplete_user_records_are_refused(payload):
    with pytest.raises(ValueError):
        ConsoleUserRecord.from_json(json.dumps(payload))


@pytest.mark.parametrize("name", ["a", "Jane Smith", "x" * 65, "../etc", ""])
def test_user_names_are_staff_ids(name):
    with pytest.raises(UserError):
        _record(name=name)


def test_short_passwords_unknown_roles_and_non_slug_organisations_are_refused():
    with pytest.raises(UserError, match="at least 12"):
        _record(password="short")
    with pytest.raises(UserError, match="unknown role"):
        _record(role="root")
    with pytest.raises(UserError, match="organisations"):
        _record(orgs=("South Wark",))
    with pytest.raises(UserError, match="organisations"):
        _record(orgs=())


def test_a_bad_time_zone_names_the_variable(monkeypatch):
    monkeypatch.setenv("BEACON_CONSOLE_TIMEZONE", "Mars/Olympus")
    with pytest.raises(SettingsError, match="BEACON_CONSOLE_TIMEZONE"):
        load_settings(ConsoleSettings)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/children/CH-1", "/children/CH-1"),
        ("https://evil.example/", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        (None, "/"),
        ("", "/"),
    ],
)
def test_redirects_stay_inside_the_console(target, expected):
    assert _local_path(target) == expected


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 min"), (59 * 60, "59 min"), (3 * 3600 + 5 * 60, "3 h 05 min"), (26 * 3600, "1 d 2 h"), (-30, "0 min")],
)
def test_durations_read_like_a_person_says_them(seconds, text):
    assert _format_duration(seconds) == text

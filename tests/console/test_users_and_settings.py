"""Console accounts (scrypt hashes in a users file) and console settings."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys

import pytest

from beacon.console.app import _format_duration, _local_path
from beacon.console.settings import ConsoleSettings
from beacon.console.users import UserError, UsersFileError, UserStore, hash_password, verify_password
from beacon.core.settings import SettingsError, load_settings
from harness.services import service_env

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


def test_store_adds_changes_removes_and_rereads_the_file(tmp_path):
    path = tmp_path / "sub" / "users.json"
    store, other_reader = UserStore(path), UserStore(path)
    assert store.users() == {} and not store.authenticate("alice", "whatever password")
    store.set_password("alice", "first password 123")
    assert other_reader.authenticate("alice", "first password 123")
    store.set_password("alice", "second password 456")
    assert not other_reader.authenticate("alice", "first password 123")
    assert other_reader.authenticate("alice", "second password 456")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert "second password" not in path.read_text()
    assert store.remove("alice") and not other_reader.exists("alice")
    assert not store.remove("alice")


@pytest.mark.parametrize("name", ["a", "Jane Smith", "x" * 65, "../etc", ""])
def test_user_names_are_staff_ids(tmp_path, name):
    with pytest.raises(UserError):
        UserStore(tmp_path / "users.json").set_password(name, "long enough password")


def test_short_passwords_are_refused(tmp_path):
    with pytest.raises(UserError, match="at least 12"):
        UserStore(tmp_path / "users.json").set_password("alice", "short")


@pytest.mark.slow  # runs the real CLI as a process
def test_cli_reads_the_password_from_stdin_and_lists_names_only(tmp_path):
    env = service_env(console_users_file=tmp_path / "users.json")

    def beacon(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "beacon", *args],
            input=stdin,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    added = beacon("console-user", "add", "duty-1", stdin="a password from stdin\n")
    assert added.returncode == 0 and "added duty-1" in added.stdout
    assert UserStore(tmp_path / "users.json").authenticate("duty-1", "a password from stdin")
    refused = beacon("console-user", "add", "duty-2", stdin="short\n")
    assert refused.returncode == 1 and "at least 12" in refused.stderr
    listed = beacon("console-user", "list")
    assert listed.stdout.split() == ["duty-1"] and "scrypt" not in listed.stdout
    assert json.loads((tmp_path / "users.json").read_text())["users"]["duty-1"]["password_hash"].startswith("scrypt$")


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


@pytest.mark.parametrize(
    "broken", ['{"users": {', "[]", '{"users": []}', '{"users": {"a": 1}}', '{"users": {"a": {}}}']
)
def test_a_broken_users_file_is_one_clear_error_naming_the_file(tmp_path, broken):
    path = tmp_path / "users.json"
    path.write_text(broken)
    store = UserStore(path)
    for call in (store.users, lambda: store.exists("a"), lambda: store.authenticate("a", "x" * 12)):
        with pytest.raises(UsersFileError, match=re.escape(str(path))):
            call()

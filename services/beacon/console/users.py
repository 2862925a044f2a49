"""Console staff accounts: a JSON file of user names and scrypt password hashes.

Hashes use the standard library's scrypt (RFC 7914) with a random salt per user and
are compared in constant time. An unknown user name costs the same scrypt work as a
known one, so response times do not reveal who has an account.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")
MIN_PASSWORD_LENGTH = 12

# scrypt cost: 2**15 x 8 x 1 uses 32 MiB and about 0.1 s per check (OWASP's minimum is 2**17 x 8 x 1
# for an interactive login of a high-value system; raise N here and old hashes keep working).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_MAXMEM = 256 * 1024 * 1024


class UserError(ValueError):
    """A user name or password that cannot be accepted, with the reason."""


class UsersFileError(UserError):
    """The users file exists but is not a valid users file (e.g. after a hand edit). Nobody
    is let in until it is fixed: the edit may have been meant to remove someone."""


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=32)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, n, r, p, salt, expected = encoded.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), maxmem=_MAXMEM, dklen=32
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, base64.b64decode(expected))


# Verified against when the user name is unknown, so that case costs the same time.
_DECOY_HASH = hash_password(secrets.token_urlsafe(16))


def check_user_name(name: str) -> str:
    if not USER_NAME.match(name):
        raise UserError("a user name is 2-64 letters, digits, '.', '_' or '-' (a staff id, not a full name)")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return password


@dataclass
class UserStore:
    """The users file. Re-read whenever it changes on disk, so adding or removing a user
    takes effect at once, and a removed user's open sessions stop working."""

    path: Path
    _mtime: int | None = None
    _users: dict[str, str] | None = None

    def users(self) -> dict[str, str]:
        """Name -> password hash. Raises UsersFileError while the file is broken."""
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self._mtime, self._users = None, {}
            return {}
        if self._users is None or mtime != self._mtime:
            self._users = self._read()
            self._mtime = mtime
        return self._users

    def _read(self) -> dict[str, str]:
        try:
            document = json.loads(self.path.read_text())
            entries = document["users"] if isinstance(document, dict) else None
            if not isinstance(entries, dict):
                raise TypeError('the top level must be {"users": {name: {"password_hash": ...}}}')
            users = {name: entry["password_hash"] for name, entry in entries.items()}
            if not all(isinstance(encoded, str) for encoded in users.values()):
                raise TypeError("every password_hash must be a string")
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError, KeyError) as exc:  # a hand edit broke it
            raise UsersFileError(f"users file {self.path} cannot be read: {type(exc).__name__}: {exc}") from None
        return users

    def exists(self, name: str) -> bool:
        return name in self.users()

    def authenticate(self, name: str, password: str) -> bool:
        encoded = self.users().get(name)
        if encoded is None:
            verify_password(password, _DECOY_HASH)
            return False
        return verify_password(password, encoded)

    def _write(self, users: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        document = {"users": {name: {"password_hash": h} for name, h in sorted(users.items())}}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".users-")
        try:
            with os.fdopen(fd, "w") as out:  # mkstemp creates it 0600: hashes are not for everyone
                json.dump(document, out, indent=2)
                out.write("\n")
            os.replace(tmp, self.path)
        except BaseException:
            os.unlink(tmp)
            raise

    def set_password(self, name: str, password: str) -> None:
        users = dict(self.users())
        users[check_user_name(name)] = hash_password(check_password(password))
        self._write(users)

    def remove(self, name: str) -> bool:
        users = dict(self.users())
        if users.pop(name, None) is None:
            return False
        self._write(users)
        return True

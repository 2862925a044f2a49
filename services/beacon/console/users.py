"""Console staff accounts: user names, scrypt password hashes, organisations and a role,
kept on the compacted topic ``beacon.console.users`` (core/console_users.py).

Hashes use the standard library's scrypt (RFC 7914) with a random salt per user and
are compared in constant time. An unknown user name costs the same scrypt work as a
known one, so response times do not reveal who has an account.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

from pydantic import ValidationError

from beacon.console.access import Principal, Role
from beacon.core.console_users import ConsoleUserRecord

USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")
MIN_PASSWORD_LENGTH = 12

# scrypt cost: 2**15 x 8 x 1 uses 32 MiB and about 0.1 s per check (OWASP's minimum is 2**17 x 8 x 1
# for an interactive login of a high-value system; raise N here and old hashes keep working).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_MAXMEM = 256 * 1024 * 1024


class UserError(ValueError):
    """A user name or password that cannot be accepted, with the reason."""


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


@dataclass(frozen=True)
class ConsoleUser:
    name: str
    password_hash: str
    principal: Principal


@dataclass
class UserDirectory:
    """The users every console replica folds from ``beacon.console.users`` (pure: the feed
    applies records in topic order; the latest record of a name wins, as compaction keeps)."""

    users: dict[str, ConsoleUser] = field(default_factory=dict)

    def apply(self, record: ConsoleUserRecord) -> None:
        if record.kind == "user_removed":
            self.users.pop(record.name, None)
            return
        assert record.password_hash is not None and record.role is not None  # the record's validator
        principal = Principal(record.name, frozenset(record.organisations), Role.parse(record.role))
        self.users[record.name] = ConsoleUser(record.name, record.password_hash, principal)

    def exists(self, name: str) -> bool:
        return name in self.users

    def principal(self, name: str) -> Principal | None:
        user = self.users.get(name)
        return user.principal if user else None

    def authenticate(self, name: str, password: str) -> bool:
        user = self.users.get(name)
        if user is None:
            verify_password(password, _DECOY_HASH)
            return False
        return verify_password(password, user.password_hash)


def user_set_record(name: str, password: str, organisations: list[str], role: str, at: float) -> ConsoleUserRecord:
    """What ``console-user add`` writes; raises UserError naming what is wrong."""
    check_user_name(name)
    check_password(password)
    if not organisations:
        raise UserError("organisations: a user needs at least one (--org), or they would see nothing")
    try:
        Role.parse(role)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    try:
        return ConsoleUserRecord(
            kind="user_set",
            name=name,
            at=at,
            password_hash=hash_password(password),
            organisations=tuple(sorted(set(organisations))),
            role=role,  # type: ignore[arg-type]
        )
    except ValidationError as exc:  # an organisation that is not a slug, or none at all
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise UserError(f"{where or 'user'}: {first['msg']}") from None

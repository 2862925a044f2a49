"""API keys per source: the pure decisions on the records of ``beacon.apikeys``.

A token looks like ``bk_<key_id>_<secret>``: the key id finds the record, the SHA-256 of
the whole token is compared in constant time. SHA-256 (not a slow KDF) is enough because
the secret is 256 random bits, not a password. Only the hash is ever written anywhere.

The compacted topic ``beacon.apikeys`` (keyed by key id) is the system of record: the CLI
writes a key's record when it creates it and again, with ``revoked_at``, when it revokes it;
every ingest replica reads the topic from the beginning and keeps on reading
(``apikey_topic.py``), so a revocation reaches every replica at once. The shell feeds
records into an ``ApiKeyRegistry`` and asks it; nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from beacon.core.apikeys import KEY_ID, SOURCE_NAME, ApiKey

_TOKEN = re.compile(rf"^bk_({KEY_ID.pattern[1:-1]})_([A-Za-z0-9_-]{{20,100}})$")
_KEY_ID_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"


class KeyStoreError(ValueError):
    """A refused CLI request (bad source or scope, unknown key id), said in one sentence."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def rfc3339(at: datetime) -> str:
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")


def new_key(source: str, scope: str, scopes: dict[str, list[str]], now: datetime) -> tuple[ApiKey, str]:
    """A new key's record and the key itself (shown once, never stored)."""
    if not SOURCE_NAME.match(source):
        raise KeyStoreError(f"source {source!r} must be a lower-case slug like 'met-police'")
    if scope not in scopes:
        raise KeyStoreError(f"unknown scope {scope!r}; known scopes: {', '.join(sorted(scopes))}")
    key_id = "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(12))
    token = f"bk_{key_id}_{secrets.token_urlsafe(32)}"
    record = ApiKey(key_id=key_id, source=source, scope=scope, token_sha256=hash_token(token), created_at=rfc3339(now))
    return record, token


def revocation(keys: dict[str, ApiKey], key_id: str, now: datetime) -> ApiKey:
    """The record that revokes ``key_id`` (the same record again if it is revoked already)."""
    key = keys.get(key_id)
    if key is None:
        raise KeyStoreError(f"no key with id {key_id!r}")
    return key if not key.active else key.model_copy(update={"revoked_at": rfc3339(now)})


@dataclass
class ApiKeyRegistry:
    """The keys as the topic says, folded in record by record.

    A revocation is final: a later record that would make a revoked key active again (a
    replayed create, a hand-written record) is ignored. A tombstone (empty value) removes
    the key, so it is refused too."""

    keys: dict[str, ApiKey] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)

    def apply(self, key_id: str, record: ApiKey | None) -> None:
        if record is None:
            self.keys.pop(key_id, None)
            self.revoked.add(key_id)
            return
        if record.key_id != key_id:
            raise ValueError(f"record of key {record.key_id!r} under the Kafka key {key_id!r}")
        if not record.active:
            self.revoked.add(key_id)
        elif key_id in self.revoked:
            return
        self.keys[key_id] = record

    def authenticate(self, token: str | None) -> ApiKey | None:
        """The active key matching ``token``, or None (no key, unknown, revoked, wrong secret)."""
        match = _TOKEN.match(token or "")
        if not match:
            return None
        key = self.keys.get(match.group(1))
        if key is None or not hmac.compare_digest(key.token_sha256, hash_token(token or "")):
            return None
        return key if key.active and key.key_id not in self.revoked else None


def token_key_id(token: str | None) -> str | None:
    """The key id a well-formed token names, else None."""
    match = _TOKEN.match(token or "")
    return match.group(1) if match else None

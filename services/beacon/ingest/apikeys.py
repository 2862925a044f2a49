"""API keys per source, stored only as SHA-256 hashes of high-entropy tokens.

A token looks like ``bk_<key_id>_<secret>``: the key id finds the record, the
hash of the whole token is compared in constant time. SHA-256 (not a slow KDF)
is enough because the secret is 256 random bits, not a password. The file is
rewritten atomically (temp file + fsync + rename) under an exclusive lock, and
the service reloads it whenever its modification time changes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")
_TOKEN = re.compile(r"^bk_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{20,100})$")


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    source: str  # source name, e.g. "met-police"; events must come from urn:beacon:source:<source>
    scope: str  # e.g. "police" or "council"
    token_sha256: str
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class KeyStoreError(ValueError):
    pass


class KeyFileError(KeyStoreError):
    """The keys file exists but is not a valid keys file (e.g. after a hand edit). Nobody is
    let in until it is fixed: the file may have been edited to revoke a key."""


class ApiKeyStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._mtime_ns: int | None = None
        self._keys: dict[str, ApiKey] = {}

    # ---------------------------------------------------------------- reading
    def _read(self) -> dict[str, ApiKey]:
        try:
            raw = json.loads(self.path.read_text())
            if not isinstance(raw, dict) or not isinstance(raw.get("keys", []), list):
                raise TypeError('the top level must be {"keys": [...]}')
            keys = [ApiKey(**k) for k in raw.get("keys", [])]
            if not all(isinstance(v, str) for k in keys for v in (k.key_id, k.token_sha256, k.source, k.scope)):
                raise TypeError("key_id, source, scope and token_sha256 must be strings")
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError) as exc:  # a hand edit broke it
            raise KeyFileError(f"API-keys file {self.path} cannot be read: {type(exc).__name__}: {exc}") from None
        return {k.key_id: k for k in keys}

    def keys(self) -> dict[str, ApiKey]:
        """The current keys, reloaded when the file changed since the last call.

        Raises KeyFileError while the file is broken (it is read again on the next call)."""
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if mtime != self._mtime_ns or mtime is None:
            self._keys = self._read()
            self._mtime_ns = mtime
        return self._keys

    def authenticate(self, token: str | None) -> ApiKey | None:
        """The active key matching ``token``, or None (no key, unknown, revoked)."""
        match = _TOKEN.match(token or "")
        if not match:
            return None
        key = self.keys().get(match.group(1))
        if key is None:
            return None
        if not hmac.compare_digest(key.token_sha256, hash_token(token or "")):
            return None
        return key if key.active else None

    # ---------------------------------------------------------------- writing
    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, ApiKey]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(self.path.suffix + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            keys = self._read()
            yield keys
            self._write(keys)

    def _write(self, keys: dict[str, ApiKey]) -> None:
        body = json.dumps({"keys": [asdict(k) for k in keys.values()]}, indent=2) + "\n"
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def create(self, source: str, scope: str, scopes: dict[str, list[str]]) -> tuple[ApiKey, str]:
        """A new key; returns the record and the token (shown once, never stored)."""
        if not SOURCE_NAME.match(source):
            raise KeyStoreError(f"source {source!r} must be a lower-case slug like 'met-police'")
        if scope not in scopes:
            raise KeyStoreError(f"unknown scope {scope!r}; known scopes: {', '.join(sorted(scopes))}")
        key_id = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789") for _ in range(12))
        token = f"bk_{key_id}_{secrets.token_urlsafe(32)}"
        key = ApiKey(key_id=key_id, source=source, scope=scope, token_sha256=hash_token(token), created_at=_now())
        with self._locked() as keys:
            keys[key_id] = key
        return key, token

    def revoke(self, key_id: str) -> ApiKey:
        with self._locked() as keys:
            key = keys.get(key_id)
            if key is None:
                raise KeyStoreError(f"no key with id {key_id!r}")
            if key.active:
                key = ApiKey(**{**asdict(key), "revoked_at": _now()})
                keys[key_id] = key
        return key

    def list(self) -> list[ApiKey]:
        return sorted(self._read().values(), key=lambda k: k.created_at)

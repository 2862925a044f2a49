"""Signed, expiring, single-use acknowledgement links.

The token is ``base64url(payload).base64url(HMAC-SHA256)``; the payload names the
alert, the person and the expiry, plus a nonce derived from the notification, so
the same notification always carries the same link (replays do not mint new
ones). Single use: the nonce becomes the AckCommand's command id, which the
escalation state remembers; a second use is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta


class LinkError(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason  # "invalid" or "expired"


@dataclass(frozen=True)
class AckLink:
    alert_id: str
    person: str
    expires_at: datetime
    nonce: str

    @property
    def command_id(self) -> str:
        return f"link:{self.nonce}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()[:20])


def make_token(secret: str, alert_id: str, person: str, notice_key: str, issued_at: datetime, ttl: timedelta) -> str:
    nonce = hashlib.sha256(f"{alert_id}|{notice_key}".encode()).hexdigest()[:16]
    expires = int((issued_at + ttl).timestamp())
    payload = _b64(json.dumps({"a": alert_id, "p": person, "e": expires, "n": nonce}, separators=(",", ":")).encode())
    return f"{payload}.{_sign(secret, payload)}"


def read_token(secret: str, token: str, now: datetime) -> AckLink:
    """The link a token stands for; LinkError ("invalid" or "expired") for anything else,
    whatever the token holds (non-ASCII text, a signed payload of the wrong shape, an expiry
    past the year 9999)."""
    payload, separator, signature = token.partition(".")
    if not separator or not token.isascii():
        raise LinkError("invalid")
    if not hmac.compare_digest(signature.encode(), _sign(secret, payload).encode()):
        raise LinkError("invalid")
    try:
        data = json.loads(_unb64(payload))
        link = AckLink(
            alert_id=str(data["a"]),
            person=str(data["p"]),
            expires_at=datetime.fromtimestamp(int(data["e"]), tz=now.tzinfo),
            nonce=str(data["n"]),
        )
    except (ValueError, KeyError, TypeError, OverflowError, OSError, RecursionError):
        raise LinkError("invalid") from None
    if now >= link.expires_at:
        raise LinkError("expired")
    return link

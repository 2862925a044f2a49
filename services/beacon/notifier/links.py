"""Short, signed, expiring, single-use acknowledgement links: ``/a/<token>``.

The token is 22 characters, so a page with its link fits one SMS segment:
``base64url(tag[6] | expiry[3] | HMAC-SHA256(secret, tag | expiry)[:7])``.

- ``tag`` names one notification (a hash of alert id and notice key); the notifier
  looks the notification, and so the alert and the person, up by it. The same
  notification always carries the same link (replays do not mint new ones).
- ``expiry`` is in whole minutes since 2020-01-01 UTC (3 bytes: until 2051), rounded
  down, so a link lives at most its TTL.
- The 56-bit MAC makes a forged or altered token fail; guessing one online would
  take on the order of 10^16 requests.

Single use: the tag becomes the AckCommand's command id, which the escalation state
remembers; a second use is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from beacon.core.wording import reason, severity_word
from beacon.notifier.escalation import EscalationState, Notice

_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
_TAG_BYTES, _EXPIRY_BYTES, _MAC_BYTES = 6, 3, 7
_TOKEN_BYTES = _TAG_BYTES + _EXPIRY_BYTES + _MAC_BYTES
TOKEN_CHARS = 22  # base64url of 16 bytes, unpadded
LINK_PATH = "/a/"


class LinkError(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason  # "invalid" or "expired"


@dataclass(frozen=True)
class AckLink:
    tag: str  # hex: which notification
    expires_at: datetime

    @property
    def command_id(self) -> str:
        return f"link:{self.tag}"


def link_tag(alert_id: str, notice_key: str) -> str:
    """The notification's tag (hex), as its token carries it."""
    return hashlib.sha256(f"{alert_id}|{notice_key}".encode()).digest()[:_TAG_BYTES].hex()


def _mac(secret: str, body: bytes) -> bytes:
    return hmac.new(secret.encode(), b"beacon-ack-link-v2|" + body, hashlib.sha256).digest()[:_MAC_BYTES]


def make_token(secret: str, alert_id: str, notice_key: str, issued_at: datetime, ttl: timedelta) -> str:
    minutes = int((issued_at + ttl - _EPOCH).total_seconds() // 60)
    body = bytes.fromhex(link_tag(alert_id, notice_key)) + minutes.to_bytes(_EXPIRY_BYTES, "big")
    return base64.urlsafe_b64encode(body + _mac(secret, body)).rstrip(b"=").decode()


def read_token(secret: str, token: str, now: datetime) -> AckLink:
    if len(token) != TOKEN_CHARS:
        raise LinkError("invalid")
    try:
        raw = base64.urlsafe_b64decode(token + "==")
    except (binascii.Error, ValueError):
        raise LinkError("invalid") from None
    canonical = base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == token  # one spelling per token
    body, mac = raw[: _TAG_BYTES + _EXPIRY_BYTES], raw[_TAG_BYTES + _EXPIRY_BYTES :]
    if len(raw) != _TOKEN_BYTES or not canonical or not hmac.compare_digest(mac, _mac(secret, body)):
        raise LinkError("invalid")
    minutes = int.from_bytes(body[_TAG_BYTES:], "big")
    link = AckLink(tag=body[:_TAG_BYTES].hex(), expires_at=_EPOCH + timedelta(minutes=minutes))
    if now >= link.expires_at:
        raise LinkError("expired")
    return link


# ---------------------------------------------------------------- what a link page answers
@dataclass(frozen=True)
class LinkPage:
    """A page refusing a link (a 4xx), or asking to confirm it (``confirm``: 200)."""

    title: str
    message: str
    status: int
    confirm: bool = False


def link_page(
    link: AckLink | LinkError,
    found: tuple[EscalationState, Notice] | None,
    used_here: bool,
) -> LinkPage:
    """The decision for ``/a/<token>``: the token read (or why not), the notification it
    names (``None``: no such notification) and whether this replica already took it.
    Only ``confirm`` lets the POST acknowledge."""
    if isinstance(link, LinkError):
        if link.reason == "expired":
            return LinkPage(
                "Link expired",
                "This acknowledgement link has expired. Reply to the SMS with the code, or use the console.",
                410,
            )
        return LinkPage("Invalid link", "This acknowledgement link is not valid.", 400)
    if found is None:
        return LinkPage("Unknown alert", "This alert is not known to Beacon.", 404)
    state, _ = found
    if used_here or link.command_id in state.seen_commands:
        return LinkPage("Link already used", "This acknowledgement link has already been used.", 409)
    if state.status != "active":
        return LinkPage("Nothing to acknowledge", f"Case {state.case_ref} is already {state.status}.", 409)
    return LinkPage(
        f"Acknowledge case {state.case_ref}?",
        f"{severity_word(state.severity)}: {reason(state.rule, state.rule_step)}. Acknowledging stops the escalation.",
        200,
        confirm=True,
    )

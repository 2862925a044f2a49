"""Records of ``beacon.console.sessions``: what ends a console session or locks an account.

Written by the console and ``python -m beacon console-user``; read by every console replica
(see ``beacon.console.sessions`` for how they decide).
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from beacon.core.records import TopicRecord

SessionRecordKind = Literal["session_ended", "user_sessions_ended", "user_locked", "user_unlocked"]
_KEY_PREFIX = {
    "session_ended": "session",
    "user_sessions_ended": "user-sessions",
    "user_locked": "user-lock",
    "user_unlocked": "user-lock",
}


class SessionRecord(TopicRecord):
    """One record of ``beacon.console.sessions`` (JSON value; the key is ``key``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    kind: SessionRecordKind
    subject: str = Field(min_length=1, max_length=128, description="The session id, or the user name.")
    at: float = Field(description="Unix time it was written.")
    reason: str = Field(default="", max_length=64, description="logout, password_changed, removed, lockout, admin")

    @property
    def key(self) -> bytes:
        return f"{_KEY_PREFIX[self.kind]}:{self.subject}".encode()

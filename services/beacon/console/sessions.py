"""Server-side session revocation and account locks, shared by every console replica.

The signed cookie says who logged in, with a random session id and the time it was issued.
What ends sessions lives on the compacted topic ``beacon.console.sessions``, which every
replica reads from the beginning (console/feed.py) and writes to:

- ``session:<id>``: that session ended (logout);
- ``user-sessions:<name>``: every session of the user issued before ``at`` ended (password
  change, removal);
- ``user-lock:<name>``: the account is locked (too many failed logins) or unlocked (an admin).

A session is valid while none of these ends it. Pure: the shell feeds records in and asks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from beacon.core.sessions import SessionRecord


@dataclass
class SessionRegistry:
    ended_sessions: set[str] = field(default_factory=set)
    user_sessions_ended_at: dict[str, float] = field(default_factory=dict)
    locked_users: set[str] = field(default_factory=set)
    unlocked_at: dict[str, float] = field(default_factory=dict)

    def apply(self, record: SessionRecord) -> None:
        if record.kind == "session_ended":
            self.ended_sessions.add(record.subject)
        elif record.kind == "user_sessions_ended":
            previous = self.user_sessions_ended_at.get(record.subject, 0.0)
            self.user_sessions_ended_at[record.subject] = max(previous, record.at)
        elif record.kind == "user_locked":
            self.locked_users.add(record.subject)
        else:
            self.locked_users.discard(record.subject)
            self.unlocked_at[record.subject] = max(self.unlocked_at.get(record.subject, 0.0), record.at)

    def session_valid(self, user: str, session_id: str, issued_at: float) -> bool:
        if session_id in self.ended_sessions:
            return False
        return issued_at > self.user_sessions_ended_at.get(user, float("-inf"))

    def locked(self, user: str) -> bool:
        return user in self.locked_users

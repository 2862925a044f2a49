"""Records of ``beacon.console.users``: the console's staff accounts.

Written by ``python -m beacon console-user``; read from the beginning by every console
replica (console/users.py folds them), so a new user, a new role or a removal reaches
every replica within a second. Compacted and keyed by the user name: the latest record
of each user is all that Kafka keeps.

Data minimisation: a user is a staff id (not a full name), a scrypt hash, organisation
slugs and a role. No e-mail address, no name.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from beacon.core.events import OrgRef
from beacon.core.records import TopicRecord

RoleName = Literal["viewer", "responder", "coordinator", "admin"]
USER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$"


class ConsoleUserRecord(TopicRecord):
    """One record of ``beacon.console.users`` (JSON value; the key is the user name)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    kind: Literal["user_set", "user_removed"]
    name: str = Field(pattern=USER_NAME_PATTERN, description="Staff id (not a full name).")
    at: float = Field(description="Unix time it was written.")
    password_hash: str | None = Field(
        default=None,
        pattern=r"^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$",
        description="scrypt$N$r$p$salt$digest (base64); user_set only.",
    )
    organisations: tuple[OrgRef, ...] = Field(
        default=(), max_length=32, description="Organisation slugs the user works for; user_set needs at least one."
    )
    role: RoleName | None = Field(default=None, description="user_set only.")

    @model_validator(mode="after")
    def _complete(self) -> ConsoleUserRecord:
        if self.kind == "user_set" and not (self.password_hash and self.organisations and self.role):
            raise ValueError("user_set needs password_hash, at least one organisation and a role")
        if self.kind == "user_removed" and (self.password_hash or self.organisations or self.role):
            raise ValueError("user_removed carries the name only")
        return self

    @property
    def key(self) -> bytes:
        return self.name.encode()

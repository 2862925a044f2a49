"""Base of the JSON records Beacon writes to its own topics (alerts, acks, audit, ledger, dead letters)."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict


class TopicRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_json(cls, payload: bytes | str) -> Self:
        return cls.model_validate_json(payload)

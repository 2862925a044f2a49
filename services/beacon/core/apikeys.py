"""Records of ``beacon.apikeys``: one API key of the ingest API, as its hash.

Written by ``python -m beacon apikeys``; read by every ingest replica (see
``beacon.ingest.apikeys`` for the decisions and ``beacon.ingest.apikey_topic`` for the shell).
"""

from __future__ import annotations

import re

from pydantic import ConfigDict, Field

from beacon.core.records import TopicRecord

SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")
KEY_ID = re.compile(r"^[A-Za-z0-9]{12}$")


class ApiKey(TopicRecord):
    """One API key of the ingest API (JSON value; the Kafka key is ``key_id``). Never the key
    itself: only its SHA-256. A record with ``revoked_at`` revokes the key for good."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    key_id: str = Field(pattern=KEY_ID.pattern, description="The public part of the key (`bk_<key_id>_...`).")
    source: str = Field(
        pattern=SOURCE_NAME.pattern,
        description="Source name, e.g. met-police: the key's events must come from urn:beacon:source:<source>.",
    )
    scope: str = Field(min_length=1, max_length=64, description="Which event types the key may send (police, council).")
    token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 (hex) of the whole key.")
    created_at: str = Field(description="When the key was created (RFC 3339, UTC).")
    revoked_at: str | None = Field(
        default=None, description="When the key was revoked (RFC 3339, UTC); absent while active."
    )

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def key(self) -> bytes:
        return self.key_id.encode()

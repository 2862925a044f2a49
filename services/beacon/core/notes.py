"""Records of ``beacon.console.notes``: a note a staff member wrote on an alert.

A note is free text about a child, so it is personal data: the text is never on the topic in
clear. The console encrypts it (Fernet: AES-128-CBC with HMAC-SHA256) with
``BEACON_CONSOLE_NOTES_KEY`` before producing the record, and decrypts it only to show it to
a logged-in user; logs, metrics and the timeline say only that a note was added, by whom.
"""

from __future__ import annotations

from pydantic import AwareDatetime, ConfigDict, Field

from beacon.core.records import TopicRecord


class NoteRecord(TopicRecord):
    """One record of ``beacon.console.notes`` (JSON value; the key is the alert id)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    note_id: str = Field(min_length=1, max_length=64, description="Unique id of the note (dedup key).")
    alert_id: str = Field(min_length=1, max_length=64)
    child_ref: str = Field(min_length=1, max_length=64)
    by: str = Field(min_length=1, max_length=64, description="The console user who wrote it.")
    at: AwareDatetime
    key_id: str = Field(
        min_length=16, max_length=16, description="Names the notes key used (first 16 hex of its SHA-256)."
    )
    ciphertext: str = Field(min_length=1, max_length=12_000, description="The note's text, encrypted (a Fernet token).")

    @property
    def key(self) -> bytes:
        return self.alert_id.encode()

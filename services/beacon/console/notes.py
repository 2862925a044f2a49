"""Notes on an alert, encrypted with the console's notes key (see core/notes.py for why).

``BEACON_CONSOLE_NOTES_KEY`` (a Fernet key: ``python -m beacon console-notes-key`` or
``Fernet.generate_key()``) must be the same on every console replica. Without it notes are
off: the Alert page says so and the form is not shown; nothing is stored in clear instead.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime

from cryptography.fernet import Fernet, InvalidToken

from beacon.core.notes import NoteRecord

MAX_NOTE_CHARS = 2000


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ShownNote:
    by: str
    at: datetime
    text: str | None  # None: written with another key, or damaged


class NotesCipher:
    def __init__(self, key: str):
        self._fernet = Fernet(key.encode())  # raises ValueError for a key that is not a Fernet key
        self.key_id = key_id(key)

    def seal(self, *, alert_id: str, child_ref: str, by: str, at: datetime, text: str) -> NoteRecord:
        return NoteRecord(
            note_id=uuid.uuid4().hex,
            alert_id=alert_id,
            child_ref=child_ref,
            by=by,
            at=at,
            key_id=self.key_id,
            ciphertext=self._fernet.encrypt(text.encode()).decode(),
        )

    def open(self, record: NoteRecord) -> ShownNote:
        try:
            text: str | None = self._fernet.decrypt(record.ciphertext.encode()).decode()
        except (InvalidToken, UnicodeDecodeError):
            text = None
        return ShownNote(record.by, record.at, text)

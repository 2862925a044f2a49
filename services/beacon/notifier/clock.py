"""The notifier's clock: real UTC time plus an offset.

In production the offset is always zero. With ``BEACON_NOTIFIER_TEST_CLOCK=true``
the test-only endpoint ``POST /test/clock/advance`` moves it forward, so a test
can skip a 15-minute escalation delay without sleeping. The offset lives in a
file under the data directory, so a restarted worker keeps the test's time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path


class Clock:
    def __init__(self, offset_file: Path | None = None):
        self.offset_file = offset_file
        self._offset = timedelta(0)
        if offset_file is not None and offset_file.exists():
            self._offset = timedelta(seconds=float(offset_file.read_text() or 0))

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    @property
    def offset(self) -> timedelta:
        return self._offset

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("the clock only moves forward")
        self._offset += delta
        if self.offset_file is not None:
            self.offset_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.offset_file.with_suffix(".tmp")
            tmp.write_text(str(self._offset.total_seconds()))
            tmp.replace(self.offset_file)
        return self.now()

"""Live before backlog in the notifier.

The correlator writes the alerts it raised while replaying a backlog (a history import, or
catching up after downtime) to ``beacon.alerts.backlog``, apart from the live ones on
``beacon.alerts``. The notifier routes a backlog alert only while this replica has no live
alert unread and at most ``INPUTS_AHEAD`` inputs unprocessed in each of its inputs
partitions: a live alert then finds at most that many of the backlog's inputs ahead of it,
however large the import. (Each replica sees only its own partitions; with several, a
partition's inputs come from every replica's router, so the bound is per router.)

A backlog alert is held at least two minutes before its first page anyway
(``escalation.PAST_ALERT_HOLD_S``, counted from when the notifier applies it), so routing
it later delays no page that should go out.
"""

from __future__ import annotations

import asyncio
from typing import Any

from faust.types import TP

from beacon.runtime.offsets import unprocessed

# Inputs of a backlog a live input may find ahead of it in one inputs partition. The agent
# takes the partitions' records in turn, so a live input waits for at most about this many
# per partition (12 in production: some 130 inputs, about 0.3 s at the measured 430/s).
INPUTS_AHEAD = 10
POLL_S = 0.02


class LiveFirst:
    """Tracks what the live agents processed and holds the backlog router back meanwhile."""

    def __init__(self, app: Any, allowed: dict[str, int]):
        self.app = app
        self.allowed = allowed  # topic -> unprocessed records tolerated before the backlog waits
        self.processed: dict[TP, int] = {}

    def done(self, message: Any) -> None:
        """A live agent finished the record ``message``."""
        self.processed[message.tp] = message.offset

    def live_waiting(self) -> bool:
        consumer = self.app.consumer
        committed = consumer._committed_offset  # Faust's Consumer keeps them; ConsumerT omits them
        for tp in consumer.assignment():
            allowed = self.allowed.get(tp.topic)
            if allowed is None:
                continue
            if unprocessed(consumer.highwater(tp), self.processed.get(tp), committed.get(tp)) > allowed:
                return True
        return False

    async def wait(self) -> None:
        """Return once no live work waits beyond what is allowed."""
        while self.live_waiting():
            await asyncio.sleep(POLL_S)

"""Settings of the correlator worker (``BEACON_CORRELATOR_*``), on top of the shared Settings."""

from __future__ import annotations

from pydantic import Field

from beacon.runtime.settings import Settings


class CorrelatorSettings(Settings):
    correlator_batch_size: int = Field(
        default=2000,
        ge=1,
        le=100_000,
        description="Events per batch at most (records per fetch; one state load and save per child per batch).",
    )
    correlator_tick_interval_s: float = Field(default=5.0, gt=0, le=3600, description="Wall-clock timer period.")
    correlator_clock_offset_s: float = Field(
        default=0.0, description="Test only: shifts the timer's wall clock (e.g. 90000 = 25 hours ahead)."
    )

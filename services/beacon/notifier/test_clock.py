"""Tests only: the notifier's clock over HTTP, mounted only with BEACON_NOTIFIER_TEST_CLOCK
(a production worker does not have these routes at all)."""

from __future__ import annotations

from typing import Any

import faust

from beacon.notifier.http_input import Refusal, parse_clock_advance
from beacon.notifier.runtime import app, clock, index


def mount() -> None:
    @app.page("/test/clock")
    class TestClock(faust.web.View):
        async def get(self, request: Any) -> Any:
            return self.json({"now": clock.now().isoformat(), "offset_s": clock.offset.total_seconds()})

    @app.page("/test/clock/advance")
    class TestClockAdvance(faust.web.View):
        """Move the notifier's clock forward: ``{"seconds": N}``."""

        async def post(self, request: Any) -> Any:
            step = parse_clock_advance(await request.read())
            if isinstance(step, Refusal):
                return self.json(step.body(), status=step.status)
            now = clock.advance(step)
            index.tick_sent.clear()
            return self.json({"now": now.isoformat(), "offset_s": clock.offset.total_seconds()})

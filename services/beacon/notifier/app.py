"""The notifier worker (``python -m beacon notifier`` imports ``app`` from here).

One module per job: ``runtime`` (wiring: settings, app, topics, table, channels),
``agents`` (agents, timer, dispatcher, the directory feed), ``delivery`` (sending and its
results), ``web`` (webhooks, link pages, API) and ``test_clock`` (mounted only in test
mode). The decisions are pure modules: ``escalation``, ``dispatch``, ``links``,
``templates``, ``open_index``, ``directory``."""

from __future__ import annotations

from beacon.notifier import agents, delivery, web
from beacon.notifier.runtime import app, settings

if settings.notifier_test_clock:
    from beacon.notifier import test_clock

    test_clock.mount()

__all__ = ["agents", "app", "delivery", "web"]

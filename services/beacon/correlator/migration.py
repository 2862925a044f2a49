"""States written by older correlators, read by this one: each older format is converted
on read, so an upgrade never pages twice. The current format is ``state.ChildState``."""

from __future__ import annotations

import msgspec

from beacon.core.domain import SEVERITIES
from beacon.core.policy import Policy
from beacon.correlator.rules import (
    CSE_MISSING,
    DURATION,
    REPEAT,
    RHI_OVERDUE,
    TRIAGE,
    UNALLOCATED,
    alert_id,
    alert_key,
    tables,
)
from beacon.correlator.state import ChildState

# Before MessagePack, states were JSON with the same keys (and alerts remembered by id).
_LEGACY_DECODER = msgspec.json.Decoder(ChildState)


def is_legacy(payload: bytes | None) -> bool:
    """JSON: an object starts with "{", which no MessagePack state does (a map, 0x80-0x8f)."""
    return bool(payload) and payload[:1] == b"{"  # type: ignore[index]


def load_state(child_ref: str, payload: bytes | None, policy: Policy) -> ChildState:
    """A stored state; one written before states became MessagePack (JSON, alerts
    remembered by alert id) is converted, so an upgrade never pages twice."""
    if not is_legacy(payload):
        return ChildState.from_bytes(payload)
    state = _LEGACY_DECODER.decode(payload)  # type: ignore[arg-type]
    policy_tables = tables(policy)
    steps = (
        [(TRIAGE, level.value) for level in SEVERITIES]
        + [
            (CSE_MISSING, "flag"),
            (UNALLOCATED, "unallocated"),
            (REPEAT, policy_tables.repeat_step),
            (RHI_OVERDUE, policy_tables.rhi_step),
        ]
        + [(DURATION, hours) for _, _, hours in policy_tables.ladder]
    )
    for ref, episode in state.episodes.items():
        keys = {alert_id(child_ref, ref, rule, step): alert_key(rule, step) for rule, step in steps}
        episode.alert_status = {keys.get(old, old): status for old, status in episode.alert_status.items()}
    return state

"""References and ids at the door: each must match the deployment's pattern, so that a name
or an address cannot pass as one; optionally the source's references are replaced by a keyed
pseudonym (HMAC-SHA256) so that Beacon never holds them at all.

Pure: the doors (HTTP ingest, the validator, the import tool) call ``reference_errors`` and
``pseudonymise`` through ``decisions.contract_errors``.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from beacon.core.events import CloudEvent, FieldError

# Upper-case letters, digits and single dashes; 3-64 characters; at least one digit; never
# four letters in a row, so no name or street of four or more letters fits
# ("CH-7F3A9C21", "MET-2026-000123" do; "JESSICA-MARLOWE-14" does not).
DEFAULT_REFERENCE_PATTERN = r"^(?=.{3,64}$)(?=.*[0-9])(?!.*[A-Z]{4})[A-Z0-9]+(?:-[A-Z0-9]+)*$"
# An event id: a UUID, or the reference rule in either case ("met-evt-000001").
DEFAULT_ID_PATTERN = (
    r"^(?:[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
    r"|(?=.{3,64}$)(?=.*[0-9])(?!.*[A-Za-z]{4})[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*)$"
)
MIN_KEY_BYTES = 32
PSEUDONYM_PREFIX = {"subject": "PC", "episode": "PE"}  # child, episode


def reference_errors(event: CloudEvent, reference: re.Pattern[str], event_id: re.Pattern[str]) -> list[FieldError]:
    """Every reference or id of the event that does not match its pattern."""
    errors = []
    checks = [("id", event.id, event_id), ("subject", event.subject, reference)]
    episode_ref = getattr(event.data, "episode_ref", None)
    if episode_ref is not None:
        checks.append(("data/episode_ref", episode_ref, reference))
    for field_name, value, pattern in checks:
        if not pattern.fullmatch(value):
            errors.append(
                FieldError(
                    field=field_name,
                    reason="does not match this deployment's reference pattern (by default upper-case "
                    "letters, digits and dashes, 3-64 characters, at least one digit, never four letters "
                    "in a row): send the pseudonymous reference, never a name or an address",
                )
            )
    return errors


def pseudonym(key: bytes, kind: str, reference: str) -> str:
    """Beacon's stable reference for one source reference: the same input always gives the
    same output under one key, so correlation still works; without the key it cannot be
    reversed or recomputed. Decimal digits in groups of four, so it matches the default
    pattern itself (e.g. ``PC-0123-4567-8901-2345-6789``)."""
    digest = hmac.new(key, f"{kind}\x00{reference}".encode(), hashlib.sha256).digest()
    digits = f"{int.from_bytes(digest[:10], 'big'):024d}"[-20:]  # 66 bits: collisions need ~10^10 refs
    return "-".join([PSEUDONYM_PREFIX[kind], *(digits[i : i + 4] for i in range(0, 20, 4))])


def pseudonymise(event: CloudEvent, key: bytes) -> CloudEvent:
    """The event with its child and episode references replaced by their pseudonyms."""
    update: dict[str, object] = {"subject": pseudonym(key, "subject", event.subject)}
    episode_ref = getattr(event.data, "episode_ref", None)
    if episode_ref is not None:
        update["data"] = event.data.model_copy(update={"episode_ref": pseudonym(key, "episode", episode_ref)})
    return event.model_copy(update=update)

"""The event contract: every event Beacon accepts, as CloudEvents 1.0 structured JSON.

These pydantic models are the single source of truth. The JSON Schemas in
``schemas/events/`` are generated from them (``python -m beacon schemas export``)
and a test fails if the two drift apart.

Data minimisation: no event carries a child's name, address or date of birth.
``subject`` is a pseudonymous child reference shared by police and council
systems; free text is limited to short reason fields that are never sent in a
notification or written to a log.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    ValidationError,
    create_model,
    model_validator,
)

SPEC_VERSION = "1.0"
SCHEMA_BASE_URI = "https://beacon.example/schemas/events/"

ChildRef = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{2,63}$",
        description="Pseudonymous child reference shared by police and council systems. "
        "Never a name, date of birth or case-system identifier that reveals identity. It must also match "
        "the deployment's reference pattern (by default upper-case letters, digits and dashes, at least "
        "one digit, never four letters in a row).",
        examples=["CH-7F3A9C21"],
    ),
]
EpisodeRef = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{2,63}$",
        description="Identifier of one missing episode (e.g. the police incident number). "
        "All events about the same episode carry the same reference. It must also match the "
        "deployment's reference pattern (as `subject`).",
        examples=["MET-2026-000123"],
    ),
]
OrgRef = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9-]{1,63}$",
        description="Short slug of a council or police force.",
        examples=["norfolk-cc"],
    ),
]
StaffRef = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{1,63}$",
        description="Pseudonymous reference of a member of staff.",
    ),
]
ReasonText = Annotated[str, Field(min_length=1, max_length=500)]

# Exactly as strict as the published JSON Schemas: pydantic's lax mode would take "14" or
# true for an integer, "yes" or 1 for a boolean and a number of seconds for a date-time.


def _integral_number(value: Any) -> Any:
    # JSON Schema's "integer" is any number with a zero fraction, so 14.0 is one too.
    return int(value) if isinstance(value, float) and value.is_integer() else value


StrictInt = Annotated[int, Strict(), BeforeValidator(_integral_number)]
StrictBool = Annotated[bool, Strict()]

# RFC 3339 date-time (JSON Schema "date-time"), offset required; pydantic alone would also
# take "1796000000", "2026-11-20 21:15:00Z" or "2026-11-20_21:15:00Z".
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339_text(value: Any) -> Any:
    if isinstance(value, datetime):  # built in Python, not read from JSON
        return value
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 date-time string, e.g. 2026-11-20T21:15:00Z")  # noqa: TRY004 - pydantic reports ValueError as a field error; a TypeError would escape
    if not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 date-time with a timezone offset, e.g. 2026-11-20T21:15:00Z")
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text)]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Category(str, Enum):
    """How the child was reported (police and DfE definitions)."""

    missing = "missing"
    absent = "absent"
    away_without_authorisation = "away_without_authorisation"


class RiskGrade(str, Enum):
    """Police risk grade on the continuum; re-grades are normal events."""

    no_apparent_risk = "no_apparent_risk"
    low = "low"
    medium = "medium"
    high = "high"


class CseLevel(str, Enum):
    """CSE screening level. Local tools map onto it: Kent & Medway 1/2/3 and
    Southwark green/amber/red are low/medium/high."""

    none = "none"
    low = "low"
    medium = "medium"
    high = "high"


# ---------------------------------------------------------------- event data


class EpisodeReported(_Data):
    """A child reported missing, absent, or away from placement without authorisation."""

    episode_ref: EpisodeRef
    category: Category
    started_at: Timestamp = Field(description="When the child was last seen / went missing.")
    risk: RiskGrade
    age_years: StrictInt = Field(ge=0, le=25, description="Age in whole years (care leavers up to 25).")
    looked_after: StrictBool = Field(description="Child in care (looked after by a council).")
    reporting_org: OrgRef
    placing_council: OrgRef | None = None


class RiskRegraded(_Data):
    """The police re-graded the risk of an open episode (including absent to missing)."""

    episode_ref: EpisodeRef
    risk: RiskGrade
    category: Category | None = Field(default=None, description="Set when the category changes too.")
    regraded_at: Timestamp


class SightingReported(_Data):
    """A sighting or new information about a missing child."""

    episode_ref: EpisodeRef
    kind: Literal["sighting", "information"]
    observed_at: Timestamp


class ChildFound(_Data):
    """The child was found or returned; the episode ends."""

    episode_ref: EpisodeRef
    outcome: Literal["found", "returned"]
    ended_at: Timestamp


class SafeAndWellChecked(_Data):
    """Police safe-and-well check done after the return."""

    episode_ref: EpisodeRef
    checked_at: Timestamp


class ReturnInterviewRecorded(_Data):
    """Return home interview offered, completed, declined, or a decision not to hold one."""

    episode_ref: EpisodeRef
    status: Literal["offered", "completed", "declined", "not_held"]
    recorded_at: Timestamp
    reason: ReasonText | None = Field(
        default=None, description="Required when declined or not held (statutory guidance)."
    )

    @model_validator(mode="after")
    def _reason_required(self) -> ReturnInterviewRecorded:
        if self.status in ("declined", "not_held") and not self.reason:
            raise ValueError(f"reason is required when status is {self.status!r}")
        return self


class StrategyDiscussionRecorded(_Data):
    """A strategy discussion was requested or held."""

    status: Literal["requested", "held"]
    recorded_at: Timestamp
    episode_ref: EpisodeRef | None = None


class CseScreened(_Data):
    """Result of a CSE screening tool. A disclosure means high risk automatically."""

    level: CseLevel
    screened_at: Timestamp
    disclosure: StrictBool = False

    @model_validator(mode="after")
    def _disclosure_is_high(self) -> CseScreened:
        if self.disclosure and self.level is not CseLevel.high:
            raise ValueError("a CSE disclosure means high risk: level must be 'high'")
        return self


class PlacementChanged(_Data):
    """Placement change, admission or discharge, with placing and host council."""

    change: Literal["placement_change", "admission", "discharge"]
    effective_at: Timestamp
    placing_council: OrgRef
    host_council: OrgRef
    looked_after: StrictBool = True


class AllocationChanged(_Data):
    """Case allocated to a named worker, or left unallocated."""

    status: Literal["allocated", "unallocated"]
    effective_at: Timestamp
    worker_ref: StaffRef | None = None
    team: OrgRef | None = None

    @model_validator(mode="after")
    def _worker_matches_status(self) -> AllocationChanged:
        if self.status == "allocated" and not self.worker_ref:
            raise ValueError("worker_ref is required when status is 'allocated'")
        if self.status == "unallocated" and self.worker_ref:
            raise ValueError("worker_ref must be absent when status is 'unallocated'")
        return self


class EpisodeCorrected(_Data):
    """Dates of an episode amended after the fact."""

    episode_ref: EpisodeRef
    corrected_at: Timestamp
    started_at: Timestamp | None = None
    ended_at: Timestamp | None = None

    @model_validator(mode="after")
    def _something_corrected(self) -> EpisodeCorrected:
        if self.started_at is None and self.ended_at is None:
            raise ValueError("a correction must amend started_at, ended_at or both")
        if self.started_at and self.ended_at and self.ended_at < self.started_at:
            raise ValueError("ended_at must not be before started_at")
        return self


class ChildRescueAlertActivated(_Data):
    """Child Rescue Alert activated: suspected abduction, imminent danger."""

    episode_ref: EpisodeRef
    activated_at: Timestamp


# Event type -> data model. The ``.v1`` suffix versions the contract: a breaking
# change adds ``.v2`` beside it and both are accepted while producers migrate.
EVENT_TYPES: dict[str, type[_Data]] = {
    "beacon.episode.reported.v1": EpisodeReported,
    "beacon.episode.risk_regraded.v1": RiskRegraded,
    "beacon.episode.sighting.v1": SightingReported,
    "beacon.episode.found.v1": ChildFound,
    "beacon.episode.safe_and_well_checked.v1": SafeAndWellChecked,
    "beacon.return_interview.recorded.v1": ReturnInterviewRecorded,
    "beacon.strategy_discussion.recorded.v1": StrategyDiscussionRecorded,
    "beacon.cse.screened.v1": CseScreened,
    "beacon.placement.changed.v1": PlacementChanged,
    "beacon.allocation.changed.v1": AllocationChanged,
    "beacon.episode.corrected.v1": EpisodeCorrected,
    "beacon.child_rescue_alert.activated.v1": ChildRescueAlertActivated,
}


def source_org(source: str) -> str:
    """The organisation that sent an event: the last part of its authenticated source
    (``urn:beacon:source:<org>``, which ingest binds to the sender's API key)."""
    return source.rsplit(":", 1)[-1]


class CloudEvent(BaseModel):
    """CloudEvents 1.0 structured-mode envelope common to every event type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"]
    id: str = Field(
        min_length=1,
        max_length=255,
        description="Unique per source; resends keep the id. It must also match the deployment's id "
        "pattern (by default a UUID, or the reference rule in either case, e.g. met-evt-000001).",
    )
    source: str = Field(
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$",
        description="URI of the producing system, e.g. urn:beacon:source:met-police.",
    )
    type: str
    time: Timestamp = Field(description="When the fact happened or was recorded at the source.")
    subject: ChildRef
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str | None = None
    data: Any

    @property
    def child_ref(self) -> str:
        return self.subject


def envelope_model(event_type: str) -> type[CloudEvent]:
    """The envelope specialised to one event type (``type`` const, typed ``data``)."""
    data_model = EVENT_TYPES[event_type]
    return create_model(
        f"{data_model.__name__}Event",
        __base__=CloudEvent,
        __doc__=data_model.__doc__,
        type=(Literal[event_type], ...),  # type: ignore[valid-type,arg-type]
        data=(data_model, ...),
    )


_ENVELOPES: dict[str, type[CloudEvent]] = {t: envelope_model(t) for t in EVENT_TYPES}


class FieldError(BaseModel):
    """One reason an event was refused: which field, and why."""

    field: str
    reason: str


class EventValidationError(ValueError):
    """An event failed the contract; ``errors`` names every failing field."""

    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.reason}" for e in errors))


def _field_path(loc: tuple[Any, ...]) -> str:
    return "/".join(str(part) for part in loc) or "/"


def parse_event(raw: Any) -> CloudEvent:
    """Validate a decoded JSON value against the contract and return the typed event.

    Raises EventValidationError listing every failing field; never anything else
    for bad input.
    """
    if not isinstance(raw, dict):
        raise EventValidationError([FieldError(field="/", reason="an event must be a JSON object")])
    event_type = raw.get("type")
    model = _ENVELOPES.get(event_type) if isinstance(event_type, str) else None
    if model is None:
        known = ", ".join(sorted(EVENT_TYPES))
        raise EventValidationError(
            [FieldError(field="type", reason=f"unknown event type {event_type!r}; known types: {known}")]
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise EventValidationError(
            [FieldError(field=_field_path(err["loc"]), reason=err["msg"]) for err in exc.errors()]
        ) from None


# Every envelope, told apart by ``type``: parses bytes in one pass in pydantic-core (the
# correlator decodes every event it reads; this halves the cost of json.loads + validate).
_ANY_ENVELOPE: TypeAdapter[CloudEvent] = TypeAdapter(
    # Union[...] of a runtime tuple: the | operator cannot build it.
    Annotated[Union[tuple(_ENVELOPES.values())], Field(discriminator="type")]  # type: ignore[misc,arg-type]  # noqa: UP007
)


def event_from_json(payload: bytes | str) -> CloudEvent:
    """Parse a serialised event (as stored on the events topic)."""
    import pydantic_core

    try:
        return _ANY_ENVELOPE.validate_json(payload)
    except ValidationError:
        pass  # the slow path below names the failing fields as parse_event does
    try:
        raw = pydantic_core.from_json(payload)  # depth-limited: no RecursionError on deep JSON
    except (ValueError, UnicodeDecodeError) as exc:
        raise EventValidationError([FieldError(field="/", reason=f"not valid JSON: {exc}")]) from None
    return parse_event(raw)


def event_to_json(event: CloudEvent) -> bytes:
    return event.model_dump_json(exclude_none=True).encode()


def build_event(
    event_type: str,
    child_ref: str,
    data: dict[str, Any],
    *,
    time: str,
    source: str = "urn:beacon:source:demo",
    event_id: str | None = None,
) -> dict[str, Any]:
    """A CloudEvent as a producer would send it (plain JSON-ready dict)."""
    import uuid

    return {
        "specversion": SPEC_VERSION,
        "id": event_id or str(uuid.uuid4()),
        "source": source,
        "type": event_type,
        "time": time,
        "subject": child_ref,
        "datacontenttype": "application/json",
        "data": data,
    }

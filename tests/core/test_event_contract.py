"""The event contract: one source of truth (models), schema files that cannot drift,
an example per type that validates, and errors that name the field and the reason."""

from __future__ import annotations

import copy
import json

import jsonschema
import jsonschema_rs
import pytest

from beacon.core.events import EVENT_TYPES, EventValidationError, event_from_json, parse_event
from beacon.core.schemas import SCHEMA_DIR, all_schemas, example_event
from ingest.forbidden import SCHEMA_PROBES

DOMAIN_EVENT_KINDS = 12  # shared/domain.md, "Events the service must accept"


def test_every_domain_event_kind_has_a_type():
    assert len(EVENT_TYPES) == DOMAIN_EVENT_KINDS
    assert all(t.startswith("beacon.") and t.endswith(".v1") for t in EVENT_TYPES)


def test_committed_schema_files_match_the_models():
    generated = all_schemas()
    committed = {p.name: p.read_text() for p in SCHEMA_DIR.glob("*.json")}
    assert sorted(committed) == sorted(generated), "run `make schemas` and commit schemas/events/"
    for name, text in generated.items():
        assert committed[name] == text, f"{name} drifted from the model; run `make schemas`"


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_each_schema_example_validates_against_the_schema_file_and_the_model(event_type):
    schema = json.loads((SCHEMA_DIR / f"{event_type}.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert len(schema["examples"]) == 1
    example = schema["examples"][0]
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(example)
    event = parse_event(example)
    assert event.type == event_type and event.subject == example["subject"]


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_schema_and_model_agree_on_a_missing_required_data_field(event_type):
    schema = json.loads((SCHEMA_DIR / f"{event_type}.json").read_text())
    data_def = next(d for d in schema["$defs"].values() if "required" in d)
    required = data_def["required"][0]
    bad = copy.deepcopy(example_event(event_type))
    del bad["data"][required]
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(bad)), "schema accepted it"
    with pytest.raises(EventValidationError) as err:
        parse_event(bad)
    assert [e.field for e in err.value.errors] == [f"data/{required}"]
    assert "required" in err.value.errors[0].reason.lower()


def test_unknown_type_names_the_field_and_lists_the_known_types():
    bad = {**example_event("beacon.episode.found.v1"), "type": "beacon.episode.vanished.v1"}
    with pytest.raises(EventValidationError) as err:
        parse_event(bad)
    (error,) = err.value.errors
    assert error.field == "type" and "beacon.episode.found.v1" in error.reason


def test_every_failing_field_is_reported_not_just_the_first():
    bad = copy.deepcopy(example_event("beacon.episode.reported.v1"))
    bad["time"] = "yesterday"
    bad["subject"] = "x"
    bad["data"]["risk"] = "extreme"
    bad["data"]["age_years"] = 40
    with pytest.raises(EventValidationError) as err:
        parse_event(bad)
    assert {e.field for e in err.value.errors} == {"time", "subject", "data/risk", "data/age_years"}


def test_naive_timestamps_are_refused():
    bad = {**example_event("beacon.episode.found.v1")}
    bad["time"] = "2026-11-21T09:30:00"
    with pytest.raises(EventValidationError) as err:
        parse_event(bad)
    assert err.value.errors[0].field == "time" and "timezone" in err.value.errors[0].reason


def test_cross_field_rules_are_enforced():
    rhi = copy.deepcopy(example_event("beacon.return_interview.recorded.v1"))
    del rhi["data"]["reason"]
    with pytest.raises(EventValidationError, match="reason is required"):
        parse_event(rhi)
    cse = copy.deepcopy(example_event("beacon.cse.screened.v1"))
    cse["data"]["disclosure"] = True
    with pytest.raises(EventValidationError, match="disclosure means high risk"):
        parse_event(cse)


def test_personal_data_fields_are_not_accepted():
    bad = copy.deepcopy(example_event("beacon.episode.reported.v1"))
    bad["data"]["name"] = "A Child"
    with pytest.raises(EventValidationError) as err:
        parse_event(bad)
    assert err.value.errors[0].field == "data/name"


@pytest.mark.parametrize(("field", "value"), SCHEMA_PROBES, ids=[f"{f}={v!r}" for f, v in SCHEMA_PROBES])
def test_the_model_refuses_exactly_what_the_schema_refuses(field, value):
    """Lax parsing took "14" and true for an integer, "yes" and 1 for a boolean and a number
    of seconds for a date-time; the schema forbids each, so the model must too."""
    event_type = "beacon.episode.reported.v1"
    schema = json.loads((SCHEMA_DIR / f"{event_type}.json").read_text())
    bad = copy.deepcopy(example_event(event_type))
    *parents, leaf = field.split("/")
    target = bad
    for part in parents:
        target = target[part]
    target[leaf] = value
    assert not jsonschema_rs.validator_for(schema, validate_formats=True).is_valid(bad), "the schema accepted it"
    with pytest.raises(EventValidationError) as err:
        parse_event(bad)
    assert [e.field for e in err.value.errors] == [field]
    with pytest.raises(EventValidationError) as err:
        event_from_json(json.dumps(bad))
    assert [e.field for e in err.value.errors] == [field]


def test_an_integer_with_a_zero_fraction_is_an_integer_as_in_json_schema():
    event = copy.deepcopy(example_event("beacon.episode.reported.v1"))
    event["data"]["age_years"] = 14.0
    assert parse_event(event).data.age_years == 14
    assert event_from_json(json.dumps(event)).data.age_years == 14

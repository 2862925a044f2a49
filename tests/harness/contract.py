"""Check records read off a real topic against the committed (published) JSON Schemas,
as an integrator's consumer would: the files in schemas/, not the Python models."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@cache
def _registry() -> Registry:
    resources = [Resource.from_contents(json.loads(path.read_text())) for path in sorted(SCHEMAS.glob("*/*.json"))]
    return Registry().with_resources((resource.contents["$id"], resource) for resource in resources)


def published_validator(topic: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / "records" / f"{topic}.json").read_text())
    return jsonschema.Draft202012Validator(schema, registry=_registry(), format_checker=jsonschema.FormatChecker())


def schema_errors(topic: str, value: bytes) -> list[str]:
    """Why ``value`` (a record's bytes) does not match the published schema of ``topic``."""
    try:
        decoded: Any = json.loads(value)
    except ValueError as exc:
        return [f"not JSON: {exc}"]
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in published_validator(topic).iter_errors(decoded)
    ]


def assert_match_published_schema(topic: str, records: list[Any]) -> None:
    """Every Kafka record in ``records`` (read from ``topic``) matches its published schema."""
    for record in records:
        errors = schema_errors(topic, record.value)
        assert not errors, f"a record on {topic} does not match schemas/records/{topic}.json: {errors}"

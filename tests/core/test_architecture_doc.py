"""docs/ARCHITECTURE.md stays true: every topic Beacon creates is in its topic map with a
published schema, and every module and test file it points a newcomer to exists."""

from __future__ import annotations

import re
from pathlib import Path

from beacon.core.topics import TOPICS

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "ARCHITECTURE.md").read_text()


def _section(title: str) -> str:
    start = DOC.index(f"## {title}\n")
    end = DOC.find("\n## ", start + 1)
    return DOC[start : end if end != -1 else None]


def test_every_topic_is_in_the_topic_map_with_its_published_schema():
    rows = {
        match.group(1): line
        for line in _section("Topic map").splitlines()
        if (match := re.match(r"^\| `([^`]+)` \|", line))
    }
    for spec in TOPICS:
        assert spec.name in rows, f"{spec.name} is missing from the topic map in docs/ARCHITECTURE.md"
        if spec.published:  # internal topics have a private format, no published schema
            assert f"schemas/records/{spec.name}.json" in rows[spec.name]
        assert ("compact" in rows[spec.name]) == spec.compacted, f"{spec.name}: retention in the map is wrong"


def test_every_file_the_doc_points_to_exists():
    services = REPO / "services" / "beacon"
    modules = set(re.findall(r"`((?:core|runtime|ingest|correlator|notifier|console)/\w+\.py)", DOC))
    assert modules, "the doc names no modules"
    for module in modules:
        assert (services / module).is_file(), f"docs/ARCHITECTURE.md names {module}, which does not exist"
    floors = _section("The two floors: `core/` (the contract) and `runtime/` (how it runs)")
    contract, runtime = floors.split("The **runtime** floor")
    for floor, text in (("core", contract), ("runtime", runtime)):
        for row in re.findall(r"^\| (`\w+\.py`(?:, `\w+\.py`)*) \|", text, re.MULTILINE):
            for module in re.findall(r"`(\w+\.py)`", row):
                assert (services / floor / module).is_file(), (
                    f"docs/ARCHITECTURE.md names {floor}/{module}, which does not exist"
                )
    for path in set(re.findall(r"`(tests/[\w/]+\.py)", DOC)) | set(re.findall(r"\]\(\.\./([^)]+)\)", DOC)):
        assert (REPO / path).exists(), f"docs/ARCHITECTURE.md points to {path}, which does not exist"

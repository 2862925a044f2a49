"""The README's topic table is generated from core/topics.py: every topic Beacon creates is
listed with its kind, cleanup policy and retention, and the table cannot drift from the code."""

from __future__ import annotations

import re

from beacon.core.topics import TOPICS, Retention
from beacon.runtime import topics_doc
from beacon.runtime.settings import Settings
from beacon.runtime.topic_admin import retention_days, topic_configs

README = topics_doc.README.read_text()


def test_the_readme_topic_table_is_the_one_generated_from_the_declarations():
    assert topics_doc.with_table(README, topics_doc.topics_table()) == README, (
        "README.md's topic table drifted from core/topics.py: run `make schemas` and commit README.md"
    )


def test_every_topic_is_a_row_with_its_cleanup_policy():
    block = README[README.index(topics_doc.BEGIN) : README.index(topics_doc.END)]
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([^`]+)` \|.*\|$", block, flags=re.MULTILINE)}
    assert set(rows) == {s.name for s in TOPICS}
    for spec in TOPICS:
        assert f"`{topic_configs(spec, Settings())['cleanup.policy']}`" in rows[spec.name], spec.name


def test_every_kind_of_topic_has_the_retention_the_readme_states():
    settings = Settings()
    by_kind = {spec.retention: spec for spec in TOPICS}
    assert set(by_kind) == set(Retention), "every kind of retention is used by some topic"
    # The system of record is kept; internal inputs are short-lived; state is compacted.
    assert retention_days(by_kind[Retention.RECORD], settings) == settings.event_retention_days >= 75 * 365
    assert retention_days(by_kind[Retention.INPUT], settings) == settings.input_retention_days <= 30
    assert retention_days(by_kind[Retention.DEAD_LETTERS], settings) == settings.dead_letter_retention_days
    assert retention_days(by_kind[Retention.AUDIT], settings) == settings.audit_retention_days
    assert retention_days(by_kind[Retention.COMPACTED], settings) is None
    for spec in TOPICS:
        configs = topic_configs(spec, settings)
        assert ("retention.ms" in configs) == (not spec.compacted), spec.name
        assert configs["min.insync.replicas"] == "1"  # one replica by default; production's 3 need 2
    assert topic_configs(TOPICS[0], Settings(topic_replication_factor=3))["min.insync.replicas"] == "2"

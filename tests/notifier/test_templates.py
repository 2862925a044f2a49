"""Every template renders with hostile inputs and leaks nothing but the case reference."""

from __future__ import annotations

import dataclasses
import re

import pytest
from jinja2 import meta

from beacon.core.alerts import Severity
from beacon.core.policy import load_policy
from beacon.core.wording import reason, reason_words, severity_word
from beacon.notifier.escalation import case_reference
from beacon.notifier.links import TOKEN_CHARS
from beacon.notifier.templates import (
    ALLOWED_FIELDS,
    SMS_SEGMENT_SEPTETS,
    MessageFields,
    _env,
    bundle_sms,
    render,
    render_page,
    sms_septets,
    template_names,
)
from notifier.conftest import make_alert
from notifier.test_first_target import POLICIES, rules_of

HOSTILE_CHILD = "CH-JANE-DOE-2011"
HOSTILE_EPISODE = "Jane Doe, 12 Acacia Avenue, CSE: seen with adult male {{ 7*7 }}"
HOSTILE_REASON = "Jane Doe (14) sexually exploited, lives at 12 Acacia Avenue"


@pytest.mark.parametrize("name", template_names())
def test_templates_only_use_allowed_fields(name):
    source = _env.loader.get_source(_env, name)[0]
    used = meta.find_undeclared_variables(_env.parse(source))
    assert used <= ALLOWED_FIELDS, f"{name} uses {used - ALLOWED_FIELDS}"


@pytest.mark.parametrize("kind", ["page", "resolution"])
@pytest.mark.parametrize("channel", ["sms", "email"])
def test_hostile_alert_fields_never_reach_a_message(kind, channel):
    alert = make_alert(child=HOSTILE_CHILD, episode=HOSTILE_EPISODE, severity=Severity.critical)
    alert = alert.model_copy(update={"reason": HOSTILE_REASON})
    case_ref = case_reference(alert)
    assert case_ref == alert.alert_id  # free text is never used as a case reference
    headline, _ = reason_words(alert.rule, HOSTILE_EPISODE)  # a hostile step is not a step
    fields = MessageFields(
        case_ref=case_ref,
        severity=severity_word(alert.severity),
        reason=reason(alert.rule, HOSTILE_EPISODE),
        reason_headline=headline,
        ask="Please acknowledge.",
        reply_code="123",
        ack_url="https://beacon.example/a/TOKEN",
    )
    rendered = render(kind, channel, fields)
    text = rendered.subject + "\n" + rendered.body
    for leak in ("Jane", "Doe", "Acacia", "CSE", "exploited", "49", HOSTILE_CHILD, "male"):
        assert leak not in text
    assert case_ref in text
    if kind == "page":
        assert "CRITICAL" in text
        assert "123a" in text or "https://beacon.example/a/TOKEN" in text
    # nothing else that looks like a reference sneaks in
    refs = set(re.findall(r"\b[A-Z]{2,}-[A-Z0-9-]+\b", text))
    assert refs <= {case_ref}


def test_a_safe_episode_reference_is_the_case_reference():
    alert = make_alert(episode="MET-2026-000123")
    fields = MessageFields(
        case_ref=case_reference(alert),
        severity="HIGH",
        reason="missing, high risk",
        ask="Please acknowledge.",
        reply_code="123",
        ack_url="https://b/a/x",
    )
    assert (
        render("page", "sms", fields).body
        == "BEACON HIGH case MET-2026-000123: missing, high risk. Reply 123a to ack: https://b/a/x"
    )
    email = render("page", "email", fields).body
    assert "MET-2026-000123" in email and "123a" in email and "123e" in email and "123c" in email


def test_templates_refuse_unknown_fields():
    from jinja2 import UndefinedError

    with pytest.raises(UndefinedError):
        _env.from_string("{{ child_ref }}").render({})


def test_bundling_several_pages_into_one_sms_with_an_ack_all_code_and_how_many_more_wait():
    assert bundle_sms(["one"]) == "one"
    text = bundle_sms(["one", "two", "three"], more=12, ack_all_code="777")
    assert text.startswith("BEACON: 3 pages, most severe first. Reply 777a to ack all.")
    assert text.index("one") < text.index("two") < text.index("three")
    assert text.endswith("\n+12 more: open the console")
    assert bundle_sms(["one"], more=2) == "one\n+2 more: open the console"
    long = bundle_sms(["x" * 1000] * 3, more=4)
    assert len(long) == 1600 and long.endswith("+4 more: open the console")


EVERY_RULE = sorted({(rule, step, sev) for p in POLICIES for rule, step, sev, _ in rules_of(load_policy(p))})
LINK = "https://beacon.example.org/a/" + "x" * TOKEN_CHARS
# One segment holds the longest fixed part and headline (77 septets) plus the link and the
# case reference: base URL and case reference together up to 57 characters (README).
LONGEST_CASE_REF = 57 - len("https://beacon.example.org")


def fields_for(rule: str, step: str, severity: Severity, case_ref: str, ack_url: str = LINK) -> MessageFields:
    return MessageFields(
        case_ref=case_ref,
        severity=severity_word(severity),
        reason=reason(rule, step),
        reason_headline=reason_words(rule, step)[0],
        ask="Please acknowledge and take charge of this case.",
        reply_code="123",
        ack_url=ack_url,
    )


@pytest.mark.parametrize(("rule", "step", "severity"), EVERY_RULE)
@pytest.mark.parametrize("case_ref", ["DEMO-EP-C1", "MET-2026-000123", "A" + "f" * 15, "X" * LONGEST_CASE_REF])
def test_a_page_by_sms_fits_one_segment_with_its_link_and_says_why(rule, step, severity, case_ref):
    fields = fields_for(rule, step, severity, case_ref)
    body = render("page", "sms", fields).body
    assert sms_septets(body) <= SMS_SEGMENT_SEPTETS, body
    assert body.startswith(f"BEACON {severity_word(severity)} case {case_ref}: {reason_words(rule, step)[0]}")
    assert "Reply 123a to ack" in body and body.endswith(LINK)
    whole = render("page", "sms", dataclasses.replace(fields, reason_headline="")).body
    assert body == whole or sms_septets(whole) > SMS_SEGMENT_SEPTETS  # the whole reason whenever it fits


def test_the_reasons_are_the_consoles_words():
    assert reason("rhi_overdue", "72h") == "return home interview overdue (72 h)"
    assert reason("repeat_episodes", "3in90d") == "3rd missing episode in 90 days: strategy discussion needed"
    assert reason("repeat_episodes", "11in42d").startswith("11th missing episode in 42 days")
    assert reason("triage", "high") == "missing, high risk"
    assert reason("duration", "24h") == "still missing after 24 h"
    assert reason("unallocated", "unallocated") == "missing, no allocated worker"
    assert reason("cse_missing", "flag") == "missing with a safeguarding flag: strategy discussion needed"
    assert [severity_word(s) for s in Severity] == ["LOW", "MEDIUM", "HIGH", "CRITICAL"]


@pytest.mark.parametrize("step", [HOSTILE_EPISODE, "72h; Jane Doe", "{{ 7*7 }}h", "3in90dJane"])
@pytest.mark.parametrize("rule", ["triage", "duration", "rhi_overdue", "repeat_episodes", "Jane Doe's rule"])
def test_reasons_come_from_a_closed_vocabulary_whatever_the_rule_and_step(rule, step):
    words = reason(rule, step)
    for leak in ("Jane", "Doe", "Acacia", "CSE", "49", "{{"):
        assert leak not in words


def test_gsm7_length_counts_extension_characters_twice_and_refuses_what_gsm7_cannot_carry():
    assert sms_septets("a[b]") == 6
    assert sms_septets("…" * 71) > SMS_SEGMENT_SEPTETS


def test_a_group_page_has_the_highest_severity_the_leads_case_and_code_and_every_reason():
    cse = fields_for("cse_missing", "flag", Severity.critical, "MET-2026-000123")
    triage = fields_for("triage", "high", Severity.high, "MET-2026-000123")
    unallocated = fields_for("unallocated", "unallocated", Severity.high, "MET-2026-000123")
    body = render_page("page", "sms", [cse, triage, unallocated]).body
    assert body.startswith("BEACON CRITICAL case MET-2026-000123: missing with a safeguarding flag")
    for words in ("missing, high risk", "missing, no allocated worker"):
        assert words in body
    assert body.count("Reply 123a to ack") == 1 and body.endswith(LINK)
    assert render_page("page", "sms", [triage]) == render("page", "sms", triage)


def test_the_link_pages_escape_everything_and_post_back_to_where_they_came_from():
    from beacon.notifier.templates import render_html_page

    hostile = '<script>alert(1)</script>"onload="x'
    page = render_html_page(hostile, hostile, "/a/TOKEN")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert '<form method="post" action="/a/TOKEN">' in page
    assert "<form" not in render_html_page("Acknowledged", "Thank you.")

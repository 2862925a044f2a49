"""Every template renders with hostile inputs and leaks nothing but the case reference."""

from __future__ import annotations

import re

import pytest
from jinja2 import meta

from beacon.core.alerts import Severity
from beacon.notifier.escalation import case_reference
from beacon.notifier.templates import ALLOWED_FIELDS, MessageFields, _env, bundle_sms, render, template_names
from notifier.conftest import make_alert

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
    fields = MessageFields(
        case_ref=case_ref,
        severity=alert.severity.value,
        ask="Please acknowledge.",
        reply_code="123",
        ack_url="https://beacon.example/ack/TOKEN",
    )
    rendered = render(kind, channel, fields)
    text = rendered.subject + "\n" + rendered.body
    for leak in ("Jane", "Doe", "Acacia", "CSE", "exploited", "49", HOSTILE_CHILD, "male"):
        assert leak not in text
    assert case_ref in text
    if kind == "page":
        assert "CRITICAL" in text
        assert "123a" in text or "https://beacon.example/ack/TOKEN" in text
    # nothing else that looks like a reference sneaks in
    refs = set(re.findall(r"\b[A-Z]{2,}-[A-Z0-9-]+\b", text))
    assert refs <= {case_ref}


def test_a_safe_episode_reference_is_the_case_reference():
    alert = make_alert(episode="MET-2026-000123")
    fields = MessageFields(
        case_ref=case_reference(alert),
        severity="high",
        ask="Please acknowledge.",
        reply_code="123",
        ack_url="https://b/ack/x",
    )
    body = render("page", "sms", fields).body
    assert "MET-2026-000123" in body and "123a" in body and "123e" in body and "123c" in body


def test_templates_refuse_unknown_fields():
    from jinja2 import UndefinedError

    with pytest.raises(UndefinedError):
        _env.from_string("{{ child_ref }}").render({})


def test_bundling_several_messages_into_one_sms():
    assert bundle_sms(["one"]) == "one"
    text = bundle_sms(["one", "two", "three"])
    assert text.startswith("BEACON: 3 messages.") and "one" in text and "three" in text
    assert len(bundle_sms(["x" * 1000] * 3)) == 1600

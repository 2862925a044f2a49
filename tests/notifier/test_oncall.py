"""On-call configuration: validation names the key; rotations, overrides and routes."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from beacon.core.alerts import Severity
from beacon.notifier.escalation import resolve_chain
from beacon.notifier.oncall import OnCallConfigError, load_oncall
from notifier.conftest import EXAMPLE, T0, make_alert


def _write(tmp_path, mutate):
    raw = yaml.safe_load(EXAMPLE.read_text())
    mutate(raw)
    path = tmp_path / "oncall.yaml"
    path.write_text(yaml.safe_dump(raw))
    shutil.copy(EXAMPLE.parent / "kent-cover.ics", tmp_path)  # the example's relative iCal import
    return path


def test_example_file_is_valid(oncall):
    assert oncall.team_for("southwark") == "southwark-mash"
    assert oncall.team_for("medway") == "kent-missing"
    assert oncall.team_for("nowhere") == oncall.default_team


@pytest.mark.parametrize(
    "bad_number, key",
    [
        ("07700900001", "people.sw-sw-amara.contacts.0"),  # national format, not E.164
        ("+44 7700 900001", "people.sw-sw-amara.contacts.0"),  # spaces
        ("+4477", "people.sw-sw-amara.contacts.0"),  # too short to be possible
    ],
)
def test_a_bad_phone_number_is_refused_naming_the_key(tmp_path, bad_number, key):
    path = _write(tmp_path, lambda raw: raw["people"]["sw-sw-amara"]["contacts"][0].update(to=bad_number))
    with pytest.raises(OnCallConfigError) as err:
        load_oncall(path)
    assert key in str(err.value) and "E.164" in str(err.value)


def test_a_bad_email_is_refused(tmp_path):
    path = _write(tmp_path, lambda raw: raw["people"]["sw-sw-amara"]["contacts"][1].update(to="not-an-email"))
    with pytest.raises(OnCallConfigError, match="people.sw-sw-amara.contacts.1.*not an email"):
        load_oncall(path)


def test_dangling_references_are_named(tmp_path):
    def mutate(raw):
        raw["teams"]["kent-missing"]["roles"].pop("duty_manager")
        raw["teams"]["kent-missing"]["rotation"]["participants"].append("nobody")
        raw["routes"][0]["policy"] = "missing-policy"

    with pytest.raises(OnCallConfigError) as err:
        load_oncall(_write(tmp_path, mutate))
    message = str(err.value)
    assert "teams.kent-missing.roles: missing role 'duty_manager'" in message
    assert "teams.kent-missing.rotation.participants: no person 'nobody'" in message
    assert "routes.0.policy: no policy 'missing-policy'" in message


def test_a_target_must_be_exactly_one_kind(tmp_path):
    path = _write(
        tmp_path, lambda raw: raw["policies"]["standard"]["steps"][0]["targets"][0].update(role="team_manager")
    )
    with pytest.raises(OnCallConfigError, match="policies.standard.steps.0.targets.0"):
        load_oncall(path)


def test_unreadable_and_non_mapping_files(tmp_path):
    with pytest.raises(OnCallConfigError, match="cannot read"):
        load_oncall(tmp_path / "absent.yaml")
    (tmp_path / "list.yaml").write_text("- a\n")
    with pytest.raises(OnCallConfigError, match="top level must be a mapping"):
        load_oncall(tmp_path / "list.yaml")


def test_weekly_rotation_hands_over_at_the_handover_time(oncall):
    rotation = oncall.teams["southwark-mash"].rotation
    start = rotation.start
    assert rotation.on_call(start) == "sw-sw-amara"
    assert rotation.on_call(start + timedelta(days=7) - timedelta(seconds=1)) == "sw-sw-amara"
    assert rotation.on_call(start + timedelta(days=7)) == "sw-sw-ben"
    assert rotation.on_call(start + timedelta(days=21)) == "sw-sw-amara"  # wraps round
    assert rotation.on_call(start - timedelta(days=1)) == "sw-sw-chidi"  # before the first handover


def test_an_override_wins_inside_its_window_only(oncall):
    rotation = oncall.teams["southwark-mash"].rotation
    inside = datetime(2026, 12, 22, 12, 0, tzinfo=UTC)  # week 50: Chidi's, overridden
    assert rotation.on_call(inside) == "sw-sw-ben"
    assert rotation.on_call(datetime(2026, 12, 21, 8, 59, tzinfo=UTC)) == "sw-sw-ben"  # week 49: Ben's own
    assert rotation.on_call(datetime(2026, 12, 28, 9, 0, tzinfo=UTC)) == "sw-sw-amara"  # week 51


def test_routes_pick_the_policy_by_severity_and_rule(oncall):
    assert oncall.policy_for(make_alert(severity=Severity.critical)) == "critical"
    assert oncall.policy_for(make_alert(severity=Severity.medium, rule="cse_missing")) == "critical"
    assert oncall.policy_for(make_alert(severity=Severity.high)) == "standard"


def test_the_chain_is_resolved_to_people_and_contacts(oncall):
    chain = resolve_chain(oncall, make_alert(severity=Severity.critical), T0)
    assert chain.policy == "critical" and chain.team == "southwark-mash" and chain.repeat == 3
    first = chain.steps[0]
    assert [t.person for t in first.targets] == ["sw-dm-eli", oncall.teams["southwark-mash"].rotation.on_call(T0)]
    assert first.delay_s == 600
    assert [c.channel for c in first.targets[0].contacts] == ["email", "sms"]  # Eli prefers email
    assert chain.total_steps == 8


def test_the_cli_checks_a_file(tmp_path):
    from typer.testing import CliRunner

    from beacon.cli import cli

    runner = CliRunner()
    ok = runner.invoke(cli, ["oncall", "check", str(EXAMPLE)])
    assert ok.exit_code == 0 and "valid (22 people" in ok.output and "southwark-mash" in ok.output
    bad = _write(tmp_path, lambda raw: raw.pop("routes"))
    refused = runner.invoke(cli, ["oncall", "check", str(bad)])
    assert refused.exit_code == 2 and "routes: Field required" in refused.output


def test_overrides_are_imported_from_ical(oncall):
    rotation = oncall.teams["kent-missing"].rotation
    assert rotation.on_call(datetime(2027, 1, 6, 12, 0, tzinfo=UTC)) == "ke-tm-isla"
    # 09:00 London in February is 09:00 UTC; the TZID is honoured
    assert rotation.on_call(datetime(2027, 2, 15, 10, 0, tzinfo=UTC)) == "ke-sw-harry"
    assert rotation.on_call(datetime(2027, 2, 15, 8, 59, tzinfo=UTC)) == rotation.on_call(
        datetime(2027, 2, 15, 8, 0, tzinfo=UTC)
    )


ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:x1
DTSTAMP:20261120T120000Z
SUMMARY:{person}
DTSTART:20270104T090000Z
DTEND:20270111T090000Z
{extra}END:VEVENT
END:VCALENDAR
"""


@pytest.mark.parametrize(
    "person, extra, message",
    [
        ("nobody", "", "teams.kent-missing.rotation.overrides.0.person: no person 'nobody'"),
        ("ke-sw-gita", "RRULE:FREQ=WEEKLY\n", "overrides_ical: .*recurring events are not supported"),
    ],
)
def test_bad_ical_overrides_are_named(tmp_path, person, extra, message):
    (tmp_path / "cover.ics").write_text(ICS.format(person=person, extra=extra))

    def mutate(raw):
        raw["teams"]["kent-missing"]["rotation"]["overrides_ical"] = "cover.ics"

    with pytest.raises(OnCallConfigError, match=message):
        load_oncall(_write(tmp_path, mutate))


def test_a_missing_ical_file_is_named(tmp_path):
    def mutate(raw):
        raw["teams"]["kent-missing"]["rotation"]["overrides_ical"] = "absent.ics"

    with pytest.raises(OnCallConfigError, match="teams.kent-missing.rotation.overrides_ical: cannot read"):
        load_oncall(_write(tmp_path, mutate))

"""The figures and lists of the coordinator's pages, as pure functions over the read model's
episodes: a scripted month whose numbers are known in advance."""

from __future__ import annotations

from dataclasses import astuple
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import HTTPException

from beacon.console.on_call import next_handover, on_call_now
from beacon.console.pages import month_bounds, period_bounds
from beacon.console.projection import AlertView, apply
from beacon.console.read_model import ReadModel
from beacon.console.reports import monthly_figures, monthly_figures_csv, ssda903_missing, to_csv
from beacon.console.returns_due import returns_due
from beacon.core.alerts import Severity
from beacon.core.events import parse_event
from beacon.notifier.oncall import Rotation, load_oncall
from beacon.notifier.settings import OnCallFileSettings
from console import scripted_month


def scripted_model() -> ReadModel:
    model = ReadModel()
    for event in scripted_month.events():
        apply(model.state, parse_event(event))
    model.commit({})
    return model


def test_the_scripted_month_has_its_known_figures():
    start, end, label = month_bounds(scripted_month.MONTH, datetime.now(UTC).date())
    rows = scripted_model().episodes_started(start, end)
    figures = monthly_figures(rows)
    assert label == "2026-03"
    assert [astuple(f) for f in figures] == scripted_month.FIGURES
    assert monthly_figures_csv(figures) == scripted_month.MONTHLY_CSV


def test_the_ssda903_missing_table_of_the_scripted_month():
    start, end = period_bounds("2026-03-01", "2026-03-31")
    rows = scripted_model().episodes_started(start, end)
    assert to_csv(("CHILD", "MISSING", "MIS_START", "MIS_END"), ssda903_missing(rows, "southwark")) == (
        scripted_month.SSDA903_SOUTHWARK_CSV
    )
    assert ssda903_missing(rows, "kent") == [("SM-E", "A", "03/03/2026", "03/03/2026")]


def test_figures_restrict_to_the_organisations_given():
    start, end, _ = month_bounds(scripted_month.MONTH, datetime.now(UTC).date())
    rows = scripted_model().episodes_started(start, end, frozenset({"kent"}))
    assert [astuple(f) for f in monthly_figures(rows)] == [scripted_month.FIGURES[0]]


def test_returns_due_lists_the_returns_without_an_interview_most_overdue_first():
    model = scripted_model()
    now = datetime(2026, 3, 6, 12, tzinfo=UTC)
    rows = model.returns_awaiting_interview(now - timedelta(days=28))
    by_council = returns_due(rows, now, deadline_hours=72)
    # SM-EP-1 (completed), SM-EP-3 (declined), SM-EP-6 (completed) are done; SM-EP-2 ends after now.
    southwark = by_council["southwark"]
    assert [d.episode_ref for d in southwark] == ["SM-EP-5"]
    assert southwark[0].deadline == datetime(2026, 3, 4, 9, tzinfo=UTC) and southwark[0].overdue(now)
    # An interview only offered does not discharge the duty.
    offered = scripted_month._interview("SM-D", "SM-EP-5", "offered", "2026-03-02T09:00:00Z")
    apply(model.state, parse_event(offered))
    model.commit({})
    again = returns_due(model.returns_awaiting_interview(now - timedelta(days=28)), now, 72)
    assert [(d.episode_ref, d.offered) for d in again["southwark"]] == [("SM-EP-5", True)]


def test_bad_periods_are_refused_naming_the_field():
    for month in ("2026-13", "March", "2026-3"):
        with pytest.raises(HTTPException) as refused:
            month_bounds(month, datetime.now(UTC).date())
        assert refused.value.status_code == 400 and "month" in refused.value.detail
    with pytest.raises(HTTPException) as refused:
        period_bounds("2026-03-01", "2026-02-01")
    assert "to:" in refused.value.detail


def test_a_csv_cell_a_spreadsheet_would_run_is_quoted_as_text():
    assert to_csv(("CHILD",), [("=HYPERLINK(1)",)]) == "CHILD\r\n'=HYPERLINK(1)\r\n"


def test_on_call_now_and_next_from_the_notifiers_file():
    config = load_oncall(OnCallFileSettings().oncall_file)
    now = datetime.now(UTC)
    alert = AlertView("A1", child_ref="CH-1", council=None, severity=Severity.high, raised_at=now)
    teams = on_call_now(config, now, [alert])
    assert {t.team for t in teams} == set(config.teams)
    for team in teams:
        rotation = config.teams[team.team].rotation
        assert team.now == rotation.on_call(now)
        if team.next is not None:
            assert team.handover_at is not None and team.handover_at > now
            assert rotation.on_call(team.handover_at) == team.next != team.now
    assert [a.alert_id for t in teams if t.team == config.default_team for a in t.open_alerts] == ["A1"]


def test_the_next_handover_honours_an_override():
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    rotation = Rotation.model_validate(
        {
            "start": start,
            "participants": ["ann", "bob"],
            "overrides": [{"person": "cat", "start": start + timedelta(days=2), "end": start + timedelta(days=3)}],
        }
    )
    assert next_handover(rotation, start + timedelta(days=1)) == (start + timedelta(days=2), "cat")
    assert next_handover(rotation, start + timedelta(days=2, hours=1)) == (start + timedelta(days=3), "ann")
    assert next_handover(rotation, start + timedelta(days=4)) == (start + timedelta(days=7), "bob")

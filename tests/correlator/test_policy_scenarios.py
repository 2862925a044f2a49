"""The three example councils' protocols (deploy/policies/), each shown by a scenario."""

from __future__ import annotations

from pathlib import Path

import pytest

from beacon.core.policy import PolicyError, load_policy
from correlator.builders import Events, Run
from harness.services import REPO_ROOT

POLICIES = REPO_ROOT / "deploy" / "policies"


def test_norfolk_third_episode_in_42_days_prompts_a_strategy_discussion():
    norfolk, default = load_policy(POLICIES / "norfolk.yaml"), load_policy(POLICIES / "default.yaml")
    for days, expected in (
        ([0, 20, 41], {"norfolk": ["EP2"], "default": ["EP2"]}),
        ([0, 30, 60], {"norfolk": [], "default": ["EP2"]}),
    ):
        for name, policy in (("norfolk", norfolk), ("default", default)):
            run, ev = Run(policy), Events()
            for n, day in enumerate(days):
                run.feed(ev.reported(day * 24, f"EP{n}"), ev.found(day * 24 + 3, f"EP{n}"))
            repeats = [r for r in run.records if r.rule == "repeat_episodes" and r.status == "raised"]
            assert [r.episode_ref for r in repeats] == expected[name], (name, days)
            if name == "norfolk" and repeats:
                assert repeats[0].step == "3in42d" and repeats[0].notify == "social_worker_and_police"


def test_kent_senior_manager_alert_for_a_child_in_care_missing_48_hours():
    kent = load_policy(POLICIES / "kent.yaml")
    in_care, ev = Run(kent), Events()
    in_care.feed(ev.reported(0, looked_after=True, council="kent-cc"), ev.sighting(48.5))
    ladder = [(r.step, r.notify, r.council) for r in in_care.records if r.rule == "duration"]
    assert ladder == [("24h", "team_manager", "kent-cc"), ("48h", "senior_manager", "kent-cc")]
    at_home, ev2 = Run(kent, child="CH-TEST-0002"), Events("CH-TEST-0002")
    at_home.feed(ev2.reported(0, looked_after=False), ev2.sighting(48.5))
    assert [r.step for r in at_home.records if r.rule == "duration"] == ["24h"]


def test_southwark_any_high_risk_goes_to_the_assistant_director_at_once():
    southwark = load_policy(POLICIES / "southwark.yaml")
    police_high, ev = Run(southwark), Events()
    records = police_high.feed(ev.reported(0, risk="high", council="southwark"))
    assert [(r.severity.value, r.notify) for r in records] == [("high", "assistant_director")]
    # High risk from the social-work CSE tool (amber), with a low police grade:
    tool_high, ev2 = Run(southwark, child="CH-TEST-0002"), Events("CH-TEST-0002")
    records = tool_high.feed(ev2.cse(-24, "medium"), ev2.reported(0, risk="low", council="southwark"))
    assert {(r.rule, r.severity.value, r.notify) for r in records} == {
        ("triage", "high", "assistant_director"),
        ("cse_missing", "critical", "director"),
    }


def test_triage_policy_errors_name_the_key_and_the_reason(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("council: x\ntriage:\n  risk_severity: {high: high}\n  notify: {low: a}\n")
    with pytest.raises(PolicyError) as err:
        load_policy(bad)
    text = str(err.value)
    assert "triage.risk_severity" in text and "missing: low, medium, no_apparent_risk" in text
    assert "triage.notify" in text and "missing: critical, high, medium" in text


def test_policy_check_command_prints_the_rules_or_names_the_bad_key(tmp_path: Path):
    import subprocess
    import sys

    from harness.services import service_env

    ok = subprocess.run(
        [sys.executable, "-m", "beacon", "policy", "check", str(POLICIES / "kent.yaml")],
        env=service_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0 and "still missing 48 h (children in care) -> high, senior_manager" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("council: x\nreturn_interview: {deadline_hours: 0}\n")
    refused = subprocess.run(
        [sys.executable, "-m", "beacon", "policy", "check", str(bad)],
        env=service_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (
        refused.returncode == 2 and "return_interview.deadline_hours: Input should be greater than 0" in refused.stderr
    )

"""Who is paged first comes from one place: the role the council's policy names.

Every rule of every example policy (deploy/policies/*.yaml), resolved against the
example on-call file: the person paged first is the one the policy names, and the
route's policy only adds the later steps."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from beacon.core.alerts import Severity
from beacon.core.policy import Policy, load_policy
from beacon.correlator.rules import CSE_MISSING, DURATION, REPEAT, RHI_OVERDUE, TRIAGE, UNALLOCATED
from beacon.notifier.escalation import resolve_chain
from beacon.notifier.oncall import OnCallConfig, OnCallConfigError, load_oncall
from notifier.conftest import T0, make_alert
from notifier.test_oncall import _write

POLICIES = sorted((Path(__file__).resolve().parents[2] / "deploy" / "policies").glob("*.yaml"))


def rules_of(policy: Policy) -> list[tuple[str, str, Severity, str]]:
    """(rule, step, severity, notify) of every alert the policy can raise."""
    found = [(TRIAGE, sev.value, sev, role) for sev, role in policy.triage.notify.items()]
    found += [(DURATION, f"{s.after_hours:g}h", s.severity, s.notify) for s in policy.duration_ladder.steps]
    repeat, rhi = policy.repeat_episodes, policy.return_interview
    found.append((REPEAT, f"{repeat.count}in{repeat.window_days}d", repeat.severity, repeat.notify))
    found.append((RHI_OVERDUE, f"{rhi.deadline_hours:g}h", rhi.severity, rhi.notify))
    found.append((CSE_MISSING, "flag", policy.cse_missing.severity, policy.cse_missing.notify))
    found.append((UNALLOCATED, "unallocated", policy.unallocated.severity, policy.unallocated.notify))
    return found


CASES = [
    pytest.param(path, rule, step, severity, notify, id=f"{path.stem}-{rule}-{step}")
    for path in POLICIES
    for rule, step, severity, notify in rules_of(load_policy(path))
]


@pytest.mark.parametrize(("path", "rule", "step", "severity", "notify"), CASES)
def test_the_person_paged_first_is_the_one_the_policy_names(
    oncall: OnCallConfig, path: Path, rule: str, step: str, severity: Severity, notify: str
):
    council = load_policy(path).council
    alert = make_alert(rule=rule, step=step, severity=severity, council=council, notify=notify)
    chain = resolve_chain(oncall, alert, T0)
    team = oncall.teams[chain.team]
    if council != "default":
        assert council in team.councils, f"no team takes {council}'s alerts"
    named = team.rotation.on_call(T0) if notify in team.oncall_roles else team.roles.get(notify)
    assert named is not None, f"team {chain.team} has nobody in the role {notify!r}"
    assert [t.person for t in chain.steps[0].targets] == [named]
    assert chain.first_role == notify
    everyone = [t.person for s in chain.steps for t in s.targets]
    assert len(everyone) == len(set(everyone)), "a later step pages again someone already paged"


def test_an_unallocated_childs_alert_pages_the_team_manager_first_then_the_duty_manager(oncall: OnCallConfig):
    alert = make_alert(rule=UNALLOCATED, step="unallocated", notify="team_manager")
    chain = resolve_chain(oncall, alert, T0)
    assert [[t.person for t in s.targets] for s in chain.steps] == [["sw-tm-dana"], ["sw-dm-eli"]]
    assert chain.steps[0].delay_s == timedelta(minutes=15).total_seconds()


def test_an_alert_naming_no_role_the_team_has_falls_back_to_the_policys_first_step(oncall: OnCallConfig):
    chain = resolve_chain(oncall, make_alert(notify="chief_constable"), T0)
    assert [t.person for t in chain.steps[0].targets] == [oncall.teams["southwark-mash"].rotation.on_call(T0)]
    assert chain.first_role is None
    assert resolve_chain(oncall, make_alert(notify=None), T0) == chain


def test_a_role_cannot_be_both_on_call_and_named(tmp_path):
    bad = _write(tmp_path, lambda raw: raw["teams"]["southwark-mash"]["oncall_roles"].append("team_manager"))
    with pytest.raises(OnCallConfigError, match="oncall_roles: 'team_manager' is also a named role"):
        load_oncall(bad)

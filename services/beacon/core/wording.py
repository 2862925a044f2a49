"""What an alert is called, in words safe for a locked screen: one definition for every
message and screen (the notifier's SMS and email, the console).

The words come from a closed vocabulary chosen by the rule and its step, never from the
alert's free text, so they can carry no name, address or exploitation detail. A rule this
module does not know is named by nothing more than "see the console".
"""

from __future__ import annotations

import re

from beacon.core.alerts import Severity
from beacon.core.domain import severity_label

# The correlator's rule names (services/beacon/correlator/engine.py) and their steps.
_LADDER = re.compile(r"^(\d+(?:\.\d+)?)h$")
_REPEAT = re.compile(r"^(\d+)in(\d+)d$")


def severity_word(severity: Severity) -> str:
    """The severity as messages show it: the console's word (``domain.severity_label``) in
    capitals, LOW, MEDIUM, HIGH, CRITICAL."""
    return severity_label(severity).upper()


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def reason_words(rule: str, step: str) -> tuple[str, str]:
    """(headline, consequence) of an alert, e.g. ("3rd missing episode in 90 days",
    "strategy discussion needed"); the consequence may be empty. ``reason`` joins them."""
    if rule == "triage":
        risk = step if step in Severity.__members__ else "unknown"
        return f"missing, {risk} risk", ""
    if rule == "duration" and (m := _LADDER.match(step)):
        return f"still missing after {m.group(1)} h", ""
    if rule == "rhi_overdue" and (m := _LADDER.match(step)):
        return f"return home interview overdue ({m.group(1)} h)", ""
    if rule == "repeat_episodes" and (m := _REPEAT.match(step)):
        return f"{_ordinal(int(m.group(1)))} missing episode in {m.group(2)} days", "strategy discussion needed"
    if rule == "cse_missing":
        return "missing with a safeguarding flag", "strategy discussion needed"
    if rule == "unallocated":
        return "missing, no allocated worker", ""
    return "alert", "see the console"


def reason(rule: str, step: str) -> str:
    """The alert's reason in full, e.g. "return home interview overdue (72 h)"."""
    headline, consequence = reason_words(rule, step)
    return f"{headline}: {consequence}" if consequence else headline

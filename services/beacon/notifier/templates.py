"""Message templates (Jinja2). A template sees only ``ALLOWED_FIELDS``: the case
reference, the severity word, the reason in the closed vocabulary of
``beacon.core.wording``, what is asked and how to acknowledge. Nothing from the
alert's free text, the child reference or the event ever reaches a template, and
a test renders every one with hostile inputs to prove it.

A page by SMS fits one GSM-7 segment (160 septets) with its link: if the full reason
makes it longer, the page carries the reason's headline only (the console and the
email have the rest)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATE_DIR = Path(__file__).parent / "templates"
ALLOWED_FIELDS = frozenset({"case_ref", "severity", "reason", "ask", "reply_code", "ack_url"})
SMS_MAX_CHARS = 1600  # Twilio's limit for one message body
SMS_SEGMENT_SEPTETS = 160  # one GSM-7 segment

_env = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    undefined=StrictUndefined,
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    keep_trailing_newline=False,
)


@dataclass(frozen=True)
class MessageFields:
    """Everything a message may say. Built by the shell from the escalation state."""

    case_ref: str
    severity: str  # the word, as beacon.core.wording.severity_word gives it
    reason: str  # beacon.core.wording.reason
    ask: str
    reply_code: str
    ack_url: str
    reason_headline: str = ""  # the reason's first part, for an SMS that would not fit one segment

    def as_context(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in ALLOWED_FIELDS}


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


def sms_septets(text: str) -> int:
    """GSM-7 length (extension characters count two); text GSM-7 cannot carry is
    sent as UCS-2, where a segment holds 70 characters: counted so it never fits."""
    try:
        return len(text.encode("gsm03.38"))
    except UnicodeEncodeError:
        return len(text) if len(text) <= 70 else SMS_SEGMENT_SEPTETS + len(text)


def render(kind: Literal["page", "resolution"], channel: Literal["sms", "email"], fields: MessageFields) -> Rendered:
    context = fields.as_context()
    body = _env.get_template(f"{kind}.{channel}.j2").render(context).strip()
    if channel == "sms" and fields.reason_headline and sms_septets(body) > SMS_SEGMENT_SEPTETS:
        body = _env.get_template(f"{kind}.sms.j2").render({**context, "reason": fields.reason_headline}).strip()
    subject = _env.get_template(f"{kind}.subject.j2").render(context).strip() if channel == "email" else ""
    return Rendered(subject=subject, body=body)


def render_page(
    kind: Literal["page", "resolution"], channel: Literal["sms", "email"], fields: list[MessageFields]
) -> Rendered:
    """One page for the alerts of one group (an episode's, raised together): the lead's
    (first, most severe) severity, case and how to acknowledge, and every reason."""
    lead = fields[0]
    if len(fields) > 1:
        lead = replace(
            lead,
            reason="; ".join(dict.fromkeys(f.reason for f in fields)),
            reason_headline="; ".join(dict.fromkeys(f.reason_headline or f.reason for f in fields)),
        )
    return render(kind, channel, lead)


def bundle_sms(bodies: list[str], more: int = 0, ack_all_code: str = "") -> str:
    """Several pages for one phone become one SMS (GoAlert/OnCall bundling), listed in
    the order given (most severe first), with a code that acknowledges them all and
    how many more wait. The count of those waiting is never cut off."""
    if len(bodies) == 1 and not more:
        return bodies[0]
    tail = f"\n+{more} more: open the console" if more else ""
    if len(bodies) == 1:
        return bodies[0][: SMS_MAX_CHARS - len(tail)] + tail
    head = f"BEACON: {len(bodies)} pages, most severe first."
    if ack_all_code:
        head += f" Reply {ack_all_code}a to ack all."
    text = head + "\n" + "\n--\n".join(bodies)
    return text[: SMS_MAX_CHARS - len(tail)] + tail


def bundle_email(rendered: list[Rendered], more: int = 0, ack_all_code: str = "") -> Rendered:
    """The email form of ``bundle_sms``."""
    tail = f"\n\n+{more} more waiting: open the console." if more else ""
    if len(rendered) == 1:
        return Rendered(subject=rendered[0].subject, body=rendered[0].body + tail)
    head = f"{len(rendered)} pages, most severe first."
    if ack_all_code:
        head += f" Reply to the Beacon SMS with {ack_all_code}a to acknowledge them all."
    body = head + "\n\n" + "\n\n----\n\n".join(r.body for r in rendered) + tail
    return Rendered(subject=f"BEACON: {len(rendered)} pages, {rendered[0].subject}", body=body)


def bundle(
    channel: Literal["sms", "email"], rendered: list[Rendered], more: int = 0, ack_all_code: str = ""
) -> Rendered:
    """The one message to a contact: its pages (rendered, most severe first) bundled for
    the channel. An SMS has no subject."""
    if channel == "sms":
        return Rendered(subject="", body=bundle_sms([r.body for r in rendered], more, ack_all_code))
    return bundle_email(rendered, more, ack_all_code)


_html = Environment(loader=FileSystemLoader(TEMPLATE_DIR / "pages"), undefined=StrictUndefined, autoescape=True)


def render_html_page(title: str, message: str, form_action: str | None = None) -> str:
    """An acknowledgement-link page (escaped: nothing in it is markup)."""
    return _html.get_template("link.html.j2").render(title=title, message=message, form_action=form_action)


def template_names() -> list[str]:
    return sorted(p.name for p in TEMPLATE_DIR.glob("*.j2"))

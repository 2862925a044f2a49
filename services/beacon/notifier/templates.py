"""Message templates (Jinja2). A template sees only ``ALLOWED_FIELDS``: the case
reference, the risk level, what is asked and how to acknowledge. Nothing from the
alert's free text, the child reference or the event ever reaches a template, and
a test renders every one with hostile inputs to prove it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATE_DIR = Path(__file__).parent / "templates"
ALLOWED_FIELDS = frozenset({"case_ref", "severity", "ask", "reply_code", "ack_url"})
SMS_MAX_CHARS = 1600  # Twilio's limit for one message body

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
    severity: str
    ask: str
    reply_code: str
    ack_url: str

    def as_context(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in ALLOWED_FIELDS}


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


def render(kind: Literal["page", "resolution"], channel: Literal["sms", "email"], fields: MessageFields) -> Rendered:
    context = fields.as_context()
    body = _env.get_template(f"{kind}.{channel}.j2").render(context).strip()
    subject = _env.get_template(f"{kind}.subject.j2").render(context).strip() if channel == "email" else ""
    return Rendered(subject=subject, body=body)


def bundle_sms(bodies: list[str]) -> str:
    """Several messages for one phone become one SMS (GoAlert/OnCall bundling)."""
    if len(bodies) == 1:
        return bodies[0]
    text = f"BEACON: {len(bodies)} messages.\n" + "\n--\n".join(bodies)
    return text[:SMS_MAX_CHARS]


def template_names() -> list[str]:
    return sorted(p.name for p in TEMPLATE_DIR.glob("*.j2"))

"""The notifier's HTTP handlers: Twilio's webhooks, the acknowledgement link pages and
the ``/v1/alerts`` API. Any replica answers any request: reads come from this replica's
``AlertDirectory`` (every alert, fed by the table's changelog; see directory.py), and every
action is an ``AckCommand`` on ``beacon.acks`` that the alert's owner applies. A replica
whose directory is still loading answers 503 (an SMS reply: a text asking to reply again),
never "unknown"."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import faust
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from beacon.core.acks import AckCommand
from beacon.core.rate_limit import BadCredentialLimiter, retry_after_header
from beacon.notifier.escalation import DeliveryResult, parse_sms_reply, sms_reply
from beacon.notifier.http_input import Refusal, parse_api_ack
from beacon.notifier.links import LINK_PATH, AckLink, LinkError, link_page, read_token
from beacon.notifier.open_index import BoundedDict
from beacon.notifier.runtime import acks_topic, app, base_url, clock, directory, log, oncall, send_input, settings
from beacon.notifier.templates import render_html_page
from beacon.runtime.metrics import NOTIFICATIONS, NOTIFICATIONS_FAILED

twilio_validator = RequestValidator(settings.twilio_auth_token.get_secret_value())
# Links this replica took: refuses a double submit before the owner's state says so.
_used_links: BoundedDict[str, None] = BoundedDict(10_000)
STARTING = "Beacon is starting; please reply again in a minute."


def _twilio_signature_ok(request: Any, params: dict[str, str]) -> bool:
    if not settings.twilio_account_sid:
        return False  # no auth token configured: nothing can be verified, refuse everything
    url = base_url + request.path_qs
    return bool(twilio_validator.validate(url, params, request.headers.get("X-Twilio-Signature", "")))


async def _verified_twilio_params(request: Any, hook: str) -> dict[str, str] | int:
    """The webhook's form parameters, or the status refusing it: 415 for a body that is not
    a form (Twilio only sends application/x-www-form-urlencoded), 400 for a form that cannot
    be read, 403 when X-Twilio-Signature does not verify."""
    if request.content_type != "application/x-www-form-urlencoded":
        return 415
    try:
        params = {k: str(v) for k, v in (await request.post()).items()}
    except ValueError:
        return 400
    if not _twilio_signature_ok(request, params):
        log.warning("webhook_forged", hook=hook)
        return 403
    return params


_REFUSED = {400: "malformed form", 403: "forbidden", 415: "send application/x-www-form-urlencoded"}


def _twiml(text: str) -> str:
    response = MessagingResponse()
    response.message(text)
    return str(response)


@app.page("/webhooks/twilio/sms")
class InboundSms(faust.web.View):
    """Twilio inbound-message webhook: ``<code>a`` acknowledges, ``e`` escalates, ``c`` closes."""

    async def post(self, request: Any) -> Any:
        params = await _verified_twilio_params(request, "sms")
        if isinstance(params, int):
            return self.text(_REFUSED[params], status=params)
        person = oncall.person_by_contact("sms", params.get("From", ""))
        reply = parse_sms_reply(params.get("Body", ""))
        if person is None:
            text = "Beacon does not know this number."
        elif reply is None:
            text = "Reply with the code from the alert, e.g. 123a to acknowledge."
        elif not directory.loaded:
            text = STARTING
        else:
            code, letter = reply
            decision = sms_reply(code, letter, directory.reply_candidates(person, code))
            text = decision.text
            if decision.alert_id and decision.action:
                sid = params.get("MessageSid") or hashlib.sha256(repr(sorted(params.items())).encode()).hexdigest()[:32]
                for alert_id in (decision.alert_id, *decision.also):
                    command = AckCommand(
                        command_id=f"sms:{sid}" if alert_id == decision.alert_id else f"sms:{sid}>{alert_id}"[:128],
                        alert_id=alert_id,
                        action=decision.action,
                        by=person,
                        via="sms",
                        at=clock.now(),
                    )  # type: ignore[arg-type]
                    await acks_topic.send(key=command.key, value=command.to_json())
        return self.bytes(_twiml(text).encode(), content_type="text/xml")


@app.page("/webhooks/twilio/status")
class StatusCallback(faust.web.View):
    """Twilio delivery receipts (signed): delivered, or failed/undelivered -> fallback."""

    async def post(self, request: Any) -> Any:
        params = await _verified_twilio_params(request, "status")
        if isinstance(params, int):
            return self.text(_REFUSED[params], status=params)
        status = params.get("MessageStatus", "")
        if status in ("delivered", "failed", "undelivered"):
            NOTIFICATIONS.labels(channel="sms", outcome=status).inc()
            if status != "delivered":
                NOTIFICATIONS_FAILED.labels(channel="sms", reason=f"carrier_{status}").inc()
            for ref in request.query.get("refs", "").split(","):
                alert_id, _, key = ref.partition("|")
                if alert_id and key:
                    await send_input(
                        alert_id,
                        DeliveryResult(
                            alert_id=alert_id,
                            key=key,
                            outcome=status,  # type: ignore[arg-type]
                            provider_id=params.get("MessageSid"),
                            reason=params.get("ErrorCode", "")[:20],
                        ),
                    )
        return self.text("", status=204)


@app.page(LINK_PATH + "{token}")
class AckLinkView(faust.web.View):
    """GET shows a confirmation page (link scanners must not acknowledge); POST acknowledges.
    The confirmation form posts back to the page it is on (a relative action), so it works
    through whichever host name and replica served it."""

    def _decide(self, token: str) -> tuple[AckLink | LinkError, Any]:
        try:
            link: AckLink | LinkError = read_token(settings.ack_link_secret.get_secret_value(), token, clock.now())
        except LinkError as exc:
            link = exc
        found = directory.find_link(link.tag) if isinstance(link, AckLink) else None
        used = isinstance(link, AckLink) and link.command_id in _used_links
        return link, (found, link_page(link, found, used))

    async def get(self, request: Any, token: str) -> Any:
        if not directory.loaded:
            return self._starting()
        _, (_, page) = self._decide(token)
        action = f"{LINK_PATH}{token}" if page.confirm else None
        return self.html(render_html_page(page.title, page.message, action), status=page.status)

    async def post(self, request: Any, token: str) -> Any:
        if not directory.loaded:
            return self._starting()
        link, (found, page) = self._decide(token)
        if not page.confirm:
            return self.html(render_html_page(page.title, page.message), status=page.status)
        assert isinstance(link, AckLink) and found is not None
        state, notice = found
        _used_links[link.command_id] = None
        command = AckCommand(
            command_id=link.command_id,
            alert_id=state.alert_id,
            action="acknowledge",
            by=notice.person,
            via="link",
            at=clock.now(),
        )
        await acks_topic.send(key=command.key, value=command.to_json())
        body = render_html_page("Acknowledged", "Thank you: the escalation stops and this is recorded.")
        return self.html(body, status=200)

    def _starting(self) -> Any:
        body = render_html_page("Starting", "Beacon is starting; please try again in a minute.")
        return self.html(body, status=503, headers={"Retry-After": "5"})


_bad_credentials = BadCredentialLimiter(settings.http_bad_auth_rate_per_s, settings.http_bad_auth_burst)


def _api_authorised(request: Any) -> bool:
    expected = settings.notifier_api_token.get_secret_value()
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def _api_refusal(view: faust.web.View, request: Any) -> Any:
    """401, or 429 once this address has sent too many requests without the token."""
    wait_s = _bad_credentials.refused(request.remote or "unknown", time.monotonic())
    if wait_s > 0:
        return view.json(
            {"error": "too many requests without a valid token; retry later"},
            status=429,
            headers={"Retry-After": retry_after_header(wait_s)},
        )
    return view.json({"error": "unauthorised"}, status=401)


def _api_starting(view: faust.web.View) -> Any:
    return view.json({"error": "starting: the alert directory is loading"}, status=503, headers={"Retry-After": "5"})


@app.page("/v1/alerts/{alert_id}/ack")
class ApiAck(faust.web.View):
    async def post(self, request: Any, alert_id: str) -> Any:
        if not _api_authorised(request):
            return _api_refusal(self, request)
        parsed = parse_api_ack(await request.read())  # read already: http_server.aiohttp_body_deadline
        if isinstance(parsed, Refusal):
            return self.json(parsed.body(), status=parsed.status)
        if not directory.loaded:
            return _api_starting(self)
        if directory.state(alert_id) is None:
            return self.json({"error": "unknown alert"}, status=404)
        action, by = parsed.action, parsed.by
        command_id = (
            parsed.command_id
            or f"api:{hashlib.sha256(f'{alert_id}|{by}|{action}|{clock.now()}'.encode()).hexdigest()[:24]}"
        )
        command = AckCommand(
            command_id=command_id[:128], alert_id=alert_id, action=action, by=by, via="api", at=clock.now()
        )
        await acks_topic.send(key=command.key, value=command.to_json())
        return self.json({"command_id": command.command_id, "status": "accepted"}, status=202)


@app.page("/v1/alerts/{alert_id}")
class ApiAlert(faust.web.View):
    async def get(self, request: Any, alert_id: str) -> Any:
        if not _api_authorised(request):
            return _api_refusal(self, request)
        if not directory.loaded:
            return _api_starting(self)
        state = directory.state(alert_id)
        if state is None:
            return self.json({"error": "unknown alert"}, status=404)
        return self.json(
            {
                "alert_id": state.alert_id,
                "case_ref": state.case_ref,
                "status": state.status,
                "step": state.step,
                "exhausted": state.exhausted,
                "acked_by": state.acked_by,
                "acked_via": state.acked_via,
                "notices": {
                    k: {"status": n.status, "person": n.person, "channel": n.channel, "step": n.step}
                    for k, n in state.notices.items()
                },
            }
        )

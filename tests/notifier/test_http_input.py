"""No input to the notifier's HTTP endpoints gives a 500: the pure parsers, then the probe
list against the notifier as a real process on a real broker."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from beacon.notifier.http_input import ApiAckRequest, Refusal, parse_api_ack, parse_clock_advance
from beacon.notifier.links import LINK_PATH, make_token
from harness.services import ServiceProcess
from notifier.stack import API_TOKEN, ONCALL_FILE

LINK_SECRET = "link-secret-for-this-test-only-0123456789"
NOT_AN_OBJECT = [b"[]", b'"text"', b"42", b"null", b"true", b"{", b"\xff\xfe", b"[" * 5000]


@pytest.mark.parametrize("body", NOT_AN_OBJECT)
def test_an_ack_body_that_is_not_a_json_object_is_a_400(body):
    refusal = parse_api_ack(body)
    assert isinstance(refusal, Refusal) and refusal.status == 400 and refusal.field == "/"


def test_an_ack_body_names_the_bad_field():
    assert parse_api_ack(b"") == ApiAckRequest()
    assert parse_api_ack(b'{"action": "close", "by": "duty-desk"}') == ApiAckRequest(action="close", by="duty-desk")
    for body, field in [
        ({"action": "explode"}, "action"),
        ({"by": 7}, "by"),
        ({"by": "x" * 65}, "by"),
        ({"command_id": ["a"]}, "command_id"),
        ({"extra": 1}, "extra"),
    ]:
        refusal = parse_api_ack(json.dumps(body).encode())
        assert isinstance(refusal, Refusal) and (refusal.status, refusal.field) == (422, field), body


@pytest.mark.parametrize(
    "body",
    [b"", b"{}", b"[]", b"null", b'{"seconds": "60"}', b'{"seconds": true}', b'{"seconds": -1}', b'{"seconds": 1e300}'],
)
def test_a_clock_advance_without_a_plain_number_of_seconds_is_a_4xx(body):
    refusal = parse_clock_advance(body)
    assert isinstance(refusal, Refusal) and 400 <= refusal.status < 500


def test_a_clock_advance_of_a_number_of_seconds_is_read():
    assert parse_clock_advance(b'{"seconds": 90}') == timedelta(seconds=90)
    assert parse_clock_advance(b'{"seconds": 0.5}') == timedelta(seconds=0.5)


@given(body=st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_the_parsers_never_raise(body):
    assert isinstance(parse_api_ack(body), ApiAckRequest | Refusal)
    assert isinstance(parse_clock_advance(body), timedelta | Refusal)


@pytest.mark.slow
def test_no_probe_of_the_notifier_gets_a_500(settings, env, tmp_path):
    notifier_env = {
        **env,
        "BEACON_ONCALL_FILE": str(ONCALL_FILE),
        "BEACON_NOTIFIER_TEST_CLOCK": "true",
        "BEACON_NOTIFIER_API_TOKEN": API_TOKEN,
        "BEACON_ACK_LINK_SECRET": LINK_SECRET,
    }
    base = f"http://127.0.0.1:{settings.notifier_port}"
    api = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
    unknown = make_token(LINK_SECRET, "A1", "1:oncall-sam:sms", datetime.now(UTC), timedelta(hours=1))
    with (
        ServiceProcess("notifier", notifier_env, tmp_path / "notifier.log", port=settings.notifier_port),
        httpx.Client(base_url=base, timeout=10) as client,
    ):
        for body in (b"[]", b'"text"', b"42", b"null"):
            response = client.post("/v1/alerts/A1/ack", content=body, headers=api)
            assert response.status_code == 400, (body, response.text)
            assert response.json()["field"] == "/"
        for token in ("\u00e9t\u00e9.abc", "\u00e9" * 22, "A" * 21 + "\u00e9"):
            for method in ("GET", "POST"):
                response = client.request(method, f"{LINK_PATH}{token}")
                assert response.status_code == 400, (token, method, response.text)
                assert "not valid" in response.text
        for method in ("GET", "POST"):  # signed, but for no alert this notifier knows
            response = client.request(method, f"{LINK_PATH}{unknown}")
            assert response.status_code == 404, (method, response.text)
        empty = client.post("/test/clock/advance", content=b"", headers={"Content-Type": "application/json"})
        assert empty.status_code == 422 and empty.json()["field"] == "seconds"
        assert client.post("/test/clock/advance", json={"seconds": 60}).status_code == 200
        for hook in ("/webhooks/twilio/sms", "/webhooks/twilio/status"):
            for content_type, body in [
                ("multipart/form-data; boundary=zzz", b"--x\r\nbroken"),
                ("multipart/form-data", b"no boundary at all"),
                ("application/x-www-form-urlencoded", b"\xff=\xfe&%zz&=&&"),
                ("application/json", b"[1, 2"),
            ]:
                response = client.post(hook, content=body, headers={"Content-Type": content_type})
                assert 400 <= response.status_code < 500, (hook, content_type, response.text)
    # Beacon's own lines and its HTTP server's: the Kafka clients' (aiokafka logs a group
    # coordinator still loading on a fresh Apache Kafka at error level) are not this test's subject.
    lines = [json.loads(line) for line in (tmp_path / "notifier.log").read_text().splitlines() if line.startswith("{")]
    own = [line for line in lines if not str(line.get("logger", "")).startswith(("aiokafka", "kafka"))]
    bad = [line for line in own if line.get("level") in ("error", "critical") or "Traceback" in str(line)]
    assert not bad, bad[:3]

"""A Twilio stand-in for tests, GoAlert-harness style.

``Prism`` serves Twilio's official OpenAPI spec (it validates every request and
answers with the spec's examples). ``TwilioProxy`` sits in front of it: it records
what reached Twilio and can inject failures (a 5xx answered by the proxy, or an
invalid request that Prism itself refuses with 422). ``Phone`` is one handset:

    phone = twilio.phone("+447700900001")
    sms = phone.expect_sms(contains="BEACON")
    phone.reply(f"{sms.code}a")          # signed inbound webhook to the notifier
    twilio.send_status(sms, "undelivered")  # signed delivery receipt
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import parse_qsl

import httpx
from twilio.request_validator import RequestValidator

from beacon.runtime import processes
from beacon.runtime.broker import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
PRISM = REPO_ROOT / "tests" / "tools" / "node_modules" / ".bin" / "prism"
TWILIO_SPEC = (
    REPO_ROOT
    / "tests"
    / "tools"
    / "node_modules"
    / "@twilio-alpha"
    / "mcp"
    / "twilio-oai"
    / "spec"
    / "json"
    / "twilio_api_v2010.json"
)
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
FROM_NUMBER = "+447700900999"


class Prism:
    def __init__(self, log_file: Path, port: int | None = None):
        self.port = port or free_port()
        self.log_file = log_file
        self.process: processes.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Prism:
        self.process = processes.start(
            [PRISM, "mock", "-p", str(self.port), "--host", "127.0.0.1", TWILIO_SPEC], log_file=self.log_file
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prism exited: {self.log_file.read_text()[-2000:]}")
            try:
                httpx.get(self.url, timeout=0.5)
                return self
            except httpx.HTTPError:
                time.sleep(0.2)
        raise TimeoutError("prism did not start")

    def stop(self) -> None:
        if self.process:
            processes.stop(self.process, timeout_s=10)


@dataclass
class Sms:
    to: str
    body: str
    status_callback: str
    status: int  # what Twilio (Prism) answered
    received_at: float = field(default_factory=time.time)  # wall clock when the request reached the mock
    answered: bool = True  # False: the sender was gone (killed, or timed out) before the answer reached it
    took_s: float = 0.0  # how long Twilio (Prism) took to answer

    @property
    def code(self) -> str:
        match = re.search(r"Reply (\d{3})a", self.body)
        assert match, f"no reply code in {self.body!r}"
        return match.group(1)

    @property
    def ack_url(self) -> str:
        match = re.search(r"(https?://\S+/a/\S+)", self.body)
        assert match, f"no ack link in {self.body!r}"
        return match.group(1)


class TwilioProxy:
    """Recording, failure-injecting reverse proxy in front of Prism."""

    def __init__(self, prism: Prism, port: int | None = None):
        self.prism = prism
        self.port = port or free_port()
        self.requests: list[Sms] = []  # every Messages.json request that reached the proxy
        self._lock = threading.Lock()
        self._inject: list[str] = []  # "500" or "invalid", consumed one per request
        self._server: ThreadingHTTPServer | None = None
        self._release = threading.Event()
        self.held = 0  # requests stopped by "hold" so far
        self.notifier_url = ""  # where inbound SMS webhooks go (set by the test)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, *modes: str) -> None:
        """Queue failures for the next requests: "500" (answered here), "invalid"
        (the 'To' parameter is dropped, so Prism refuses the request with 422) or
        "hang" (never answered: the sender is stuck mid-send, e.g. to be killed) or
        "hold" (kept until ``release()``, then passed to Prism: a send in flight)."""
        with self._lock:
            self._inject.extend(modes)

    def start(self) -> TwilioProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                received_at = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                params = dict(parse_qsl(body.decode()))
                with proxy._lock:
                    mode = proxy._inject.pop(0) if proxy._inject else None
                if mode == "hang":
                    with proxy._lock:
                        proxy.requests.append(
                            Sms(
                                params.get("To", "(none)"),
                                params.get("Body", ""),
                                params.get("StatusCallback", ""),
                                0,
                                received_at,
                            )
                        )
                    time.sleep(30)
                    self.close_connection = True
                    return
                if mode == "hold":
                    with proxy._lock:
                        proxy.held += 1
                    proxy._release.wait(30)
                if mode == "500":
                    status, payload, ctype = (
                        500,
                        json.dumps({"code": 20500, "message": "Internal Server Error", "status": 500}).encode(),
                        "application/json",
                    )
                else:
                    if mode == "invalid":
                        params.pop("To", None)
                    headers = {
                        k: v for k, v in self.headers.items() if k.lower() in ("authorization", "accept", "user-agent")
                    }
                    response = httpx.post(proxy.prism.url + self.path, data=params, headers=headers, timeout=30)
                    status, payload = response.status_code, response.content
                    ctype = response.headers.get("content-type", "application/json")
                sms = None
                if self.path.endswith("/Messages.json"):
                    sms = Sms(
                        params.get("To", "(none)"),
                        params.get("Body", ""),
                        params.get("StatusCallback", ""),
                        status,
                        received_at,
                        took_s=time.time() - received_at,
                    )
                    with proxy._lock:
                        proxy.requests.append(sms)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # Twilio took it; the sender never heard
                    self.close_connection = True
                    if sms is not None:
                        sms.answered = False

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def release(self) -> None:
        """Let every held request (and any later one) through to Prism."""
        self._release.set()

    def stop(self) -> None:
        self._release.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def delivered(self, to: str | None = None) -> list[Sms]:
        """Messages Twilio accepted (2xx), optionally to one number."""
        with self._lock:
            return [r for r in self.requests if 200 <= r.status < 300 and (to is None or r.to == to)]

    def first_seen(self, refs: list[str], timeout_s: float = 60.0) -> dict[str, float]:
        """When each reference first appeared in an SMS body that reached the mock,
        waiting until all have or ``timeout_s`` passes (for latency benchmarks)."""
        arrived: dict[str, float] = {}
        deadline = time.time() + timeout_s
        while time.time() < deadline and len(arrived) < len(refs):
            for sms in self.delivered():
                for ref in refs:
                    if ref not in arrived and ref in sms.body:
                        arrived[ref] = sms.received_at
            time.sleep(0.2)
        return arrived

    def phone(self, number: str) -> Phone:
        return Phone(self, number)

    def send_status(self, sms: Sms, status: str, error_code: str = "") -> httpx.Response:
        params = {
            "MessageSid": "SM" + "a" * 32,
            "MessageStatus": status,
            "To": sms.to,
            "From": FROM_NUMBER,
            "AccountSid": ACCOUNT_SID,
        }
        if error_code:
            params["ErrorCode"] = error_code
        return signed_post(sms.status_callback, params)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def signed_post(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> httpx.Response:
    signature = RequestValidator(token).compute_signature(url, params)
    return httpx.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=10)


class Phone:
    def __init__(self, twilio: TwilioProxy, number: str):
        self.twilio, self.number = twilio, number
        self.seen = 0  # messages already consumed by expect_sms

    def messages(self) -> list[Sms]:
        return self.twilio.delivered(self.number)

    def expect_sms(self, contains: str = "", timeout_s: float = 30.0) -> Sms:
        """The next message to this phone (after those already expected), waiting for it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            fresh = self.messages()[self.seen :]
            for i, sms in enumerate(fresh):
                if contains in sms.body:
                    self.seen += i + 1
                    return sms
            time.sleep(0.1)
        raise AssertionError(f"{self.number}: no SMS containing {contains!r}; got {[m.body for m in self.messages()]}")

    def expect_no_sms(self, settle_s: float = 2.0) -> None:
        time.sleep(settle_s)
        fresh = self.messages()[self.seen :]
        assert not fresh, f"{self.number} got unexpected SMS: {[m.body for m in fresh]}"

    def reply(self, text: str, message_sid: str | None = None) -> str:
        """Send an SMS from this phone to Beacon (a signed inbound webhook); returns the TwiML reply."""
        url = f"{self.twilio.notifier_url}/webhooks/twilio/sms"
        sid = message_sid or f"SM{abs(hash((self.number, text, time.time()))):032x}"[:34]
        params = {"From": self.number, "To": FROM_NUMBER, "Body": text, "MessageSid": sid, "AccountSid": ACCOUNT_SID}
        response = signed_post(url, params)
        assert response.status_code == 200, response.text
        return response.text

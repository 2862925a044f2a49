"""Delivery channels (thin shell): Twilio SMS, SMTP email, and the dev-mode outbox.

Each ``send`` returns the provider's message id or raises ``DeliveryError``.
Transient failures (HTTP 5xx, 429, timeouts, connection errors, SMTP 4xx) are
retried with exponential backoff; permanent ones (HTTP 4xx such as an invalid
number, SMTP 5xx such as a refused recipient) are not, so the engine can fall back
to the person's next contact method at once.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Protocol

import aiosmtplib
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client


class DeliveryError(Exception):
    def __init__(self, reason: str, transient: bool):
        super().__init__(reason)
        self.reason = reason  # short class, e.g. "http_422", "timeout", "smtp_550": safe for labels
        self.transient = transient


class Channel(Protocol):
    name: str
    mode: str  # "sms"/"email" for a real provider, "outbox" in dev mode

    async def send(
        self, to: str, subject: str, body: str, status_callback: str | None, meta: dict[str, object]
    ) -> str: ...


def _retrying(attempts: int, base_s: float) -> AsyncRetrying:
    return AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=base_s, max=base_s * 16),
        retry=retry_if_exception(lambda exc: isinstance(exc, DeliveryError) and exc.transient),
        reraise=True,
    )


class TwilioSms:
    name = "sms"
    mode = "sms"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str,
        api_base_url: str = "",
        timeout_s: float = 10.0,
        attempts: int = 4,
        backoff_s: float = 0.5,
    ):
        self.account_sid, self.auth_token, self.from_number = account_sid, auth_token, from_number
        self.api_base_url, self.timeout_s = api_base_url, timeout_s
        self.attempts, self.backoff_s = attempts, backoff_s
        self._client: Client | None = None

    def _get_client(self) -> Client:
        # Created lazily inside the running event loop (aiohttp sessions need one).
        if self._client is None:
            self._client = Client(self.account_sid, self.auth_token, http_client=AsyncTwilioHttpClient())
            if self.api_base_url:
                self._client.api.base_url = self.api_base_url.rstrip("/")
        return self._client

    async def _send_once(self, to: str, body: str, status_callback: str | None) -> str:
        kwargs: dict[str, object] = {"to": to, "from_": self.from_number, "body": body}
        if status_callback:
            kwargs["status_callback"] = status_callback
        try:
            message = await asyncio.wait_for(self._get_client().messages.create_async(**kwargs), self.timeout_s)
        except TwilioRestException as exc:
            transient = exc.status >= 500 or exc.status == 429
            raise DeliveryError(f"http_{exc.status}", transient) from exc
        except TimeoutError as exc:
            raise DeliveryError("timeout", True) from exc
        except OSError as exc:  # connection refused/reset (aiohttp's errors derive from OSError)
            raise DeliveryError("connection", True) from exc
        except Exception as exc:  # aiohttp.ClientError and friends: treat as network trouble
            raise DeliveryError(type(exc).__name__[:40], True) from exc
        return str(message.sid)

    async def send(self, to: str, subject: str, body: str, status_callback: str | None, meta: dict[str, object]) -> str:
        async for attempt in _retrying(self.attempts, self.backoff_s):
            with attempt:
                return await self._send_once(to, body, status_callback)
        raise AssertionError("unreachable")


class SmtpEmail:
    name = "email"
    mode = "email"

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        sender: str,
        starttls: bool = True,
        ca_file: Path | None = None,
        timeout_s: float = 10.0,
        attempts: int = 4,
        backoff_s: float = 0.5,
    ):
        self.host, self.port, self.username, self.password = host, port, username, password
        self.sender, self.starttls, self.timeout_s = sender, starttls, timeout_s
        self.attempts, self.backoff_s = attempts, backoff_s
        self.tls_context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)

    async def _send_once(self, message: EmailMessage) -> None:
        try:
            await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                start_tls=self.starttls,
                username=self.username or None,
                password=self.password or None,
                tls_context=self.tls_context,
                timeout=self.timeout_s,
            )
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(f"smtp_{exc.code}", exc.code < 500) from exc
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(type(exc).__name__[:40], True) from exc

    async def send(self, to: str, subject: str, body: str, status_callback: str | None, meta: dict[str, object]) -> str:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, to, subject
        # Deterministic Message-ID: a resend after a crash is recognisable as the same mail.
        message["Message-ID"] = make_msgid(
            idstring=str(meta.get("ledger_key", "")).replace(":", ".")[:60], domain="beacon.invalid"
        )
        message.set_content(body)
        async for attempt in _retrying(self.attempts, self.backoff_s):
            with attempt:
                await self._send_once(message)
        return str(message["Message-ID"])


class Outbox:
    """Dev mode: append what would be sent to a JSONL file (``make run`` prints it)."""

    mode = "outbox"

    def __init__(self, name: str, path: Path):
        self.name, self.path = name, path

    async def send(self, to: str, subject: str, body: str, status_callback: str | None, meta: dict[str, object]) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = {
            "channel": self.name,
            "to": to,
            "subject": subject,
            "body": body,
            **meta,
            "written_at": datetime.now(UTC).isoformat(),
        }
        with self.path.open("a") as out:
            out.write(json.dumps(line) + "\n")
        return f"outbox-{meta.get('ledger_key', '')}"

"""A real SMTP server for tests (aiosmtpd) with STARTTLS and AUTH required.

The TLS certificate is self-signed, made here with ``cryptography`` for
127.0.0.1; the notifier trusts it through ``BEACON_SMTP_CA_FILE``. ``stop()``
takes the server down (to test the fallback to SMS), ``start()`` brings it back.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from beacon.runtime.broker import free_port

USERNAME, PASSWORD = "beacon", "smtp-test-password"


def make_self_signed_cert(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@dataclass
class Mail:
    to: list[str]
    subject: str
    body: str
    message_id: str
    received_at: float = field(default_factory=time.time)  # wall clock when the server took it


class _Handler:
    def __init__(self, inbox: list[Mail]):
        self.inbox = inbox

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        assert session.authenticated, "mail accepted without AUTH"
        message = message_from_bytes(envelope.content, policy=policy.default)
        body = message.get_body(("plain",))
        self.inbox.append(
            Mail(
                list(envelope.rcpt_tos),
                str(message["Subject"]),
                body.get_content() if body else "",
                str(message["Message-ID"]),
            )
        )
        return "250 OK"


def _authenticator(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USERNAME.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


class SmtpServer:
    def __init__(self, cert_dir: Path, port: int | None = None):
        self.port = port or free_port()
        self.cert_file, self.key_file = make_self_signed_cert(cert_dir)
        self.inbox: list[Mail] = []
        self._controller: Controller | None = None

    def start(self) -> SmtpServer:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(self.cert_file, self.key_file)
        self._controller = Controller(
            _Handler(self.inbox),
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="127.0.0.1",
            tls_context=tls,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            authenticator=_authenticator,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def expect_email(self, to: str, contains: str = "", timeout_s: float = 30.0) -> Mail:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for mail in list(self.inbox):
                if to in mail.to and contains in mail.body:
                    return mail
            time.sleep(0.1)
        raise AssertionError(
            f"no email to {to} containing {contains!r}; inbox: {[(m.to, m.subject) for m in self.inbox]}"
        )

    def emails_to(self, to: str) -> list[Mail]:
        return [m for m in self.inbox if to in m.to]

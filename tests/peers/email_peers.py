"""Loopback SMTP peers for the email connector's tests: an aiosmtpd server (its own thread) that
receives the hub's outbound mail, records it, and can refuse on demand with real SMTP replies;
plus a self-signed certificate made with ``cryptography`` for STARTTLS and implicit TLS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import threading
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.peers.http import free_port

#: What an injected HTTP-style failure (the contract speaks in HTTP statuses) becomes on the
#: SMTP wire, and at which command the sink answers it.
SMTP_FAILURES: dict[int, tuple[str, str]] = {
    503: ("DATA", "451 4.3.0 Temporary local problem, try again later"),
    429: ("MAIL", "421 4.7.0 Too many connections, slow down"),
    400: ("RCPT", "550 5.1.1 <customer@example.org>: Recipient address rejected: user unknown"),
}


@dataclass
class ReceivedMail:
    """One message the sink accepted, with how it was delivered."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage
    tls: bool
    authenticated: bool
    login: str | None


class SmtpSink:
    """An SMTP server on 127.0.0.1 recording accepted mail in :attr:`requests`.

    :meth:`fail_next` takes the contract's HTTP-style status and answers the SMTP reply of
    :data:`SMTP_FAILURES` at the matching command instead.
    """

    def __init__(
        self,
        *,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        credentials: tuple[str, str] | None = None,
        auth_exclude_mechanism: list[str] | None = None,
    ) -> None:
        self.requests: list[ReceivedMail] = []
        self.refused: list[str] = []
        self.logins: list[str] = []
        self._failures: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._credentials = credentials
        self.port = free_port()
        kwargs: dict[str, Any] = {}
        if implicit_tls:
            kwargs["ssl_context"] = tls_context
            kwargs["server_hostname"] = "127.0.0.1"
        elif tls_context is not None:
            kwargs["tls_context"] = tls_context
            kwargs["require_starttls"] = True
        if credentials is not None:
            kwargs["authenticator"] = self._authenticate
            kwargs["auth_required"] = True
            kwargs["auth_exclude_mechanism"] = auth_exclude_mechanism or []
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, **kwargs)

    def fail_next(
        self, status: int, body: Any = None, times: int = 1, headers: dict[str, str] | None = None
    ) -> None:
        with self._lock:
            self._failures += [SMTP_FAILURES[status]] * times

    def _failure_at(self, command: str) -> str | None:
        with self._lock:
            if self._failures and self._failures[0][0] == command:
                reply = self._failures.pop(0)[1]
                self.refused.append(reply)
                return reply
        return None

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert self._credentials is not None
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append(f"{mechanism}:{login}")
        if (login, password) != self._credentials:
            # handled=False: aiosmtpd answers "535 5.7.8 Authentication credentials invalid".
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=login)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        failure = self._failure_at("MAIL")
        if failure:
            return failure
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        failure = self._failure_at("RCPT")
        if failure:
            return failure
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        failure = self._failure_at("DATA")
        if failure:
            return failure
        raw = envelope.original_content or b""
        message = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.requests.append(
                ReceivedMail(
                    mail_from=envelope.mail_from or "",
                    rcpt_tos=list(envelope.rcpt_tos),
                    raw=raw,
                    message=message,
                    # session.ssl is set by STARTTLS only; implicit TLS shows on the transport.
                    tls=session.ssl is not None
                    or (
                        server.transport is not None
                        and server.transport.get_extra_info("ssl_object") is not None
                    ),
                    authenticated=bool(session.authenticated),
                    login=session.auth_data if session.authenticated else None,
                )
            )
        return "250 2.0.0 Ok: queued as 4BXyZ1"

    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


@dataclass(frozen=True)
class Certificate:
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def self_signed(directory: Path) -> Certificate:
    """A self-signed certificate for 127.0.0.1 / localhost, written as PEM into ``directory``."""
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
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_file, key_file)

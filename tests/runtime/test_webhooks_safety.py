"""The webhook sender's safety and the pure parts of delivery: the address guard (checked with
addresses, nothing connects anywhere but loopback), URLs refused, the request made to the
address checked with the name kept in ``Host`` and in TLS, redirects not followed, proxies
from the environment ignored, the answer read up to the cap, timeouts; signatures checked
with the reference library; backoff and Retry-After; the settings."""

from __future__ import annotations

import base64
import contextlib
import random
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from standardwebhooks import Webhook

from hub.config import WebhookSettings, load_settings
from hub.runtime.webhooks.guard import check_url, refusal
from hub.runtime.webhooks.retry import backoff_seconds, next_attempt, retry_after_seconds
from hub.runtime.webhooks.sender import (
    EXCERPT_CHARS,
    AddressRefused,
    ConnectionFailed,
    Sender,
    SendTimeout,
    excerpt,
)
from hub.runtime.webhooks.signing import delivery_headers, new_secret
from tests.peers.http import closed_port
from tests.peers.webhook_receiver import WebhookReceiver

ALLOWED = WebhookSettings(
    allow_private_networks=True, total_timeout_seconds=3, connect_timeout_seconds=1
)
GUARDED = WebhookSettings(total_timeout_seconds=3, connect_timeout_seconds=1)
BODY = b'{"id":"0190f5d2-0000-7000-8000-000000000001","type":"test"}'


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as peer:
        yield peer


class TlsServer:
    """A TLS server on loopback with a self-signed certificate for ``localhost``: it records
    the name each client asks for (SNI) and serves nothing else."""

    def __init__(self, directory: Path) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
            .sign(key, hashes.SHA256())
        )
        cert_file, key_file = directory / "cert.pem", directory / "key.pem"
        cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert_file, key_file)
        self.context.sni_callback = self._named
        self.names: list[str] = []
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _named(self, _conn: Any, name: str | None, _context: Any) -> None:
        self.names.append(str(name))

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.socket.accept()
            except OSError:  # closed
                return
            with conn, contextlib.suppress(OSError):
                self.context.wrap_socket(conn, server_side=True).close()

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[TlsServer]:
    server = TlsServer(tmp_path)
    try:
        yield server
    finally:
        server.close()


def headers(secret: str = "whsec_dGVzdC10ZXN0LXRlc3QtdGVzdC10ZXN0") -> dict[str, str]:
    return delivery_headers("msg_1", datetime.now(UTC), BODY, [secret])


# -- the address guard -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.0.0.1",
        "10.255.1.2",
        "172.16.5.4",
        "192.168.0.10",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # shared address space (CGNAT)
        "0.0.0.0",
        "224.0.0.251",  # multicast
        "255.255.255.255",
        "::1",
        "::",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "fd00::1",  # unique local
        "fe80::1",  # link-local
        "ff02::1",  # multicast
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2001:db8::1",  # documentation
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert refusal(ip_address(address)) is not None


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "93.184.215.14", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(ip_address(address)) is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://example.com/x", "http"),
        ("file:///etc/passwd", "http"),
        ("https://user:pw@example.com/x", "credentials"),
        ("https://token@example.com/x", "credentials"),
        ("http:///nohost", "no host"),
        ("http://example.com:99999/", "valid"),
    ],
)
def test_urls_other_than_plain_http_are_refused(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_url(url)


async def test_loopback_is_refused_unless_allowed(receiver: WebhookReceiver) -> None:
    localhost = receiver.url.replace("127.0.0.1", "localhost")
    async with Sender(GUARDED) as sender:
        for url in (receiver.url, localhost, f"http://[::ffff:127.0.0.1]:{receiver.port}/"):
            with pytest.raises(AddressRefused, match="loopback"):
                await sender.send(url, BODY, headers())
    assert receiver.arrivals == []
    async with Sender(ALLOWED) as sender:
        answer = await sender.send(localhost, BODY, headers())
    assert answer.status_code == 200
    (seen,) = receiver.requests
    # Connected to an address, the name kept for the server.
    assert seen.headers["host"] == f"localhost:{receiver.port}"
    assert seen.body == BODY


async def test_a_name_that_cannot_be_resolved_is_a_failure_to_retry() -> None:
    async with Sender(ALLOWED) as sender:
        for url in ("http://a..b/hook", f"http://{'a' * 64}.example/hook"):
            with pytest.raises(ConnectionFailed, match="does not resolve"):
                await sender.send(url, BODY, headers())


async def test_https_goes_to_the_address_checked_with_the_name_in_tls(
    tls_server: TlsServer,
) -> None:
    """The connection is made to the resolved address; the name is sent in TLS (SNI) and the
    certificate is checked against the system's CAs (a self-signed one is refused)."""
    url = f"https://localhost:{tls_server.port}/hook"
    async with Sender(ALLOWED) as sender:
        with pytest.raises(ConnectionFailed, match="CERTIFICATE_VERIFY_FAILED"):
            await sender.send(url, BODY, headers())
    assert tls_server.names == ["localhost"]


async def test_proxies_from_the_environment_are_not_used(
    receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = closed_port()
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(variable, dead)
    async with Sender(ALLOWED) as sender:
        answer = await sender.send(receiver.url, BODY, headers())
    assert answer.ok


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_WEBHOOKS__ALLOW_PRIVATE_NETWORKS", "true")
    monkeypatch.setenv("HUB_WEBHOOKS__RETRY_PERIOD", "PT36H")
    monkeypatch.setenv("HUB_WEBHOOKS__SECRET_GRACE", "00:01:30")
    webhooks = load_settings().webhooks
    assert webhooks.allow_private_networks
    assert (webhooks.retry_period, webhooks.secret_grace) == (
        timedelta(hours=36),
        timedelta(seconds=90),
    )
    assert (webhooks.max_in_flight, webhooks.response_cap_bytes) == (16, 4096)


# -- the request and its answer ----------------------------------------------------------------


async def test_a_request_is_signed_as_the_specification_says(receiver: WebhookReceiver) -> None:
    old, new = new_secret(), new_secret()
    assert old.startswith("whsec_")
    assert len(base64.b64decode(old.removeprefix("whsec_"))) == 24
    Webhook(old)  # the reference library takes it as it is
    at = datetime.now(UTC)
    async with Sender(ALLOWED) as sender:
        await sender.send(receiver.url, BODY, delivery_headers("evt_1", at, BODY, [new, old]))
        await sender.send(receiver.url, BODY, delivery_headers("evt_2", at, BODY, [new]))
    both, only_new = receiver.requests
    assert both.headers["webhook-id"] == "evt_1"
    assert both.headers["webhook-timestamp"] == str(int(at.timestamp()))
    assert both.headers["content-type"] == "application/json"
    assert both.headers["user-agent"] == "interaction-hub-webhooks/1"
    assert both.verifies(old)
    assert both.verifies(new)
    assert (both.signatures_with(old), both.signatures_with(new)) == (1, 1)  # each alone
    assert not only_new.verifies(old)
    assert only_new.verifies(new)


async def test_redirects_are_not_followed(receiver: WebhookReceiver) -> None:
    receiver.answer(302, headers={"location": f"http://127.0.0.1:{receiver.port}/elsewhere"})
    async with Sender(ALLOWED) as sender:
        answer = await sender.send(receiver.url, BODY, headers())
    assert answer.status_code == 302
    assert not answer.ok
    assert [r.path for r in receiver.arrivals] == ["/hook"]


async def test_the_answer_is_read_up_to_the_cap(receiver: WebhookReceiver) -> None:
    receiver.answer(200, endless=True)  # a body that never ends
    settings = ALLOWED.model_copy(update={"response_cap_bytes": 4096, "total_timeout_seconds": 10})
    started = time.monotonic()
    async with Sender(settings) as sender:
        answer = await sender.send(receiver.url, BODY, headers())
    assert time.monotonic() - started < 5  # not waiting for the end (the timeout would end it)
    assert answer.ok
    assert answer.excerpt == "x" * EXCERPT_CHARS


async def test_a_slow_endpoint_times_out(receiver: WebhookReceiver) -> None:
    receiver.answer(200, delay=3)
    settings = ALLOWED.model_copy(update={"total_timeout_seconds": 0.3})
    async with Sender(settings) as sender:
        with pytest.raises(SendTimeout):
            await sender.send(receiver.url, BODY, headers())


def test_an_excerpt_has_no_control_characters() -> None:
    assert excerpt(b"ok\r\n\tfine\x00\x1b[31m\xff") == "ok   fine[31m\ufffd"
    assert len(excerpt(b"y" * 5000)) == EXCERPT_CHARS


# -- when to try again -------------------------------------------------------------------------


def test_backoff_doubles_with_jitter_up_to_the_most() -> None:
    rng = random.Random(7)
    for attempt, low, high in [(1, 2.5, 5), (2, 5, 10), (3, 10, 20), (12, 30, 60), (400, 30, 60)]:
        for _ in range(20):
            assert low <= backoff_seconds(attempt, 5, 60, rng) < high


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds("Sun, 01 Mar 2026 12:01:30 GMT", now) == 90
    assert retry_after_seconds("Sun, 01 Mar 2026 11:00:00 GMT", now) == 0
    for unreadable in (None, "", "soon", "-5", "1.5e3"):
        assert retry_after_seconds(unreadable, now) is None


def test_the_retry_period_ends_with_one_last_try() -> None:
    first = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    period = timedelta(hours=1)
    options: dict[str, Any] = {"first_attempt_at": first, "period": period}
    assert next_attempt(first, backoff=10, retry_after=None, **options) == first + timedelta(
        seconds=10
    )
    # Retry-After wins over a shorter backoff, up to the end of the period.
    assert next_attempt(first, backoff=10, retry_after=600, **options) == first + timedelta(
        minutes=10
    )
    late = first + timedelta(minutes=59)
    assert next_attempt(late, backoff=600, retry_after=None, **options) == first + period
    assert next_attempt(late, backoff=1, retry_after=86400, **options) == first + period
    assert next_attempt(first + period, backoff=1, retry_after=None, **options) is None

"""The email channel against a real SMTP server (aiosmtpd on 127.0.0.1) with STARTTLS on a trustme
certificate: the message's structure as received, credentials only over TLS, errors typed and secret-free."""

from __future__ import annotations

import email
import email.policy
import logging
import ssl
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from reports.channels import DeliveryError, SmtpEmail, build_email, deliver

SENDER = "costagent@example.com"
TO = ["ops@example.com", "ml@example.com"]
USER, PASSWORD = "digest-bot", "s3cret-Pa55word!"


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real (tiny, single-colour) PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@dataclass(frozen=True)
class Parts:
    """Shaped like reports.digest_html.EmailParts."""

    subject: str = "costagent digest: $16,768.27/month for everyone"
    text: str = "costagent digest\n\n$16,768.27/month in savings across 4 findings.\n"
    html: str = ('<html><body><h1>costagent digest</h1><img src="cid:savings-by-kind" alt="by kind">'
                 '<img src="cid:idle-by-day" alt="by day"></body></html>')
    images: dict[str, bytes] = field(default_factory=lambda: {"savings-by-kind": png(4, 3, (200, 30, 30)),
                                                              "idle-by-day": png(2, 2, (30, 30, 200))})


@dataclass
class Inbox:
    """The aiosmtpd handler: keeps what arrives, answers DATA/RCPT as scripted."""

    received: list[dict[str, Any]] = field(default_factory=list)
    logins: list[tuple[str, str, bool]] = field(default_factory=list)
    data_answers: list[str] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    password: str = PASSWORD

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_answers:
            return self.data_answers.pop(0)
        self.received.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "content": envelope.content,
                              "tls": _tls(server), "login": session.login_data})
        return "250 Message accepted for delivery"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append((login, password, _tls(server)))
        # handled=False: aiosmtpd answers 235 or 535 itself
        return AuthResult(success=login == USER and password == self.password, handled=False, auth_data=auth_data)


def _tls(server: Any) -> bool:
    return server.transport.get_extra_info("ssl_object") is not None


class AnyPortController(Controller):
    """aiosmtpd's Controller on a free port (port 0): learn the port before it connects to itself."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., tuple[Inbox, int]]]:
    """Start an SMTP server: ``start(**aiosmtpd SMTP options) -> (inbox, port)``."""
    started: list[Controller] = []

    def start(**options: Any) -> tuple[Inbox, int]:
        inbox = Inbox()
        if options.pop("with_auth", False):
            options["authenticator"] = inbox.authenticate
        controller = AnyPortController(inbox, hostname="127.0.0.1", port=0, **options)
        controller.start()
        started.append(controller)
        return inbox, controller.port

    yield start
    for controller in started:
        controller.stop()


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def test_digest_arrives_over_starttls_as_text_and_html_with_inline_images(smtp_server, server_tls,
                                                                         client_tls) -> None:
    inbox, port = smtp_server(tls_context=server_tls, require_starttls=True)
    parts = Parts()
    SmtpEmail("127.0.0.1", port, SENDER, TO, ssl_context=client_tls, timeout=5).send(parts)
    (got,) = inbox.received
    assert got["tls"] and got["from"] == SENDER and got["to"] == TO
    msg = parsed(got["content"])
    assert msg["Subject"] == parts.subject and msg["From"] == SENDER and msg["To"] == ", ".join(TO)
    assert msg.get_content_type() == "multipart/alternative"
    text, related = msg.get_payload()
    assert text.get_content_type() == "text/plain" and text.get_content().replace("\r\n", "\n") == parts.text
    assert related.get_content_type() == "multipart/related"
    html, *images = related.get_payload()
    assert html.get_content_type() == "text/html" and html.get_content().strip() == parts.html
    assert {i["Content-ID"]: i.get_content() for i in images} == {f"<{k}>": v for k, v in parts.images.items()}
    for image in images:
        assert image.get_content_type() == "image/png" and image.get_content_disposition() == "inline"
        assert f'src="cid:{image["Content-ID"].strip("<>")}"' in html.get_content()


def test_credentials_are_sent_only_inside_tls(smtp_server, server_tls, client_tls) -> None:
    inbox, port = smtp_server(tls_context=server_tls, require_starttls=True, with_auth=True, auth_required=True)
    SmtpEmail("127.0.0.1", port, SENDER, TO, USER, PASSWORD, ssl_context=client_tls, timeout=5).send(Parts())
    assert inbox.logins == [(USER, PASSWORD, True)]
    assert len(inbox.received) == 1 and inbox.received[0]["login"] == USER.encode()


def test_credentials_without_tls_are_refused_by_configuration() -> None:
    with pytest.raises(ValueError, match="without TLS") as err:
        SmtpEmail("127.0.0.1", 25, SENDER, TO, USER, PASSWORD, starttls=False)
    assert PASSWORD not in str(err.value)


def test_a_server_without_starttls_never_sees_the_credentials(smtp_server) -> None:
    inbox, port = smtp_server(with_auth=True, auth_require_tls=False)  # it would take a password in clear
    channel = SmtpEmail("127.0.0.1", port, SENDER, TO, USER, PASSWORD, timeout=5)
    with pytest.raises(DeliveryError, match="offers no STARTTLS; refusing to send without TLS") as err:
        deliver(lambda: channel.send(Parts()), sleep=lambda s: None)
    assert not err.value.retryable
    assert inbox.logins == [] and inbox.received == []
    assert PASSWORD not in str(err.value) + repr(channel)


def test_a_wrong_password_is_final_and_never_shown(smtp_server, server_tls, client_tls, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    inbox, port = smtp_server(tls_context=server_tls, with_auth=True)
    inbox.password = "the-right-one"
    channel = SmtpEmail("127.0.0.1", port, SENDER, TO, USER, PASSWORD, ssl_context=client_tls, timeout=5)
    with pytest.raises(DeliveryError, match="SMTPAuthenticationError: 535") as err:
        deliver(lambda: channel.send(Parts()), sleep=lambda s: None)
    assert not err.value.retryable and inbox.received == []
    assert inbox.logins and all(tls for _, _, tls in inbox.logins)  # smtplib tries PLAIN, then LOGIN
    assert PASSWORD not in str(err.value) and PASSWORD not in caplog.text


def test_a_server_requiring_starttls_refuses_a_plain_client(smtp_server, server_tls) -> None:
    inbox, port = smtp_server(tls_context=server_tls, require_starttls=True)
    channel = SmtpEmail("127.0.0.1", port, SENDER, TO, starttls=False, timeout=5)
    with pytest.raises(DeliveryError, match="530") as err:
        channel.send(Parts())
    assert not err.value.retryable and inbox.received == []


def test_an_untrusted_certificate_is_refused(smtp_server, server_tls) -> None:
    inbox, port = smtp_server(tls_context=server_tls, require_starttls=True)
    channel = SmtpEmail("127.0.0.1", port, SENDER, TO, USER, PASSWORD, timeout=5)  # system CAs: not ours
    with pytest.raises(DeliveryError, match="certificate verify failed") as err:
        channel.send(Parts())
    assert not err.value.retryable and inbox.logins == [] and inbox.received == []


def test_a_transient_4xx_is_retried(smtp_server, server_tls, client_tls) -> None:
    inbox, port = smtp_server(tls_context=server_tls, require_starttls=True)
    inbox.data_answers.append("451 4.3.0 try again later")
    sleeps: list[float] = []
    channel = SmtpEmail("127.0.0.1", port, SENDER, TO, ssl_context=client_tls, timeout=5)
    deliver(lambda: channel.send(Parts()), attempts=3, backoff=5.0, sleep=sleeps.append)
    assert sleeps == [5.0] and len(inbox.received) == 1


def test_partly_refused_recipients_are_reported_without_a_resend(smtp_server, server_tls, client_tls) -> None:
    inbox, port = smtp_server(tls_context=server_tls)
    inbox.refuse.add("nobody@example.com")
    channel = SmtpEmail("127.0.0.1", port, SENDER, [TO[0], "nobody@example.com"], ssl_context=client_tls, timeout=5)
    with pytest.raises(DeliveryError, match=r"1 of 2 recipients refused: nobody@example.com \(550\)") as err:
        deliver(lambda: channel.send(Parts()), sleep=lambda s: None)
    assert not err.value.retryable and [r["to"] for r in inbox.received] == [[TO[0]]]


def test_implicit_tls(smtp_server, server_tls, client_tls) -> None:
    # aiosmtpd only knows STARTTLS as TLS: it must be told AUTH is fine on this (implicitly TLS) port
    inbox, port = smtp_server(ssl_context=server_tls, with_auth=True, auth_require_tls=False)
    SmtpEmail("127.0.0.1", port, SENDER, TO, USER, PASSWORD, starttls=False, implicit_tls=True,
              ssl_context=client_tls, timeout=5).send(Parts())
    assert inbox.logins == [(USER, PASSWORD, True)] and inbox.received[0]["tls"]


def test_nothing_listening_is_retryable() -> None:
    channel = SmtpEmail("127.0.0.1", 9, SENDER, TO, timeout=2)  # the discard port: closed here
    with pytest.raises(DeliveryError) as err:
        channel.send(Parts())
    assert err.value.retryable and "\n" not in str(err.value)


def test_a_subject_cannot_add_headers() -> None:
    msg = parsed(build_email(Parts(subject="Digest for ml\r\nBcc: evil@example.com"), SENDER, TO).as_bytes())
    assert msg["Bcc"] is None and msg["Subject"] == "Digest for ml Bcc: evil@example.com"


@pytest.mark.parametrize("bad", ["ops@example.com\r\nBcc: evil@example.com", "two words@example.com"])
def test_addresses_with_line_breaks_or_spaces_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not an email address"):
        SmtpEmail("127.0.0.1", 25, SENDER, [bad])

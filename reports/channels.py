"""Delivery channels for the digests: a Slack incoming webhook, a Slack bot (``chat.postMessage``), SMTP
email, and a file. Each channel's ``send`` makes one attempt; ``deliver`` is the one place that retries.

Every failure becomes a ``DeliveryError(channel, message)`` with a one-line message that says whether a
retry may help. Secrets (a webhook URL's path, a bot token, an SMTP password) never appear in a message,
in our log lines, or in the Slack SDK's log lines (its logger redacts them); errors are raised without
their SDK cause attached, so no traceback carries one either.
"""

from __future__ import annotations

import json
import logging
import os
import re
import smtplib
import ssl
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import quote, urlsplit

from reports.digest_slack import check_limits

log = logging.getLogger(__name__)
T = TypeVar("T")

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_WHITESPACE = re.compile(r"\s+")
#: Slack Web API error codes worth another try (the rest, e.g. invalid_auth, channel_not_found, are final).
_SLACK_TRANSIENT = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}


class DeliveryError(Exception):
    """A digest could not be delivered through ``channel``; ``message`` is one line without secrets.

    ``retryable``: a later attempt may succeed (network, 5xx, 429, SMTP 4xx); ``retry_after``: seconds the
    server asked us to wait, when it said."""

    def __init__(self, channel: str, message: str, *, retryable: bool = False,
                 retry_after: float | None = None) -> None:
        self.channel = channel
        self.message = _WHITESPACE.sub(" ", message).strip()[:500]
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(f"{channel}: {self.message}")


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            text = text.replace(form, "***")
    return text


def _describe(exc: BaseException, secrets: Sequence[str]) -> str:
    detail = str(exc) or exc.__class__.__name__
    return _redact(f"{exc.__class__.__name__}: {detail}", secrets)


def deliver(send: Callable[[], T], *, attempts: int = 3, backoff: float = 1.0, max_delay: float = 60.0,
            sleep: Callable[[float], None] = time.sleep) -> T:
    """Call ``send`` until it succeeds, at most ``attempts`` times; retry only a retryable DeliveryError.

    Waits ``backoff * 2**(n-1)`` seconds before the n-th retry, or the server's Retry-After, both capped at
    ``max_delay``. The last error is raised, its message noting the number of attempts."""
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(1, attempts + 1):
        try:
            return send()
        except DeliveryError as error:
            if not error.retryable or attempt == attempts:
                if attempt > 1:
                    raise DeliveryError(error.channel, f"{error.message} (gave up after {attempt} attempts)",
                                        retryable=error.retryable, retry_after=error.retry_after) from None
                raise
            delay = error.retry_after if error.retry_after is not None else backoff * 2 ** (attempt - 1)
            delay = max(0.0, min(delay, max_delay))
            log.warning("delivery attempt %d of %d failed, retrying in %.1f s: %s", attempt, attempts, delay, error)
            sleep(delay)
    raise AssertionError("unreachable")


class _RedactingFilter(logging.Filter):
    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        clean = _redact(text, self.secrets)
        if clean != text:
            record.msg, record.args = clean, None
        return True


def _sdk_logger(secrets: Sequence[str]) -> logging.Logger:
    """A logger for one Slack SDK client, below ours in the hierarchy, whose records lose the secrets (the
    SDK logs request URLs at DEBUG level: a webhook's URL is its secret)."""
    sdk_log = logging.Logger(f"{__name__}.slack_sdk")  # noqa: LOG001 (one per client, not registered)
    sdk_log.parent = log
    sdk_log.addFilter(_RedactingFilter(secrets))
    return sdk_log


def _check_transport(url: str, what: str) -> None:
    """Secrets travel over HTTPS; plain HTTP only to this machine (tests, a local relay)."""
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK):
        return
    raise ValueError(f"{what} must be an https:// URL (got {parts.scheme or 'no'} scheme for {parts.hostname})")


def _retry_after(headers: Mapping[str, Any] | None) -> float | None:
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            value = value[0] if isinstance(value, list) and value else value
            try:
                return float(value)
            except (TypeError, ValueError):
                return None
    return None


def _check_message(channel: str, message: Mapping[str, Any]) -> None:
    problems = check_limits(message)
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise DeliveryError(channel, f"message breaks Slack's limits: {problems[0]}{more}")


class SlackWebhook:
    """A Slack incoming webhook (the URL is the secret: only its scheme and host are ever shown)."""

    def __init__(self, url: str, *, timeout: float = 30, ssl_context: ssl.SSLContext | None = None) -> None:
        from slack_sdk.webhook import WebhookClient

        _check_transport(url, "a Slack webhook URL")
        parts = urlsplit(url)
        segments = [seg for seg in parts.path.split("/") if len(seg) >= 8 and seg != "services"]
        self._secrets = [url, parts.path, parts.query, *segments]
        self.name = f"slack-webhook {parts.scheme}://{parts.netloc}/…"
        self._client = WebhookClient(url, timeout=max(1, int(timeout)), ssl=ssl_context, retry_handlers=[],
                                     logger=_sdk_logger(self._secrets))

    def __repr__(self) -> str:
        return f"SlackWebhook({self.name!r})"

    def send(self, message: Mapping[str, Any]) -> None:
        """Post ``message`` (from ``render_slack``) once; DeliveryError on any failure."""
        _check_message(self.name, message)
        try:
            response = self._client.send(text=message["text"], blocks=list(message["blocks"]),
                                         unfurl_links=False, unfurl_media=False)
        except Exception as exc:  # noqa: BLE001 (network, TLS, timeouts: the SDK raises what urllib raised)
            raise DeliveryError(self.name, _describe(exc, self._secrets),
                                retryable=not isinstance(exc, ssl.SSLCertVerificationError)) from None
        if response.status_code == 200:
            return
        body = _redact(str(response.body or "")[:200], self._secrets)
        status = response.status_code
        raise DeliveryError(self.name, f"HTTP {status}: {body or 'no body'}",
                            retryable=status == 429 or status >= 500, retry_after=_retry_after(response.headers))


class SlackBot:
    """A Slack app's bot token posting with ``chat.postMessage`` to ``channel`` (an id such as C0123 or a
    name). ``base_url`` is Slack's Web API unless a test points it at a local server."""

    def __init__(self, token: str, channel: str, *, base_url: str = "https://slack.com/api/", timeout: float = 30,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        from slack_sdk import WebClient

        if not token or not token.strip():
            raise ValueError("a Slack bot token is required")
        _check_transport(base_url, "the Slack API base URL")
        self._secrets = [token, token.strip()]
        self.channel = channel
        self.name = f"slack-bot {channel}"
        self._client = WebClient(token=token, base_url=base_url, timeout=max(1, int(timeout)), ssl=ssl_context,
                                 retry_handlers=[], logger=_sdk_logger(self._secrets))

    def __repr__(self) -> str:
        return f"SlackBot({self.channel!r})"

    def send(self, message: Mapping[str, Any]) -> None:
        """Post ``message`` (from ``render_slack``) once; DeliveryError on any failure."""
        from slack_sdk.errors import SlackApiError, SlackClientError

        _check_message(self.name, message)
        try:
            self._client.chat_postMessage(channel=self.channel, text=message["text"], blocks=list(message["blocks"]),
                                          unfurl_links=False, unfurl_media=False)
        except SlackApiError as exc:
            response = exc.response
            data = response.data if isinstance(response.data, Mapping) else {}
            error = str(data.get("error") or "no error code")[:200]
            status = response.status_code
            retryable = status == 429 or status >= 500 or error in _SLACK_TRANSIENT
            raise DeliveryError(self.name, _redact(f"chat.postMessage failed: HTTP {status}, {error}", self._secrets),
                                retryable=retryable, retry_after=_retry_after(response.headers)) from None
        except SlackClientError as exc:  # a request the SDK refused to build: no retry helps
            raise DeliveryError(self.name, _describe(exc, self._secrets)) from None
        except Exception as exc:  # noqa: BLE001 (network, TLS, timeouts: whatever urllib raised)
            raise DeliveryError(self.name, _describe(exc, self._secrets),
                                retryable=not isinstance(exc, ssl.SSLCertVerificationError)) from None


class EmailContent(Protocol):
    """What an email digest carries (``reports.digest_html.EmailParts`` has these four attributes)."""

    subject: str
    text: str
    html: str
    images: Mapping[str, bytes]  # Content-ID (without <>) -> PNG bytes, referenced as ``cid:<id>`` in the html


def _one_line(value: str) -> str:
    return _WHITESPACE.sub(" ", value).strip()


def build_email(content: EmailContent, sender: str, recipients: Sequence[str]) -> EmailMessage:
    """multipart/alternative: the text, then the html as multipart/related with the PNGs inline by Content-ID."""
    msg = EmailMessage()
    msg["Subject"] = _one_line(content.subject)  # a tag in the subject cannot add a header
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip(">") or None)
    msg.set_content(content.text)
    msg.add_alternative(content.html, subtype="html")
    html_part = msg.get_payload()[1]
    for cid, png in content.images.items():
        bare = cid.strip().strip("<>")
        filename = re.sub(r"[^A-Za-z0-9._-]", "_", bare.split("@")[0]) or "image"
        html_part.add_related(png, maintype="image", subtype="png", cid=f"<{bare}>", disposition="inline",
                              filename=f"{filename}.png")
    return msg


class SmtpEmail:
    """SMTP submission, STARTTLS by default (``implicit_tls`` for port 465 instead). Credentials are only
    ever sent over TLS: without it they are refused here, and a server that offers no STARTTLS fails."""

    def __init__(self, host: str, port: int, sender: str, recipients: Sequence[str], username: str | None = None,
                 password: str | None = None, starttls: bool = True, ssl_context: ssl.SSLContext | None = None,
                 *, implicit_tls: bool = False, timeout: float = 30) -> None:
        if (username or password) and not (starttls or implicit_tls):
            raise ValueError("refusing to send SMTP credentials without TLS: enable starttls (or implicit_tls)")
        if not recipients:
            raise ValueError("an email channel needs at least one recipient")
        for address in (sender, *recipients):
            if _WHITESPACE.search(address.strip()) or "\r" in address or "\n" in address:
                raise ValueError(f"not an email address: {address!r}")
        self.host, self.port, self.sender, self.recipients = host, port, sender, list(recipients)
        self.username, self._password = username, password
        self.starttls, self.implicit_tls, self.timeout = starttls, implicit_tls, timeout
        self._context = ssl_context
        self._secrets = [password] if password else []
        self.name = f"email {host}:{port}"

    def __repr__(self) -> str:
        secret = "***" if self._password else None
        return f"SmtpEmail({self.host!r}, {self.port}, user={self.username!r}, password={secret})"

    def send(self, content: EmailContent) -> None:
        """Send the email once; DeliveryError on any failure (SMTP 4xx and network errors are retryable)."""
        message = build_email(content, self.sender, self.recipients)
        context = self._context or ssl.create_default_context()
        try:
            if self.implicit_tls:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with smtp:
                smtp.ehlo()
                if self.starttls and not self.implicit_tls:
                    if not smtp.has_extn("starttls"):
                        raise DeliveryError(self.name, "the server offers no STARTTLS; refusing to send without TLS")
                    smtp.starttls(context=context)
                    smtp.ehlo()
                if self.username or self._password:
                    smtp.login(self.username or "", self._password or "")
                refused = smtp.send_message(message)
        except DeliveryError:
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            codes = {code for code, _ in exc.recipients.values()}
            raise DeliveryError(self.name, f"all {len(exc.recipients)} recipients refused ({sorted(codes)})",
                                retryable=all(400 <= c < 500 for c in codes)) from None
        except smtplib.SMTPResponseException as exc:
            reply = exc.smtp_error
            text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
            detail = _redact(f"{exc.__class__.__name__}: {exc.smtp_code} {text}", self._secrets)
            raise DeliveryError(self.name, detail, retryable=400 <= exc.smtp_code < 500) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(self.name, _describe(exc, self._secrets)) from None
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(self.name, _describe(exc, self._secrets)) from None
        except (OSError, smtplib.SMTPException) as exc:  # refused, reset, timeout, disconnected
            raise DeliveryError(self.name, _describe(exc, self._secrets), retryable=True) from None
        if refused:
            listed = ", ".join(f"{addr} ({code})" for addr, (code, _) in sorted(refused.items()))
            raise DeliveryError(self.name, f"sent, but {len(refused)} of {len(self.recipients)} recipients refused: "
                                           f"{listed}")


class FileChannel:
    """Write the rendered digest to ``path`` (atomically: a temporary file renamed over it); a mapping is
    written as JSON (a Slack message, say), text as UTF-8."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.name = f"file {self.path}"

    def __repr__(self) -> str:
        return f"FileChannel({str(self.path)!r})"

    def send(self, content: str | bytes | Mapping[str, Any]) -> None:
        if isinstance(content, Mapping):
            data = (json.dumps(content, indent=2, ensure_ascii=False, sort_keys=False) + "\n").encode("utf-8")
        elif isinstance(content, str):
            data = content.encode("utf-8")
        else:
            data = bytes(content)
        tmp: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
            tmp = None
        except OSError as exc:
            raise DeliveryError(self.name, f"{exc.__class__.__name__}: {exc.strerror or exc}") from None
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)


__all__ = [
    "DeliveryError",
    "EmailContent",
    "FileChannel",
    "SlackBot",
    "SlackWebhook",
    "SmtpEmail",
    "build_email",
    "deliver",
]

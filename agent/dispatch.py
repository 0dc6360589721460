"""Send a digest through the configured channels: route it to each channel's audiences, apply the noise
controls, claim each (channel, audience, key) in the deliveries table, render, deliver, record.

``key`` names one digest: the digest job passes its scheduled time, so a run repeated after a restart sends
what the first did not and nothing twice. Secrets are resolved here, when a channel is opened: ``*_env``
from the environment, ``*_file`` from the file (stripped); a missing one is a ``ChannelError`` naming the
channel and the reference, never the value.
"""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from agent.daemon_config import Channel, ReportSettings, Secret
from agent.deliveries import Deliveries
from reports.channels import DeliveryError, FileChannel, SlackBot, SlackWebhook, SmtpEmail, deliver
from reports.digest import Digest, quiet, route

log = logging.getLogger(__name__)
SENT, FAILED, DUPLICATE, EMPTY = "sent", "failed", "duplicate", "empty"


class ChannelError(Exception):
    """A channel cannot be opened (a secret reference that resolves to nothing, a bad option)."""


@dataclass(frozen=True)
class Outcome:
    channel: str
    audience: str
    status: str  # sent | failed | duplicate (sent before under this key) | empty (nothing to say)
    detail: str = ""


@dataclass
class Dispatcher:
    channels: tuple[Channel, ...]
    report: ReportSettings
    deliveries: Deliveries
    env: Mapping[str, str]
    #: Opens a channel's sender; tests and callers may replace it (default: ``open_sender``).
    opener: Callable[[Channel, Mapping[str, str]], Any] | None = None
    #: ``deliver``'s sleep between retries (tests pass a no-op).
    sleep: Callable[[float], None] | None = None
    _senders: dict[str, Any] = field(default_factory=dict)

    def check(self) -> list[str]:
        """Every channel's secrets resolvable and options usable: the problems, one line each."""
        problems = []
        for channel in self.channels:
            try:
                self._sender(channel)
            except ChannelError as exc:
                problems.append(str(exc))
        return problems

    def send(self, digest: Digest, key: str) -> list[Outcome]:
        """Deliver ``digest`` (fleet-wide) under ``key`` to every channel and audience; one outcome each.
        A SIGTERM lets this finish (within the daemon's shutdown timeout): a digest is not cut in half."""
        outcomes = []
        for channel in self.channels:
            for audience, part in audiences(digest, channel.audiences):
                outcomes.append(self._one(channel, audience, part, key))
        return outcomes

    def _one(self, channel: Channel, audience: str, digest: Digest, key: str) -> Outcome:
        previous = self.deliveries.previous(channel.name, audience)
        shown = quiet(digest, min_savings_usd=self.report.min_savings_usd, mutes=self.report.mutes,
                      previous=previous, only_new_or_changed=self.report.only_new_or_changed)
        if shown.is_empty:
            return Outcome(channel.name, audience, EMPTY, "nothing to report after the noise controls")
        if not self.deliveries.claim(channel.name, audience, key):
            return Outcome(channel.name, audience, DUPLICATE, f"already sent (or being sent) as {key}")
        try:
            sender = self._sender(channel)
            content = render_for(channel, shown, self.report.top)
            kwargs = {} if self.sleep is None else {"sleep": self.sleep}
            if isinstance(sender, _Files):
                deliver(lambda: sender.send(content, audience), **kwargs)
            else:
                deliver(lambda: sender.send(content), **kwargs)
        except (DeliveryError, ChannelError) as exc:
            self.deliveries.failed(channel.name, audience, key)
            log.warning("event=delivery_failed channel=%s audience=%s %s", channel.name, audience, exc)
            return Outcome(channel.name, audience, FAILED, str(exc))
        except BaseException:
            self.deliveries.failed(channel.name, audience, key)
            raise
        self.deliveries.sent(channel.name, audience, key, {f.id: f.monthly_savings_usd for f in shown.findings})
        log.info("event=delivered channel=%s audience=%s findings=%d key=%s", channel.name, audience,
                 len(shown.findings), key)
        return Outcome(channel.name, audience, SENT, f"{len(shown.findings)} findings")

    def _sender(self, channel: Channel) -> Any:
        if channel.name not in self._senders:
            self._senders[channel.name] = (self.opener or open_sender)(channel, self.env)
        return self._senders[channel.name]


def audiences(digest: Digest, wanted: tuple[str, ...]) -> Iterator[tuple[str, Digest]]:
    """(audience, its digest) for a channel's audiences: everyone; team:X / owner:X (X's findings, possibly
    none); each:team / each:owner (one per team or owner, "(none)" for findings without the tag)."""
    routed: dict[str, dict[str, Digest]] = {}
    for audience in wanted:
        if audience == "everyone":
            yield audience, digest
            continue
        by, _, name = audience.partition(":")
        if by == "each":
            for routed_audience, part in routes(digest, name, routed).items():
                yield routed_audience, part
            continue
        part = routes(digest, by, routed).get(audience)
        yield audience, part if part is not None else replace(digest, audience=audience, findings=(), applied=(),
                                                               due=(), unread=())


def routes(digest: Digest, by: str, cache: dict[str, dict[str, Digest]]) -> dict[str, Digest]:
    if by not in cache:
        cache[by] = route(digest, by)
    return cache[by]


def render_for(channel: Channel, digest: Digest, top: int) -> Any:
    """What the channel's sender takes: a Slack message, email parts, or text for a file."""
    if channel.type in ("slack-webhook", "slack-bot"):
        from reports.digest_slack import render_slack

        return render_slack(digest, top_n=top)
    if channel.type == "email":
        from reports.digest_html import render_email

        return render_email(digest, top_n=top)
    fmt = channel.options.get("format", "markdown")
    if fmt == "html":
        from reports.digest_html import render_html

        return render_html(digest, top_n=None)
    if fmt == "csv":
        from reports.digest_csv import render_csv

        return render_csv(digest)
    if fmt == "json":
        from reports.digest_json import to_json

        return to_json(digest)
    if fmt == "text":
        from reports.digest_html import render_text

        return render_text(digest, top_n=top)
    if fmt == "slack":
        from reports.digest_slack import render_slack

        return render_slack(digest, top_n=top)
    from reports.digest_markdown import render_markdown

    return render_markdown(digest, top_n=top)


def secret(channel: Channel, name: str, env: Mapping[str, str]) -> str | None:
    """The value behind a channel's ``<name>_env`` / ``<name>_file`` reference; None when it has none."""
    ref: Secret | None = channel.secrets.get(name)
    if ref is None:
        return None
    if ref.env:
        value = env.get(ref.env, "").strip()
        if not value:
            raise ChannelError(f"channel {channel.name}: {name}_env names ${ref.env}, which is not set")
        return value
    try:
        value = Path(str(ref.file)).expanduser().read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ChannelError(f"channel {channel.name}: {name}_file {ref.file} cannot be read "
                           f"({exc.strerror or type(exc).__name__})") from None
    if not value:
        raise ChannelError(f"channel {channel.name}: {name}_file {ref.file} is empty")
    return value


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def open_sender(channel: Channel, env: Mapping[str, str]) -> Any:
    """The sender for one configured channel (``reports.channels``), secrets resolved."""
    o = channel.options
    context = None
    if o.get("ca_file"):  # a private CA (a relay, a test server) trusted besides the system's
        try:
            context = ssl.create_default_context(cafile=str(Path(str(o["ca_file"])).expanduser()))
        except (OSError, ssl.SSLError) as exc:
            raise ChannelError(f"channel {channel.name}: ca_file {o['ca_file']} cannot be used "
                               f"({getattr(exc, 'strerror', None) or type(exc).__name__})") from None
    try:
        if channel.type == "slack-webhook":
            return SlackWebhook(str(secret(channel, "url", env)), ssl_context=context)
        if channel.type == "slack-bot":
            return SlackBot(str(secret(channel, "token", env)), str(o["channel"]),
                            base_url=str(o.get("api_url", "https://slack.com/api/")), ssl_context=context)
        if channel.type == "email":
            starttls = bool(o.get("starttls", True))
            return SmtpEmail(str(o["host"]), int(o.get("port", 587 if starttls else 25)), str(o["from"]),
                             list(o["to"]), username=o.get("username"), password=secret(channel, "password", env),
                             starttls=starttls, ssl_context=context)
        return _Files(str(o["path"]))
    except ValueError as exc:
        raise ChannelError(f"channel {channel.name}: {exc}") from None


class _Files:
    """A file channel; ``{audience}`` in the path gives each audience its own file."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.name = f"file {pattern}"

    def send(self, content: Any, audience: str = "everyone") -> None:
        FileChannel(self.pattern.replace("{audience}", _UNSAFE.sub("_", audience))).send(content)


__all__ = ["ChannelError", "Dispatcher", "Outcome", "audiences", "open_sender", "render_for", "secret"]

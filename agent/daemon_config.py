"""The ``report``, ``channels``, ``schedules`` and ``daemon`` sections of ``costagent.yaml``.

    report:
      owner_tag: owner            # tag / label naming a resource's owner
      team_tag: team
      top: 10                     # findings per digest
      min_savings_usd: 0          # drop findings saving less a month
      only_new_or_changed: false  # drop findings already sent unchanged to that audience
      html_dir: null              # write each digest's HTML report here too
      mutes:
        - kind: spot              # or finding: <recommendation id>, or resource: <resource id>
          until: 2026-12-31T00:00:00Z
          reason: "spot reviewed in Q4"
    channels:
      - name: ml-slack
        type: slack-webhook       # slack-webhook | slack-bot | email | file
        url_env: SLACK_WEBHOOK_URL   # secrets only as *_env (a variable's name) or *_file (a path)
        audiences: [team:ml]      # everyone (default) | team:<name> | owner:<name> | each:team | each:owner
    schedules:                    # crontab (Sunday = 0) in schedules.timezone, or "@every 30m"; "off": no job
      collect: "0 * * * *"
      apply: "*/30 * * * *"
      digest: "0 9 * * 1-5"
      housekeeping: "30 3 * * *"
      timezone: UTC
    daemon:
      listen: 127.0.0.1:9464      # /healthz and /metrics (env COSTAGENT_LISTEN wins)
      retention_days: 90
      shutdown_timeout_seconds: 45
      max_plan_age_hours: 24

A secret given inline (``url:``, ``token:``, ``password:``) is refused: it would sit in a file that is
read, copied and printed; ``*_env`` names an environment variable, ``*_file`` a file (a Kubernetes or
systemd secret). Neither the secret nor its value is ever printed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.schedules import trigger
from providers.errors import ConfigurationError
from providers.model import utc
from reports.digest import Mute

JOBS = ("collect", "apply", "digest", "housekeeping")
DEFAULT_SCHEDULES = {"collect": "0 * * * *", "apply": "*/30 * * * *", "digest": "0 9 * * 1-5",
                     "housekeeping": "30 3 * * *"}
CHANNEL_TYPES = {
    "slack-webhook": ({"url"}, set()),
    "slack-bot": ({"token"}, {"channel"}),
    "email": (set(), {"host", "from", "to"}),
    "file": (set(), {"path"}),
}
CHANNEL_KEYS = {"name", "type", "audiences", "channel", "api_url", "ca_file", "host", "port", "from", "to", "username", "starttls",
                "path", "format", "url_env", "url_file", "token_env", "token_file", "password_env", "password_file"}
SECRETS = ("url", "token", "password")
FILE_FORMATS = ("markdown", "html", "csv", "json", "text", "slack")
REPORT_KEYS = {"owner_tag", "team_tag", "top", "min_savings_usd", "only_new_or_changed", "html_dir", "mutes"}
DAEMON_KEYS = {"listen", "retention_days", "shutdown_timeout_seconds", "max_plan_age_hours"}


@dataclass(frozen=True)
class Secret:
    """Where a secret is: an environment variable or a file. ``repr`` never shows the value."""

    env: str | None = None
    file: str | None = None

    def __str__(self) -> str:
        return f"${self.env}" if self.env else f"file {self.file}"


@dataclass(frozen=True)
class Channel:
    name: str
    type: str
    audiences: tuple[str, ...] = ("everyone",)
    options: Mapping[str, Any] = field(default_factory=dict)  # host, port, from, to, channel, path, ...
    secrets: Mapping[str, Secret] = field(default_factory=dict)  # url / token / password


@dataclass(frozen=True)
class ReportSettings:
    owner_tag: str = "owner"
    team_tag: str = "team"
    top: int = 10
    min_savings_usd: Decimal = Decimal(0)
    only_new_or_changed: bool = False
    html_dir: str | None = None
    mutes: tuple[Mute, ...] = ()


@dataclass(frozen=True)
class DaemonSettings:
    schedules: Mapping[str, str | None] = field(default_factory=lambda: dict(DEFAULT_SCHEDULES))
    timezone: str = "UTC"
    listen: str = "127.0.0.1:9464"
    retention_days: int = 90  # housekeeping: runs, deliveries and collect results older than this go
    shutdown_timeout_seconds: int = 45  # SIGTERM: wait this long for a running job, then leave it for the next start
    max_plan_age_hours: int = 24  # the apply job refuses a plan older than this (no collect succeeded since)


def _fail(where: str, key: str, message: str, hint: str | None = None) -> ConfigurationError:
    return ConfigurationError(f"config {where}: {key} {message}", hint=hint)


def report_settings(section: Mapping[str, Any], where: str) -> ReportSettings:
    _known(section, REPORT_KEYS, where, "report")
    top = section.get("top", 10)
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= 50:
        raise _fail(where, "report.top", "must be a whole number from 1 to 50")
    try:
        minimum = Decimal(str(section.get("min_savings_usd", 0)))
    except InvalidOperation:
        raise _fail(where, "report.min_savings_usd", "must be a number of dollars") from None
    if minimum < 0:
        raise _fail(where, "report.min_savings_usd", "must be >= 0")
    flag = section.get("only_new_or_changed", False)
    if not isinstance(flag, bool):
        raise _fail(where, "report.only_new_or_changed", "must be true or false")
    mutes = section.get("mutes", [])
    if not isinstance(mutes, list):
        raise _fail(where, "report.mutes", "must be a list of {kind|finding|resource, until, reason}")
    return ReportSettings(owner_tag=_text(section, "owner_tag", where, "report", "owner"),
                          team_tag=_text(section, "team_tag", where, "report", "team"), top=top,
                          min_savings_usd=minimum, only_new_or_changed=flag,
                          html_dir=_text(section, "html_dir", where, "report", None),
                          mutes=tuple(_mute(m, where, i) for i, m in enumerate(mutes)))


def _mute(item: Any, where: str, i: int) -> Mute:
    key = f"report.mutes[{i}]"
    if not isinstance(item, dict) or set(item) - {"kind", "finding", "resource", "until", "reason"}:
        raise _fail(where, key, "must be a mapping of kind|finding|resource, until and reason")
    targets = [k for k in ("kind", "finding", "resource") if item.get(k)]
    if len(targets) != 1:
        raise _fail(where, key, "must name exactly one of kind, finding, resource")
    until = item.get("until")
    try:
        until = utc(until if isinstance(until, datetime) else datetime.fromisoformat(str(until).replace("Z", "+00:00")))
    except (TypeError, ValueError):
        raise _fail(where, f"{key}.until", f"{until!r} is not a date-time", "e.g. 2026-12-31T00:00:00Z") from None
    return Mute(until=until, kind=item.get("kind"), finding_id=item.get("finding"), resource_id=item.get("resource"),
                reason=str(item.get("reason", "")))


def channels(items: Any, where: str) -> tuple[Channel, ...]:
    if not isinstance(items, list):
        raise _fail(where, "channels", "must be a list of channels (name, type, ...)")
    out, names = [], set()
    for i, item in enumerate(items):
        key = f"channels[{i}]"
        if not isinstance(item, dict):
            raise _fail(where, key, "must be a mapping with name and type")
        for secret in SECRETS:
            if secret in item:
                raise _fail(where, f"{key}.{secret}", "must not be written in the file: secrets only by reference",
                            f"use {secret}_env: VARIABLE or {secret}_file: /path")
        _known(item, CHANNEL_KEYS, where, key)
        kind, name = item.get("type"), item.get("name")
        if kind not in CHANNEL_TYPES:
            raise _fail(where, f"{key}.type", f"= {kind!r} is not a channel type", ", ".join(CHANNEL_TYPES))
        if not isinstance(name, str) or not name.strip() or name in names:
            raise _fail(where, f"{key}.name", "must be a unique, non-empty name")
        names.add(name)
        needs_secrets, needs = CHANNEL_TYPES[kind]
        missing = sorted(k for k in needs if not item.get(k))
        if missing:
            raise _fail(where, f"{key}.{missing[0]}", f"is required for a {kind} channel")
        secrets = {s: _secret(item, s, where, key) for s in SECRETS if f"{s}_env" in item or f"{s}_file" in item}
        for s in sorted(needs_secrets - set(secrets)):
            raise _fail(where, f"{key}.{s}_env", f"is required for a {kind} channel (or {s}_file)")
        audiences = item.get("audiences", ["everyone"])
        if isinstance(audiences, str):
            audiences = [audiences]
        for a in audiences:
            if not (a == "everyone" or a in ("each:team", "each:owner") or
                    (isinstance(a, str) and a.split(":", 1)[0] in ("team", "owner") and ":" in a)):
                raise _fail(where, f"{key}.audiences", f"{a!r} is not an audience",
                            "everyone, team:<name>, owner:<name>, each:team, each:owner")
        references = {f"{s}_{how}" for s in SECRETS for how in ("env", "file")}
        options = {k: v for k, v in item.items() if k not in {"name", "type", "audiences"} | references}
        if kind == "email":
            to = options.get("to")
            options["to"] = [to] if isinstance(to, str) else list(to)
            if "port" in options and (isinstance(options["port"], bool) or not isinstance(options["port"], int)):
                raise _fail(where, f"{key}.port", "must be a port number")
        if kind == "file":
            options.setdefault("format", "markdown")
            if options["format"] not in FILE_FORMATS:
                raise _fail(where, f"{key}.format", f"= {options['format']!r} is not a file format",
                            ", ".join(FILE_FORMATS))
        out.append(Channel(name, kind, tuple(audiences), options, secrets))
    return tuple(out)


def _secret(item: Mapping[str, Any], name: str, where: str, key: str) -> Secret:
    ref_env, ref_file = item.get(f"{name}_env"), item.get(f"{name}_file")
    if ref_env and ref_file:
        raise _fail(where, f"{key}.{name}_env", f"and {name}_file are both given: name one")
    if ref_env is not None and (not isinstance(ref_env, str) or not ref_env.strip()):
        raise _fail(where, f"{key}.{name}_env", "must be the name of an environment variable")
    if ref_file is not None and (not isinstance(ref_file, str) or not ref_file.strip()):
        raise _fail(where, f"{key}.{name}_file", "must be a file path")
    return Secret(env=ref_env, file=ref_file)


def daemon_settings(schedules: Mapping[str, Any], daemon: Mapping[str, Any], where: str) -> DaemonSettings:
    _known(schedules, set(JOBS) | {"timezone"}, where, "schedules")
    _known(daemon, DAEMON_KEYS, where, "daemon")
    tz = str(schedules.get("timezone", "UTC"))
    try:
        ZoneInfo(tz)
    except (ValueError, ZoneInfoNotFoundError):
        raise _fail(where, "schedules.timezone", f"= {tz!r} is not a time zone", 'an IANA name, e.g. "UTC"') from None
    chosen: dict[str, str | None] = {}
    for job in JOBS:
        expr = schedules.get(job, DEFAULT_SCHEDULES[job])
        if expr in (False, None, "off"):
            chosen[job] = None
            continue
        try:
            trigger(str(expr), tz)
        except (ValueError, LookupError) as exc:  # zoneinfo's unknown zone is a KeyError
            raise _fail(where, f"schedules.{job}", f"= {expr!r}: {exc}", 'crontab, e.g. "0 9 * * 1-5"') from None
        chosen[job] = str(expr)
    listen = str(daemon.get("listen", "127.0.0.1:9464"))
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise _fail(where, "daemon.listen", f"= {listen!r} is not host:port", "e.g. 127.0.0.1:9464 or 0.0.0.0:9464")
    numbers = {}
    for key, default, low, high in (("retention_days", 90, 1, 3650), ("shutdown_timeout_seconds", 45, 1, 3600),
                                    ("max_plan_age_hours", 24, 1, 24 * 14)):
        value = daemon.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _fail(where, f"daemon.{key}", f"must be a whole number from {low} to {high}")
        numbers[key] = value
    return DaemonSettings(chosen, tz, listen, **numbers)


def _known(section: Any, keys: set[str], where: str, name: str) -> None:
    if not isinstance(section, Mapping):
        raise _fail(where, name, "must be a mapping")
    unknown = sorted(set(section) - keys)
    if unknown:
        raise ConfigurationError(f"config {where}: unknown key {name}.{unknown[0]}",
                                 hint=f"keys: {', '.join(sorted(keys))}")


def _text(section: Mapping[str, Any], key: str, where: str, name: str, default: str | None) -> str | None:
    value = section.get(key, default)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise _fail(where, f"{name}.{key}", "must be a non-empty string")
    return value

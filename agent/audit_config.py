"""The ``audit`` and ``recommenders`` sections of ``costagent.yaml``: what an audit reads and the thresholds the
recommenders judge by. Without them every audit ran on ``recommenders.Settings()`` and the CLI flags' defaults;
the daemon, which has no flags, needs both in the file.

    audit:
      lookback: 14d               # as --lookback: 14d, 36h, 2w; a bare number is days (2 periods .. 63 days)
      period: 5m                  # as --period: whole minutes; a bare number is minutes
      live_prices: true           # refine the shipped price catalog with the clouds' price APIs
      billing: []                 # as --billing: files, folders, globs, s3://, gs://, https://ACCOUNT.blob...
    recommenders:
      enabled: [gpu-idle, schedule, rightsize, consolidate, autoscale, spot, commitment]   # "stop" = gpu-idle
      kpi_tag: team
      idle: {gpu_util_max_pct: 5.0, ...}    # every field of recommenders.idle.IdleSettings
      stop: {...}                           # and so for schedule, rightsize, consolidate, autoscale, spot
      commitment: {term_years: [1], instruments: null, ...}

The nested mappings are laid over the recommenders' own dataclass defaults field by field, read by each field's
type (``dataclasses.fields`` and ``typing.get_type_hints``), so a threshold added to a recommender is
configurable without touching this module; a field of a type it cannot read fails loudly (a test lists every one).
CLI flags win over this section; ``config.audit`` is what a run without flags uses.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from providers.errors import ConfigurationError
from recommenders import RECOMMENDERS, Settings, gpu_idle

AUDIT_KEYS = {"lookback", "period", "live_prices", "billing"}
#: The nested sections: each a dataclass field of ``recommenders.Settings`` (idle, stop, schedule, ...).
SECTIONS = tuple(f.name for f in dataclasses.fields(Settings) if dataclasses.is_dataclass(getattr(Settings(), f.name)))
RECOMMENDER_KEYS = {"enabled", "kpi_tag", *SECTIONS}
#: Names accepted in ``enabled`` besides ``RECOMMENDERS``: the finding kind (and section) ``stop`` is ``gpu-idle``.
ALIASES = {"stop": gpu_idle.NAME}

DEFAULT_LOOKBACK = timedelta(days=14)
DEFAULT_PERIOD = timedelta(minutes=5)
MAX_LOOKBACK = timedelta(days=63)  # CloudWatch keeps 5-minute data for 63 days
COMMITMENT_TERMS = (1, 3)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)?\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class AuditSettings:
    lookback: timedelta = DEFAULT_LOOKBACK
    period: timedelta = DEFAULT_PERIOD
    live_prices: bool = True
    billing: tuple[str, ...] = ()
    recommenders: Settings = field(default_factory=Settings)
    #: The ``audit`` keys the file set (the CLI keeps --demo's hourly period unless ``period`` is one of them).
    configured: frozenset[str] = field(default=frozenset(), compare=False)


def parse_duration(text: str, default_unit: str) -> timedelta:
    """``14d``, ``36h``, ``5m``, ``300s``, ``2w``; a bare number takes ``default_unit``. ``ValueError`` otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (examples: 14d, 36h, 5m, 300s)")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2) or default_unit])


def window_problem(lookback: timedelta, period: timedelta) -> tuple[str, str] | None:
    """``("period" | "lookback", what is wrong)`` for a window an audit cannot read, else None."""
    seconds = period.total_seconds()
    if seconds < 60 or seconds % 60:
        return "period", "must be a whole number of minutes (CloudWatch periods are multiples of 60 s)"
    if lookback < period * 2:
        return "lookback", "must cover at least two periods"
    if lookback > MAX_LOOKBACK:
        return "lookback", "at most 63 days (CloudWatch keeps 5-minute data for 63 days)"
    return None


def audit_settings(audit: Mapping[str, Any], recommenders: Mapping[str, Any], where: str) -> AuditSettings:
    """Both sections, checked; ``ConfigurationError`` naming the key (``config_source.with_line`` adds its line)."""
    _known(audit, AUDIT_KEYS, where, "audit")
    lookback = _duration(audit, "lookback", "d", DEFAULT_LOOKBACK, where)
    period = _duration(audit, "period", "m", DEFAULT_PERIOD, where)
    problem = window_problem(lookback, period)
    if problem:
        key, message = problem
        raise _fail(where, f"audit.{key}", f"{message} (lookback {_show(lookback)}, period {_show(period)})")
    live = audit.get("live_prices", True)
    if not isinstance(live, bool):
        raise _fail(where, "audit.live_prices", "must be true or false")
    return AuditSettings(lookback=lookback, period=period, live_prices=live, billing=_billing(audit, where),
                         recommenders=recommender_settings(recommenders, where), configured=frozenset(audit))


def recommender_settings(section: Mapping[str, Any], where: str) -> Settings:
    _known(section, RECOMMENDER_KEYS, where, "recommenders")
    defaults = Settings()
    changes: dict[str, Any] = {name: overlay(getattr(defaults, name), section[name], f"recommenders.{name}", where)
                               for name in SECTIONS if name in section}
    if "enabled" in section:
        changes["enabled"] = _enabled(section["enabled"], where)
    if "kpi_tag" in section:
        tag = section["kpi_tag"]
        if not isinstance(tag, str) or not tag.strip():
            raise _fail(where, "recommenders.kpi_tag", "must be a tag name (a non-empty string)")
        changes["kpi_tag"] = tag.strip()
    return dataclasses.replace(defaults, **changes)


def overlay(default: Any, section: Any, name: str, where: str) -> Any:
    """``default`` (a dataclass instance) with the keys of ``section`` read by each field's type."""
    known = {f.name for f in dataclasses.fields(default)}
    _known(section, known, where, name)
    hints = typing.get_type_hints(type(default))
    changes = {key: _value(value, hints[key], getattr(default, key), f"{name}.{key}", where)
               for key, value in section.items()}
    if name == "recommenders.commitment" and "term_years" in changes:
        for i, term in enumerate(changes["term_years"]):
            if term not in COMMITMENT_TERMS:
                raise _fail(where, f"{name}.term_years[{i}]", f"= {term} is not a commitment term",
                            "1 and/or 3 (years), e.g. [1, 3]")
    return dataclasses.replace(default, **changes)


def _value(raw: Any, hint: Any, default: Any, key: str, where: str) -> Any:
    """``raw`` read as ``hint``: int, float, Decimal, bool, str, an Enum, ``X | None`` or ``tuple[X, ...]``."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if raw is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _value(raw, inner, default, key, where)
    if typing.get_origin(hint) is tuple:
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"{key}: no reader for {hint}")
        items = raw if isinstance(raw, list) else [raw]
        return tuple(_value(item, args[0], None, f"{key}[{i}]", where) for i, item in enumerate(items))
    if hint is bool:
        if not isinstance(raw, bool):
            raise _fail(where, key, f"= {raw!r} must be true or false")
        return raw
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        choices = [str(m.value) for m in hint]
        if str(raw) not in choices:
            raise _fail(where, key, f"= {raw!r} is not one of the {hint.__name__} values", ", ".join(choices))
        return hint(str(raw))
    if hint is str:
        if not isinstance(raw, str) or not raw.strip():
            raise _fail(where, key, "must be a non-empty string")
        return raw.strip()
    if hint is int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise _fail(where, key, f"= {raw!r} must be a whole number")
        number: Any = raw
    elif hint is float:
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
            raise _fail(where, key, f"= {raw!r} must be a number")
        number = float(raw)
    elif hint is Decimal:
        try:
            if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
                raise InvalidOperation
            number = Decimal(str(raw).strip())
            if not number.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            raise _fail(where, key, f"= {raw!r} must be a number of dollars (e.g. 25 or \"40.5\")") from None
    else:
        raise TypeError(f"{key}: no reader for {hint}")
    if number < 0 and not (isinstance(default, (int, float, Decimal)) and default < 0):
        raise _fail(where, key, f"= {raw!r} must be >= 0")
    return number


def _enabled(value: Any, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise _fail(where, "recommenders.enabled", "must be a list of recommender names", ", ".join(RECOMMENDERS))
    chosen = set()
    for i, item in enumerate(items):
        name = ALIASES.get(item, item) if isinstance(item, str) else item
        if name not in RECOMMENDERS:
            raise _fail(where, f"recommenders.enabled[{i}]", f"= {item!r} is not a recommender",
                        f"{', '.join(RECOMMENDERS)} (stop = {gpu_idle.NAME})")
        chosen.add(name)
    return tuple(n for n in RECOMMENDERS if n in chosen)


def _duration(section: Mapping[str, Any], key: str, unit: str, default: timedelta, where: str) -> timedelta:
    raw = section.get(key)
    if raw is None:
        return default
    try:
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            raise ValueError(f"{raw!r} is not a duration (examples: 14d, 36h, 5m, 300s)")
        return parse_duration(str(raw), unit)
    except ValueError as exc:
        raise _fail(where, f"audit.{key}", f"= {exc}", "e.g. 14d, 36h, 5m, 300s") from None


def _billing(section: Mapping[str, Any], where: str) -> tuple[str, ...]:
    value = section.get("billing", [])
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v.strip() for v in items):
        raise _fail(where, "audit.billing", "must be a list of paths (files, folders, globs, s3://, gs://, https://)")
    return tuple(v.strip() for v in items)


def _show(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{span.total_seconds():g}s"


def _fail(where: str, key: str, message: str, hint: str | None = None) -> ConfigurationError:
    return ConfigurationError(f"config {where}: {key} {message}", hint=hint)


def _known(section: Any, keys: set[str], where: str, name: str) -> None:
    if not isinstance(section, Mapping):
        raise _fail(where, name, "must be a mapping")
    unknown = sorted(set(section) - keys, key=str)
    if unknown:
        raise ConfigurationError(f"config {where}: unknown key {name}.{unknown[0]}",
                                 hint=f"{name} keys: {', '.join(sorted(keys))}")

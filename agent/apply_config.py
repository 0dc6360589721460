"""The ``[apply]`` and ``[state]`` sections of the configuration file: the guards' policy and the journal's URL.

    [apply]
    mode = "apply"                     # off | report | dry-run (default) | apply
    accounts = ["123456789012", "ml-dev"]   # accounts / projects / subscriptions the agent may touch (default all)
    regions = ["us-east-1"]            # default: all
    required_tags = { env = "dev" }    # only resources carrying every one of these
    grace_hours = 24                   # mark first, act after 24 h (default 0: act on the first run)
    cooldown_hours = 24                # leave a resource alone this long after any action on it (default 24)
    max_actions_per_run = 20           # blast radius: at most this many actions per apply (default 20)
    max_fleet_percent = 10             # ... and at most this share of the GPU fleet (default: no share cap)
    approval_required = ["resize"]     # kinds that need an approved recommendation id (default: resize)
    approved = ["3f2a9c0d1e2b"]        # recommendation ids a person approved
    freshness_minutes = 60             # the re-read before acting looks at this much recent telemetry
    [apply.modes]                      # per recommender; can only lower the global mode
    rightsize = "report"
    [[apply.windows]]                  # act only inside one of these (default: any time)
    days = ["Sat", "Sun"]
    start = "01:00"
    end = "05:00"
    timezone = "Europe/Berlin"

    [state]
    url = "postgresql+psycopg://costagent@db/costagent"   # default: sqlite file in the user's state folder

``COSTAGENT_STATE_URL`` overrides ``[state] url``. Every key is checked; a bad one is a one-line error
naming the file and key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.guards import Mode, Policy, Window
from providers.errors import ConfigurationError

APPLY_KEYS = {"mode", "modes", "accounts", "regions", "required_tags", "grace_hours", "cooldown_hours",
              "max_actions_per_run", "max_fleet_percent", "approval_required", "approved", "freshness_minutes",
              "windows"}
STATE_KEYS = {"url"}
WINDOW_KEYS = {"days", "start", "end", "timezone"}
DAYS = {name: i for i, name in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))}

DEFAULT_MODE = Mode.DRY_RUN
DEFAULT_COOLDOWN_HOURS = 24.0
DEFAULT_MAX_ACTIONS = 20
DEFAULT_FRESHNESS_MINUTES = 60.0


@dataclass(frozen=True)
class ApplySettings:
    policy: Policy = field(default_factory=lambda: Policy(mode=DEFAULT_MODE,
                                                          cooldown=timedelta(hours=DEFAULT_COOLDOWN_HOURS),
                                                          max_actions_per_run=DEFAULT_MAX_ACTIONS))
    freshness: timedelta = timedelta(minutes=DEFAULT_FRESHNESS_MINUTES)


def default_state_url(env: Mapping[str, str] | None = None) -> str:
    """``$XDG_STATE_HOME/costagent/state.db`` (``~/.local/state/costagent/state.db``) as a SQLite URL."""
    env = os.environ if env is None else env
    base = Path(env.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return f"sqlite:///{base / 'costagent' / 'state.db'}"


def state_url(section: Mapping[str, Any], where: str, env: Mapping[str, str]) -> str:
    value = env.get("COSTAGENT_STATE_URL") or section.get("url")
    if value is None:
        return default_state_url(env)
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"config {where}: state.url must be a database URL (sqlite:///FILE, postgresql://...)")
    return value.strip()


def ensure_sqlite_folder(url: str) -> None:
    """Create the folder of a ``sqlite:///`` file so a first run on a fresh machine works."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url[len("sqlite:///"):]).expanduser().parent.mkdir(parents=True, exist_ok=True)


def apply_settings(section: Mapping[str, Any], where: str) -> ApplySettings:
    unknown = set(section) - APPLY_KEYS
    if unknown:
        raise ConfigurationError(f"config {where}: unknown key apply.{sorted(unknown)[0]}",
                                 hint=f"[apply] keys: {', '.join(sorted(APPLY_KEYS))}")
    mode = _mode(section.get("mode", DEFAULT_MODE.label), where, "apply.mode")
    modes = section.get("modes", {})
    if not isinstance(modes, dict):
        raise ConfigurationError(f"config {where}: apply.modes must be a table (recommender = \"mode\")")
    per = {str(k): _mode(v, where, f"apply.modes.{k}") for k, v in modes.items()}
    tags = section.get("required_tags", {})
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise ConfigurationError(f"config {where}: apply.required_tags must be a table of strings (key = \"value\")")
    fraction = _number(section, "max_fleet_percent", where, None)
    if fraction is not None and not 0 <= fraction <= 100:
        raise ConfigurationError(f"config {where}: apply.max_fleet_percent must be between 0 and 100")
    actions = _number(section, "max_actions_per_run", where, DEFAULT_MAX_ACTIONS)
    windows = section.get("windows", [])
    if not isinstance(windows, list):
        raise ConfigurationError(f"config {where}: apply.windows must be an array of tables ([[apply.windows]])")
    policy = Policy(
        mode=mode, per_recommender=per,
        accounts=frozenset(_strings(section, "accounts", where)), regions=frozenset(_strings(section, "regions", where)),
        required_tags=dict(tags),
        windows=tuple(_window(w, where, i) for i, w in enumerate(windows)),
        grace_hours=float(_number(section, "grace_hours", where, 0.0) or 0.0),
        cooldown=timedelta(hours=float(_number(section, "cooldown_hours", where, DEFAULT_COOLDOWN_HOURS) or 0.0)),
        max_actions_per_run=None if actions is None else int(actions),
        max_fleet_fraction=None if fraction is None else fraction / 100,
        approval_required_kinds=frozenset(_strings(section, "approval_required", where, ("resize",))),
        approved_ids=frozenset(_strings(section, "approved", where)),
    )
    minutes = _number(section, "freshness_minutes", where, DEFAULT_FRESHNESS_MINUTES)
    if not minutes or minutes <= 0:
        raise ConfigurationError(f"config {where}: apply.freshness_minutes must be positive")
    return ApplySettings(policy, timedelta(minutes=float(minutes)))


def _mode(value: Any, where: str, key: str) -> Mode:
    try:
        return Mode.parse(str(value))
    except KeyError:
        raise ConfigurationError(f"config {where}: {key} = {value!r} is not a mode",
                                 hint="modes: off, report, dry-run, apply") from None


def _number(section: Mapping[str, Any], key: str, where: str, default: float | None) -> float | None:
    value = section.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigurationError(f"config {where}: apply.{key} must be a number >= 0")
    return value


def _strings(section: Mapping[str, Any], key: str, where: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    value = section.get(key, list(default))
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigurationError(f"config {where}: apply.{key} must be a list of strings")
    return tuple(v.strip() for v in value)


def _window(table: Any, where: str, index: int) -> Window:
    name = f"apply.windows[{index}]"
    if not isinstance(table, dict):
        raise ConfigurationError(f"config {where}: {name} must be a table with days, start, end, timezone")
    unknown = set(table) - WINDOW_KEYS
    if unknown:
        raise ConfigurationError(f"config {where}: unknown key {name}.{sorted(unknown)[0]}",
                                 hint=f"keys: {', '.join(sorted(WINDOW_KEYS))}")
    days = table.get("days", list(DAYS))
    if isinstance(days, str):
        days = [days]
    try:
        numbers = frozenset(DAYS[str(d).strip().lower()[:3]] for d in days)
    except KeyError as exc:
        raise ConfigurationError(f"config {where}: {name}.days: {exc.args[0]!r} is not a day",
                                 hint='days = ["Mon", "Sat"] (Mon..Sun)') from None
    try:
        start, end = (time.fromisoformat(str(table[k])) for k in ("start", "end"))
    except KeyError as exc:
        raise ConfigurationError(f"config {where}: {name}.{exc.args[0]} is missing",
                                 hint='start = "22:00", end = "06:00"') from None
    except ValueError as exc:
        raise ConfigurationError(f"config {where}: {name}: {exc}") from None
    zone = str(table.get("timezone", "UTC"))
    try:
        ZoneInfo(zone)
    except (ValueError, ZoneInfoNotFoundError):
        raise ConfigurationError(f"config {where}: {name}.timezone: unknown time zone {zone!r}",
                                 hint='an IANA name, e.g. "Europe/Berlin"') from None
    try:
        return Window(numbers, start, end, zone)
    except ValueError as exc:
        raise ConfigurationError(f"config {where}: {name}: {exc}") from None

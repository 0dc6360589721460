"""Cron expressions of the daemon's jobs, read with standard crontab meaning.

APScheduler 3's ``CronTrigger`` numbers weekdays from Monday = 0, while crontab (and every cron expression a
user writes) numbers them from Sunday = 0 (7 is Sunday too): ``0 9 * * 1-5`` handed to
``CronTrigger.from_crontab`` as it is would run Tuesday to Saturday. ``cron_trigger`` rewrites numeric
weekdays as names (``mon-fri``) first, so the expression means what cron means.
"""

from __future__ import annotations

import re

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NAMED = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
          "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}


def _weekday_field(text: str) -> str:
    """Numbers (0-7, 0 and 7 Sunday) as day names; ranges and steps kept; names passed through."""
    def day(match: re.Match[str]) -> str:
        value = int(match.group(0))
        if value > 7:
            raise ValueError(f"day of week {value} is not 0-7")
        return _DAYS[value]

    parts = []
    for part in text.split(","):
        base, slash, step = part.partition("/")
        if base in ("*", "?"):
            if slash:  # */2 from Sunday, as cron counts: sun,tue,thu,sat
                parts.append(",".join(_DAYS[d] for d in range(0, 7, int(step))))
            else:
                parts.append("*")
            continue
        named = re.sub(r"\d+", day, base)
        if "-" in named and named.split("-")[1] == "sun" and named.split("-")[0] != "sun":
            named = f"{named.split('-')[0]}-sat,sun"  # 1-7: Monday to Sunday
        parts.append(named + (slash + step if slash else ""))
    return ",".join(parts)


def cron_trigger(expression: str, timezone: str = "UTC") -> CronTrigger:
    """A trigger for a five-field crontab expression (or @hourly, @daily, ...) in ``timezone``.

    Raises ``ValueError`` naming what is wrong.
    """
    text = _NAMED.get(expression.strip().lower(), expression.strip())
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"{expression!r} is not five cron fields (minute hour day month weekday)")
    minute, hour, day, month, weekday = fields
    return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=_weekday_field(weekday),
                       timezone=timezone)


_EVERY = re.compile(r"^@every\s+(\d+)\s*(s|m|h|d)$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def trigger(expression: str, timezone: str = "UTC") -> CronTrigger | IntervalTrigger:
    """A crontab expression (``cron_trigger``) or ``@every <n>s|m|h|d`` (a fixed interval from the daemon's first
    start, as in Go's robfig/cron; at least 1 s). Raises ``ValueError`` naming what is wrong."""
    text = expression.strip().lower()
    if text.startswith("@every"):
        match = _EVERY.match(text)
        if not match or int(match.group(1)) < 1:
            raise ValueError(f"{expression!r} is not '@every <n>s|m|h|d' (e.g. @every 30m)")
        return IntervalTrigger(seconds=int(match.group(1)) * _UNIT[match.group(2)], timezone=timezone)
    return cron_trigger(expression, timezone)


def describe(t: CronTrigger | IntervalTrigger) -> str:
    """What identifies a trigger across restarts (not its start date): its fields and time zone."""
    return f"{t} {t.timezone}"

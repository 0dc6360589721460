"""Cron expressions mean what crontab means (Sunday = 0), not APScheduler's Monday = 0."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from agent.schedules import cron_trigger

MONDAY = datetime(2026, 11, 23, 0, 0, tzinfo=timezone.utc)  # a Monday


def fires(expression: str, tz: str = "UTC", days: int = 7) -> list[datetime]:
    trigger, out, at = cron_trigger(expression, tz), [], MONDAY - timedelta(seconds=1)
    while True:
        at = trigger.get_next_fire_time(out[-1] if out else None, at + timedelta(seconds=1) if out else at)
        if at is None or at >= MONDAY + timedelta(days=days):
            return out
        out.append(at)


def test_weekdays_one_to_five_are_monday_to_friday():
    assert [d.strftime("%a %H:%M") for d in fires("0 9 * * 1-5")] == [
        "Mon 09:00", "Tue 09:00", "Wed 09:00", "Thu 09:00", "Fri 09:00"]


@pytest.mark.parametrize("expression, days", [("0 9 * * 0", ["Sun"]), ("0 9 * * 7", ["Sun"]),
                                              ("0 9 * * 6,0", ["Sat", "Sun"]), ("0 9 * * 1-7", None),
                                              ("0 9 * * sat", ["Sat"]), ("0 9 * * */3", ["Wed", "Sat", "Sun"])])
def test_sunday_is_zero_and_seven(expression, days):
    got = [d.strftime("%a") for d in fires(expression)]
    assert got == (days if days is not None else ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])


def test_named_schedules_and_time_zones():
    assert len(fires("@hourly", days=1)) == 24
    [berlin] = fires("30 8 * * 1", "Europe/Berlin")
    assert berlin.astimezone(timezone.utc).strftime("%a %H:%M") == "Mon 07:30"


@pytest.mark.parametrize("bad", ["0 9 * *", "61 * * * *", "0 9 * * 8", "every day"])
def test_a_bad_expression_is_a_value_error(bad):
    with pytest.raises(ValueError):
        cron_trigger(bad)

"""The [apply] policy and [state] url of the configuration file: safe defaults, every key read, bad keys named."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import pytest

from agent.config import load
from agent.guards import Mode
from providers.errors import ConfigurationError


def write(tmp_path, text):
    path = tmp_path / "costagent.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_dry_run_with_a_cooldown_a_cap_and_approval_for_resizes():
    policy = load(None, env={}).apply.policy
    assert policy.mode is Mode.DRY_RUN
    assert policy.cooldown == timedelta(hours=24) and policy.max_actions_per_run == 20
    assert policy.max_fleet_fraction is None and policy.grace_hours == 0
    assert policy.approval_required_kinds == {"resize"} and not policy.windows


def test_every_apply_key_is_read(tmp_path):
    config = load(write(tmp_path, """
[apply]
mode = "apply"
accounts = ["ml-dev"]
regions = ["us-central1"]
required_tags = { env = "dev" }
grace_hours = 12
cooldown_hours = 6
max_actions_per_run = 3
max_fleet_percent = 10
approval_required = ["resize", "scale"]
approved = ["abc123"]
freshness_minutes = 30
[apply.modes]
rightsize = "report"
[[apply.windows]]
days = ["Sat", "sun"]
start = "22:00"
end = "06:00"
timezone = "Europe/Berlin"
"""), env={})
    p = config.apply.policy
    assert (p.mode, dict(p.per_recommender)) == (Mode.APPLY, {"rightsize": Mode.REPORT})
    assert (p.accounts, p.regions, dict(p.required_tags)) == ({"ml-dev"}, {"us-central1"}, {"env": "dev"})
    assert (p.grace_hours, p.cooldown, p.max_actions_per_run, p.max_fleet_fraction) == (
        12, timedelta(hours=6), 3, 0.1)
    assert (p.approval_required_kinds, p.approved_ids) == ({"resize", "scale"}, {"abc123"})
    assert config.apply.freshness == timedelta(minutes=30)
    [window] = p.windows
    assert (window.days, window.start, window.end, window.tz) == ({5, 6}, time(22), time(6), "Europe/Berlin")
    # Saturday 23:30 in Berlin (22:30 UTC in November) is inside; Saturday noon is not.
    assert window.contains(datetime(2026, 11, 28, 22, 30, tzinfo=timezone.utc))
    assert not window.contains(datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc))


def test_state_url_from_the_file_and_the_environment_wins(tmp_path):
    path = write(tmp_path, '[state]\nurl = "sqlite:///x.db"\n')
    assert load(path, env={}).state_url == "sqlite:///x.db"
    assert load(path, env={"COSTAGENT_STATE_URL": "postgresql://db/ca"}).state_url == "postgresql://db/ca"


def test_default_state_lives_in_the_xdg_state_folder():
    assert load(None, env={"XDG_STATE_HOME": "/var/lib/x"}).state_url == "sqlite:////var/lib/x/costagent/state.db"


@pytest.mark.parametrize("text, words", [
    ('mode = "yolo"', "apply.mode = 'yolo' is not a mode"),
    ('[apply.modes]\nrightsize = "fast"', "apply.modes.rightsize"),
    ("max_fleet_percent = 150", "apply.max_fleet_percent must be between 0 and 100"),
    ("cooldown_hours = -1", "apply.cooldown_hours must be a number >= 0"),
    ('grace = 3', "unknown key apply.grace"),
    ('required_tags = ["env"]', "apply.required_tags must be a table"),
    ('[[apply.windows]]\ndays = ["Funday"]\nstart = "01:00"\nend = "02:00"', "apply.windows[0].days"),
    ('[[apply.windows]]\nstart = "01:00"', "apply.windows[0].end is missing"),
    ('[[apply.windows]]\nstart = "25:00"\nend = "02:00"', "apply.windows[0]"),
    ('[[apply.windows]]\nstart = "01:00"\nend = "02:00"\ntimezone = "Mars/Olympus"', "unknown time zone"),
    ("freshness_minutes = 0", "apply.freshness_minutes must be positive"),
])
def test_a_bad_apply_key_is_one_line_naming_file_and_key(tmp_path, text, words):
    path = write(tmp_path, "[apply]\n" + text + "\n")
    with pytest.raises(ConfigurationError) as err:
        load(path, env={})
    assert words in err.value.one_line() and str(path) in err.value.one_line()

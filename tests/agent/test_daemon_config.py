"""costagent.yaml's report, channels, schedules and daemon sections: defaults, every key, secrets by reference."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agent.config import load
from agent.daemon_config import DEFAULT_SCHEDULES, Secret
from providers.errors import ConfigurationError

FULL = """\
report:
  owner_tag: Owner
  top: 5
  min_savings_usd: 50
  only_new_or_changed: true
  mutes:
    - kind: spot
      until: 2026-12-31T00:00:00Z
      reason: reviewed
channels:
  - name: ml-slack
    type: slack-webhook
    url_env: SLACK_WEBHOOK_URL
    audiences: [team:ml, each:owner]
  - name: ops-mail
    type: email
    host: smtp.example.com
    port: 587
    from: costagent@example.com
    to: ops@example.com
    username: costagent
    password_file: /run/secrets/smtp
schedules:
  digest: "0 8 * * 1"
  apply: off
  timezone: Europe/Berlin
daemon:
  listen: 0.0.0.0:9464
  retention_days: 30
"""


def write(tmp_path, text):
    path = tmp_path / "costagent.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults():
    config = load(None, env={})
    assert config.channels == () and config.report.top == 10 and config.report.team_tag == "team"
    assert dict(config.daemon.schedules) == DEFAULT_SCHEDULES and config.daemon.listen == "127.0.0.1:9464"


def test_every_key_is_read(tmp_path):
    config = load(write(tmp_path, FULL), env={})
    r = config.report
    assert (r.owner_tag, r.top, r.min_savings_usd, r.only_new_or_changed) == ("Owner", 5, Decimal(50), True)
    assert r.mutes[0].kind == "spot" and r.mutes[0].until.year == 2026
    slack, mail = config.channels
    assert slack.audiences == ("team:ml", "each:owner") and slack.secrets == {"url": Secret(env="SLACK_WEBHOOK_URL")}
    assert mail.options["to"] == ["ops@example.com"] and mail.secrets["password"] == Secret(file="/run/secrets/smtp")
    d = config.daemon
    assert (d.schedules["digest"], d.schedules["apply"], d.timezone, d.listen) == (
        "0 8 * * 1", None, "Europe/Berlin", "0.0.0.0:9464")
    assert (d.retention_days, d.shutdown_timeout_seconds, d.max_plan_age_hours) == (30, 45, 24)


def test_an_every_schedule_is_accepted(tmp_path):
    config = load(write(tmp_path, FULL.replace('  digest: "0 8 * * 1"', '  digest: "@every 15m"')), env={})
    assert config.daemon.schedules["digest"] == "@every 15m"


@pytest.mark.parametrize("old, new, words", [
    ("    url_env: SLACK_WEBHOOK_URL", "    url: https://hooks.slack.com/services/T/B/SECRET",
     "line 13: channels[0].url must not be written in the file"),
    ("    type: slack-webhook", "    type: pigeon", "channels[0].type = 'pigeon' is not a channel type"),
    ("    url_env: SLACK_WEBHOOK_URL\n", "", "channels[0].url_env is required"),
    ("    host: smtp.example.com\n", "", "channels[1].host is required for a email channel"),
    ("[team:ml, each:owner]", "[squad:ml]", "'squad:ml' is not an audience"),
    ('  digest: "0 8 * * 1"', '  digest: "0 8 * *"', "line 24: schedules.digest = '0 8 * *'"),
    ("  timezone: Europe/Berlin", "  timezone: Mars/Base", "line 26: schedules.timezone = 'Mars/Base' is not a time zone"),
    ("  listen: 0.0.0.0:9464", "  listen: everywhere", "daemon.listen = 'everywhere' is not host:port"),
    ("  top: 5", "  top: 500", "report.top must be a whole number from 1 to 50"),
    ("  retention_days: 30", "  retention_days: forever", "daemon.retention_days must be a whole number from 1"),
    ('  digest: "0 8 * * 1"', '  digest: "@every 5 minutes"', "schedules.digest = '@every 5 minutes'"),
    ("    password_file: /run/secrets/smtp", "    password_file: /run/secrets/smtp\n  - {name: f, type: file, path: x, "
     "format: pdf}", "channels[2].format = 'pdf' is not a file format"),
    ("      until: 2026-12-31T00:00:00Z", "      until: someday", "report.mutes[0].until"),
    ("  - name: ops-mail", "  - name: ml-slack", "channels[1].name must be a unique"),
])
def test_a_bad_key_names_itself_and_its_line(tmp_path, old, new, words):
    assert old in FULL
    path = write(tmp_path, FULL.replace(old, new))
    with pytest.raises(ConfigurationError) as err:
        load(path, env={})
    assert words in err.value.one_line()
    assert "SECRET" not in err.value.one_line()


def test_the_example_file_shows_exactly_the_defaults():
    from dataclasses import replace
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "infra" / "examples" / "costagent.yaml"
    assert replace(load(example, env={}), source=None) == load(None, env={})


def test_config_validate_shows_channels_by_reference_never_a_secret(tmp_path):
    from click.testing import CliRunner

    from agent.cli import main

    result = CliRunner().invoke(main, ["config", "validate", "--config", str(write(tmp_path, FULL))],
                                env={"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/s3cr3t"})
    assert result.exit_code == 0, result.output
    assert "channel ml-slack: slack-webhook to team:ml, each:owner (url from $SLACK_WEBHOOK_URL)" in result.output
    assert "s3cr3t" not in result.output and "digest=0 8 * * 1" in result.output


def test_a_channel_ca_file_is_an_option_not_a_secret(tmp_path):
    config = load(write(tmp_path, FULL.replace("    password_file: /run/secrets/smtp",
                                               "    password_file: /run/secrets/smtp\n    ca_file: /etc/ca.pem")),
                  env={})
    mail = config.channels[1]
    assert mail.options["ca_file"] == "/etc/ca.pem" and set(mail.secrets) == {"password"}

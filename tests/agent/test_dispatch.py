"""Channels from the configuration: audiences, noise controls, once per key, a failed send retried next run,
secrets resolved by reference (and their absence named), file channels per audience."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from agent.daemon_config import Channel, ReportSettings, Secret
from agent.deliveries import Deliveries
from agent.dispatch import ChannelError, Dispatcher, audiences, open_sender
from agent.journal import Journal
from reports.channels import DeliveryError
from reports.digest import Mute
from tests.reports.digest_sample import NOW, full_digest


class Recorder:
    def __init__(self, fail: int = 0) -> None:
        self.sent: list[Any] = []
        self.fail = fail
        self.name = "recorder"

    def send(self, content: Any) -> None:
        if self.fail:
            self.fail -= 1
            raise DeliveryError(self.name, "HTTP 400: invalid_payload")
        self.sent.append(content)


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    class Clock:
        def now(self):  # type: ignore[no-untyped-def]
            return NOW

    j = Journal(f"sqlite:///{(tmp_path / 'state.db').as_posix()}", Clock())
    yield j
    j.close()


def dispatcher(journal: Journal, sender: Recorder, *audience: str, **report: Any) -> Dispatcher:
    channel = Channel("ops", "slack-webhook", audience or ("everyone",), {}, {"url": Secret(env="HOOK")})
    return Dispatcher((channel,), ReportSettings(**report), Deliveries(journal.engine, journal.clock), {},
                      opener=lambda c, env: sender, sleep=lambda s: None)


def test_each_team_gets_its_own_digest_once_per_key(journal: Journal) -> None:
    sender = Recorder()
    d = dispatcher(journal, sender, "everyone", "each:team")
    first = d.send(full_digest(), "2026-11-23T09:00Z")
    assert {o.status for o in first} == {"sent"}
    teams = {o.audience for o in first} - {"everyone"}
    assert teams and all(a.startswith("team:") for a in teams)
    again = d.send(full_digest(), "2026-11-23T09:00Z")
    assert {o.status for o in again} == {"duplicate"} and len(sender.sent) == len(first)


def test_a_failed_send_is_freed_and_sent_by_the_next_run(journal: Journal) -> None:
    sender = Recorder(fail=1)
    d = dispatcher(journal, sender)
    [failed] = d.send(full_digest(), "k1")
    assert failed.status == "failed" and "invalid_payload" in failed.detail
    [retried] = d.send(full_digest(), "k1")
    assert retried.status == "sent" and len(sender.sent) == 1


def test_a_named_team_without_findings_gets_nothing(journal: Journal) -> None:
    sender = Recorder()
    [outcome] = dispatcher(journal, sender, "team:nobody").send(full_digest(), "k1")
    assert outcome.status == "empty" and sender.sent == []


def test_muted_and_small_findings_are_left_out(journal: Journal) -> None:
    digest = full_digest()
    biggest = digest.findings[0]
    sender = Recorder()
    d = dispatcher(journal, sender, min_savings_usd=Decimal("1000"),
                   mutes=(Mute(until=NOW + timedelta(days=1), finding_id=biggest.id),))
    [outcome] = d.send(digest, "k1")
    assert outcome.detail == "2 findings"  # of 4: the muted one and the one under $1,000/month left out
    [everything] = dispatcher(journal, Recorder()).send(digest, "k2")
    assert everything.detail == "4 findings"


def test_only_new_or_changed_skips_an_unchanged_repeat(journal: Journal) -> None:
    digest = full_digest()
    sender = Recorder()
    d = dispatcher(journal, sender, only_new_or_changed=True)
    d.send(digest, "k1")
    unchanged = digest.__class__(**{**digest.__dict__, "applied": (), "due": (), "unread": ()})
    [outcome] = d.send(unchanged, "k2")
    assert outcome.status == "empty"


def test_audiences_split_by_owner() -> None:
    parts = dict(audiences(full_digest(), ("each:owner",)))
    assert parts and all(a.startswith("owner:") for a in parts)
    assert sum(len(p.findings) for p in parts.values()) == len(full_digest().findings)


def test_a_missing_secret_is_named_without_a_value(tmp_path: Path) -> None:
    channel = Channel("ops", "slack-webhook", ("everyone",), {}, {"url": Secret(env="HOOK")})
    with pytest.raises(ChannelError, match=r"channel ops: url_env names \$HOOK, which is not set"):
        open_sender(channel, {})
    empty = tmp_path / "hook"
    empty.write_text("\n")
    with pytest.raises(ChannelError, match="is empty"):
        open_sender(Channel("ops", "slack-webhook", ("everyone",), {}, {"url": Secret(file=str(empty))}), {})


def test_a_secret_file_is_read_and_stripped(tmp_path: Path) -> None:
    hook = tmp_path / "hook"
    hook.write_text("https://hooks.slack.com/services/T0/B0/abcdefghijkl\n")
    sender = open_sender(Channel("ops", "slack-webhook", ("everyone",), {}, {"url": Secret(file=str(hook))}), {})
    assert "abcdefghijkl" not in repr(sender) and "hooks.slack.com" in sender.name


def test_an_unusable_ca_file_is_named(tmp_path: Path) -> None:
    channel = Channel("mail", "email", ("everyone",), {"host": "smtp.example.com", "from": "a@example.com",
                                                      "to": ["b@example.com"], "ca_file": str(tmp_path / "nope.pem")})
    with pytest.raises(ChannelError, match="channel mail: ca_file .*nope.pem cannot be used"):
        open_sender(channel, {})


def test_a_file_channel_writes_one_file_per_audience(journal: Journal, tmp_path: Path) -> None:
    channel = Channel("files", "file", ("each:team",), {"path": str(tmp_path / "{audience}.csv"), "format": "csv"})
    d = Dispatcher((channel,), ReportSettings(), Deliveries(journal.engine, journal.clock), {})
    outcomes = d.send(full_digest(), "k1")
    files = sorted(p.name for p in tmp_path.glob("*.csv"))
    assert len(files) == len(outcomes) and all(o.status == "sent" for o in outcomes)
    assert all("<" not in name and "&" not in name for name in files)

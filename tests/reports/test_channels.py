"""``deliver`` (the one place that retries) and the file channel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reports.channels import DeliveryError, FileChannel, deliver
from reports.digest_slack import render_slack
from tests.reports.digest_sample import full_digest


class Flaky:
    """Fails with the given errors, in order, then returns "sent"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "sent"


def transient(retry_after: float | None = None) -> DeliveryError:
    return DeliveryError("test", "HTTP 503", retryable=True, retry_after=retry_after)


def test_first_success_returns_without_sleeping() -> None:
    sleeps: list[float] = []
    assert deliver(Flaky(), sleep=sleeps.append) == "sent" and sleeps == []


def test_backoff_doubles_and_is_capped() -> None:
    sleeps: list[float] = []
    send = Flaky(*(transient() for _ in range(4)))
    assert deliver(send, attempts=5, backoff=10, max_delay=25, sleep=sleeps.append) == "sent"
    assert send.calls == 5 and sleeps == [10, 20, 25, 25]


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    sleeps: list[float] = []
    deliver(Flaky(transient(retry_after=4), transient(retry_after=600)), max_delay=60, sleep=sleeps.append)
    assert sleeps == [4, 60]


def test_a_final_error_is_not_retried() -> None:
    send = Flaky(DeliveryError("test", "HTTP 404"))
    with pytest.raises(DeliveryError, match="^test: HTTP 404$"):
        deliver(send, sleep=lambda s: None)
    assert send.calls == 1


def test_giving_up_names_the_attempts() -> None:
    send = Flaky(*(transient() for _ in range(3)))
    with pytest.raises(DeliveryError, match=r"^test: HTTP 503 \(gave up after 3 attempts\)$"):
        deliver(send, attempts=3, sleep=lambda s: None)
    assert send.calls == 3


def test_other_exceptions_are_bugs_not_delivery_failures() -> None:
    send = Flaky(KeyError("text"))
    with pytest.raises(KeyError):
        deliver(send, sleep=lambda s: None)
    assert send.calls == 1


def test_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError):
        deliver(Flaky(), attempts=0)


def test_delivery_error_message_is_one_line() -> None:
    error = DeliveryError("slack-bot C1", "first\nsecond\r\n  third")
    assert str(error) == "slack-bot C1: first second third" and error.channel == "slack-bot C1"


def test_file_channel_writes_text_bytes_and_json(tmp_path: Path) -> None:
    target = tmp_path / "out" / "digest.md"
    FileChannel(target).send("# digest ü\n")
    assert target.read_text(encoding="utf-8") == "# digest ü\n"
    FileChannel(target).send(b"\x89PNG")
    assert target.read_bytes() == b"\x89PNG"
    message = render_slack(full_digest())
    FileChannel(tmp_path / "slack.json").send(message)
    assert json.loads((tmp_path / "slack.json").read_text(encoding="utf-8")) == message
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["digest.md"]  # no temporary file left


def test_file_channel_failure_is_a_delivery_error_and_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(DeliveryError, match="^file .*taken: IsADirectoryError"):
        FileChannel(tmp_path / "taken").send("x")
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]

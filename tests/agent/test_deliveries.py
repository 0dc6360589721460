"""Digest deliveries: claimed once, recorded with what was sent, freed on failure, taken over from a dead sender."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from agent.deliveries import Deliveries
from agent.journal import Journal

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


@dataclass
class Clock:
    at: datetime = T0

    def now(self) -> datetime:
        return self.at


@pytest.fixture
def journal(tmp_path):
    with Journal(f"sqlite:///{tmp_path / 's.db'}", Clock()) as j:
        yield j


def test_a_digest_is_claimed_once(journal):
    first, second = Deliveries(journal.engine, Clock()), Deliveries(journal.engine, Clock())
    assert first.claim("slack:#ml", "team:ml", "2026-11-23T09:00Z")
    assert not second.claim("slack:#ml", "team:ml", "2026-11-23T09:00Z")  # the first is still sending
    first.sent("slack:#ml", "team:ml", "2026-11-23T09:00Z", {"stop-1": Decimal("10.50")})
    assert not second.claim("slack:#ml", "team:ml", "2026-11-23T09:00Z")
    assert second.claim("email:ops", "team:ml", "2026-11-23T09:00Z")  # another channel is its own delivery


def test_previous_gives_what_was_last_sent_to_that_audience(journal):
    d = Deliveries(journal.engine, Clock())
    assert d.previous("slack:#ml", "team:ml") is None
    d.claim("slack:#ml", "team:ml", "k1")
    d.sent("slack:#ml", "team:ml", "k1", {"stop-1": Decimal("10.50")})
    d.clock.at = T0 + timedelta(days=1)
    d.claim("slack:#ml", "team:ml", "k2")
    d.sent("slack:#ml", "team:ml", "k2", {"stop-1": Decimal("12.00"), "spot-2": Decimal("3")})
    assert d.previous("slack:#ml", "team:ml") == {"stop-1": Decimal("12.00"), "spot-2": Decimal("3")}


def test_a_failed_send_is_retried_by_the_next_run(journal):
    d = Deliveries(journal.engine, Clock())
    d.claim("slack:#ml", "everyone", "k1")
    d.failed("slack:#ml", "everyone", "k1")
    assert Deliveries(journal.engine, Clock()).claim("slack:#ml", "everyone", "k1")


def test_a_claim_of_a_killed_sender_is_taken_over(journal):
    proc = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(60,))
    proc.start()
    try:
        dead = Deliveries(journal.engine, Clock(), owner=f"ops@{socket.gethostname()}:{proc.pid}:abcd1234")
        assert dead.claim("email:ops", "everyone", "k1")
        assert not Deliveries(journal.engine, Clock()).claim("email:ops", "everyone", "k1")  # alive
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        assert Deliveries(journal.engine, Clock()).claim("email:ops", "everyone", "k1")
    finally:
        if proc.is_alive():
            proc.kill()

"""The journal of the guarded apply: intent before the call, never twice, reconcile, marks, locks."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from agent.journal import (
    DONE,
    FAILED,
    INTENDED,
    RECONCILED_DONE,
    RECONCILED_NOT_DONE,
    UNDONE,
    AlreadyActed,
    Journal,
    JournalError,
    LockHeld,
    Verdict,
)
from providers.model import Cloud, ResourceRef

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
VM = ResourceRef(Cloud.AWS, "111122223333", "us-east-1", "i-0abc")
OTHER = ResourceRef(Cloud.GCP, "proj", "europe-west4", "gpu-box")


@dataclass
class MutableClock:
    at: datetime = T0

    def now(self) -> datetime:
        return self.at

    def advance(self, **kw: float) -> None:
        self.at += timedelta(**kw)


@pytest.fixture
def clock() -> MutableClock:
    return MutableClock()


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
def journal(url: str, clock: MutableClock):
    with Journal(url, clock) as j:
        yield j


def _intend(j: Journal, ref: ResourceRef = VM, kind: str = "stop", plan: str = "plan-1", **kw) -> str:
    return j.intend(ref, kind, {"reason": "idle"}, plan_id=plan, run_id="run-1", actor="ops@box",
                    before={"state": "running"}, **kw)


def test_intent_is_durable_and_visible_to_a_second_journal_before_done(journal, url, clock):
    action = _intend(journal, verdicts=[("dry-run-off", True, "apply requested"), ("tag-protect", True, "no tag")])
    with Journal(url, clock) as other:
        seen = other.get(action)
        assert seen is not None and seen.status == INTENDED and seen.finished_at is None
        assert seen.ref == VM and seen.actor == "ops@box" and seen.created_at == T0
        assert seen.verdicts == (Verdict("dry-run-off", True, "apply requested"), Verdict("tag-protect", True, "no tag"))
        assert [a.id for a in other.pending()] == [action]


def test_done_and_failed_record_the_result_and_leave_nothing_pending(journal, clock):
    ok, bad = _intend(journal), _intend(journal, ref=OTHER)
    clock.advance(seconds=30)
    assert journal.done(ok, {"state": "stopped"}).status == DONE
    record = journal.failed(bad, "AccessDenied: ec2:StopInstances")
    assert record.status == FAILED and record.error.startswith("AccessDenied") and record.finished_at == T0 + timedelta(seconds=30)
    assert journal.get(ok).after == {"state": "stopped"}
    assert journal.pending() == []


def test_a_result_is_recorded_only_once(journal):
    action = _intend(journal)
    journal.done(action)
    with pytest.raises(JournalError, match="is done, not intended"):
        journal.failed(action, "late")
    with pytest.raises(JournalError, match="no action nope"):
        journal.done("nope")


def test_the_same_plan_resource_and_kind_is_refused_while_intended_or_done(journal):
    first = _intend(journal)
    with pytest.raises(AlreadyActed, match=f"intended \\(action {first}\\)"):
        _intend(journal)
    journal.done(first)
    with pytest.raises(AlreadyActed, match="as done"):
        _intend(journal)
    assert _intend(journal, kind="resize") and _intend(journal, plan="plan-2") and _intend(journal, ref=OTHER)


def test_a_failed_action_may_be_tried_again_by_the_same_plan(journal):
    journal.failed(_intend(journal), "throttled")
    assert journal.get(_intend(journal)).status == INTENDED


def test_reconcile_happened_holds_the_key_and_not_happened_frees_it(journal, url, clock):
    crashed = _intend(journal)
    with Journal(url, clock) as next_run:  # the next run finds the intent without a result
        assert [a.id for a in next_run.pending()] == [crashed]
        assert next_run.reconcile(crashed, happened=True, after={"state": "stopped"}).status == RECONCILED_DONE
        with pytest.raises(AlreadyActed):
            _intend(next_run)
    other = _intend(journal, ref=OTHER)
    assert journal.reconcile(other, happened=False).status == RECONCILED_NOT_DONE
    assert journal.pending() == []
    assert journal.get(_intend(journal, ref=OTHER)).status == INTENDED


def test_an_undo_marks_the_original_undone_and_the_plan_does_not_redo_it(journal):
    stop = _intend(journal)
    journal.done(stop)
    start = _intend(journal, kind="start", plan="undo-plan-1", undo_of=stop)
    journal.done(start, {"state": "running"})
    assert journal.get(stop).status == UNDONE and journal.get(start).undo_of == stop
    with pytest.raises(AlreadyActed, match="as undone"):
        _intend(journal)


def test_history_is_newest_first_and_filters_by_resource_and_time(journal, clock):
    a = _intend(journal)
    b = _intend(journal, ref=OTHER)
    clock.advance(hours=1)
    c = _intend(journal, kind="start")
    d = _intend(journal, kind="resize")  # same instant: insertion order breaks the tie
    assert [r.id for r in journal.history()] == [d, c, b, a]
    assert [r.id for r in journal.history(VM)] == [d, c, a]
    assert [r.id for r in journal.history(since=T0 + timedelta(minutes=30))] == [d, c]
    assert [r.id for r in journal.history(OTHER, since=T0 + timedelta(minutes=30))] == []


def test_last_action_skips_what_did_not_happen_and_filters_kinds(journal, clock):
    stop = _intend(journal)
    journal.done(stop)
    clock.advance(minutes=5)
    journal.failed(_intend(journal, kind="start"), "quota")
    assert journal.last_action(VM).id == stop
    assert journal.last_action(VM, kinds=["start"]) is None
    assert journal.last_action(OTHER) is None


def test_json_fields_round_trip(journal):
    params = {"target": "g5.xlarge", "gpus": [0, 1], "nested": {"ok": True, "none": None}, "ratio": 0.25}
    before = {"price": Decimal("1.006"), "since": T0, "tags": {"team": "ml"}}
    action = journal.intend(VM, "resize", params, plan_id="p", run_id="r", before=before)
    journal.done(action, after=["a", 1, None])
    record = journal.get(action)
    assert record.params == params
    assert record.before == {"price": "1.006", "since": "2025-03-01T12:00:00.000000+00:00", "tags": {"team": "ml"}}
    assert record.after == ["a", 1, None]
    with pytest.raises(TypeError, match="JSON values only"):
        journal.intend(VM, "stop", {"x": object()}, plan_id="p2", run_id="r")


def test_marks_lifecycle(journal, clock):
    due = T0 + timedelta(days=3)
    mark = journal.mark(VM, "stop", due)
    assert (mark.resource_key, mark.kind, mark.marked_at, mark.act_after, mark.notified) == (VM.key, "stop", T0, due, False)
    clock.advance(days=1)
    assert journal.mark(VM.key, "stop", due + timedelta(days=9)) == mark  # an open mark keeps its grace period
    assert journal.mark_notified(VM, "stop") and journal.marks(VM)[0].notified
    journal.mark(OTHER, "stop", due)
    assert [m.resource_key for m in journal.marks()] == [VM.key, OTHER.key]
    assert journal.clear_mark(VM, "stop") and not journal.clear_mark(VM, "stop")
    assert journal.marks(VM) == [] and journal.marks(VM, include_cleared=True)[0].cleared_at == T0 + timedelta(days=1)
    assert journal.mark(VM, "stop", due).marked_at == T0 + timedelta(days=1)  # a new mark after a clear


def test_lock_is_exclusive_between_two_journals(journal, url, clock):
    with Journal(url, clock) as other:
        with journal.lock(owner="agent-a") as lease:
            assert lease.expires_at == T0 + timedelta(minutes=30)
            with pytest.raises(LockHeld) as held:
                other.acquire(owner="agent-b")
            assert held.value.owner == "agent-a" and held.value.expires_at == lease.expires_at
            with other.lock("another-name", owner="agent-b"):
                pass
        with other.lock(owner="agent-b"):  # released on exit
            pass


def test_an_expired_lock_is_taken_over_and_the_old_owner_cannot_release_it(journal, url, clock):
    with Journal(url, clock) as other:
        with journal.lock(owner="agent-a", ttl=timedelta(minutes=1)):
            clock.advance(minutes=2)
            with other.lock(owner="agent-b") as lease:
                assert lease.owner == "agent-b"
        # agent-a's exit released nothing: agent-b held it until its own exit
        assert journal.acquire(owner="agent-c").owner == "agent-c"


def test_only_the_owner_releases_and_renews(journal, clock):
    lease = journal.acquire(owner="agent-a", ttl=timedelta(minutes=1))
    assert not journal.release("apply", "agent-b")
    with pytest.raises(LockHeld):
        journal.acquire(owner="agent-b")
    clock.advance(seconds=50)
    assert journal.renew(lease, ttl=timedelta(minutes=1)).expires_at == T0 + timedelta(seconds=110)
    clock.advance(minutes=5)
    with pytest.raises(JournalError, match="expired"):
        journal.renew(lease)
    assert journal.release("apply", "agent-a")


def _child_lock(url: str, ttl_s: float) -> None:
    try:
        Journal(url).acquire(owner=f"child-{os.getpid()}", ttl=timedelta(seconds=ttl_s))
    except LockHeld:
        os._exit(3)
    os._exit(0)  # never releases: a crash while holding the lease


def _run_child(url: str, ttl_s: float) -> int:
    proc = multiprocessing.get_context("spawn").Process(target=_child_lock, args=(url, ttl_s))
    proc.start()
    proc.join(timeout=20)
    return proc.exitcode


def test_lock_is_exclusive_between_processes_and_a_dead_holder_expires(url):
    with Journal(url) as journal:  # the system clock: processes share only the database
        with journal.lock(owner="parent"):
            assert _run_child(url, 60) == 3  # the parent holds it: the child does not act
        assert _run_child(url, 0.8) == 0  # the child takes it and dies holding it
        with pytest.raises(LockHeld, match="child-") as held:
            journal.acquire(owner="parent")
        time.sleep(max(0.0, (held.value.expires_at - datetime.now(timezone.utc)).total_seconds()) + 0.05)
        assert journal.acquire(owner="parent").owner == "parent"


@pytest.mark.parametrize("bad", ["nosuchdb://x", "not a url", "sqlite:////no/such/dir/state.db",
                                 "postgresql+nosuchdriver://u:secret@h/db"])
def test_a_bad_url_raises_a_journal_error_without_the_password(bad):
    with pytest.raises(JournalError, match="cannot open the journal at") as err:
        Journal(bad)
    assert "secret" not in str(err.value) and "\n" not in str(err.value)


def test_a_decision_is_journaled_with_its_verdicts_and_holds_no_key(journal):
    refused = journal.decided(VM, "stop", {}, plan_id="plan-1", run_id="run-1", status="refused",
                              verdicts=[("scope", False, "opted out by costagent:skip")], actor="ops@box")
    record = journal.get(refused)
    assert record.status == "refused" and record.verdicts == (Verdict("scope", False, "opted out by costagent:skip"),)
    assert journal.last_action(VM) is None  # a refusal is no action: no cooldown starts
    _intend(journal)  # and the same plan may still act on it


def test_a_decision_status_must_be_one_that_changes_nothing(journal):
    with pytest.raises(JournalError, match="not a decision status"):
        journal.decided(VM, "stop", {}, plan_id="p", run_id="r", status="done", verdicts=[])


def test_find_takes_a_unique_prefix_of_at_least_six_characters(journal):
    action_id = _intend(journal)
    assert journal.find(action_id[:8]).id == action_id
    with pytest.raises(JournalError, match="at least 6 hex"):
        journal.find(action_id[:4])
    with pytest.raises(JournalError, match="no action"):
        journal.find("ffffffffff" if not action_id.startswith("ffff") else "0000000000")


def test_history_filters_by_status_and_plan(journal):
    done = _intend(journal)
    journal.done(done)
    journal.decided(OTHER, "stop", {}, plan_id="plan-2", run_id="r", status="dry-run", verdicts=[])
    assert [r.id for r in journal.history(statuses=["done"])] == [done]
    assert [r.plan_id for r in journal.history(plan_id="plan-2")] == ["plan-2"]


def test_a_lease_of_a_killed_process_on_this_host_is_taken_at_once(url):
    proc = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(60,))
    proc.start()
    try:
        with Journal(url) as journal:
            dead_owner = f"ops@{socket.gethostname()}:{proc.pid}:abcd1234"
            journal.acquire(owner=dead_owner, ttl=timedelta(hours=1))
            with pytest.raises(LockHeld):  # alive: its lease stands
                journal.acquire(owner="parent")
            os.kill(proc.pid, signal.SIGKILL)
            proc.join()
            assert journal.acquire(owner="parent").owner == "parent"
    finally:
        if proc.is_alive():
            proc.kill()


def test_a_lease_of_another_host_is_never_judged_dead(url):
    with Journal(url) as journal:
        journal.acquire(owner="ops@elsewhere.example:1:abcd1234", ttl=timedelta(hours=1))
        with pytest.raises(LockHeld):
            journal.acquire(owner="parent")


def test_azure_ids_match_whatever_their_case(journal):
    vm = ResourceRef(Cloud.AZURE, "sub", "eastus", "/subscriptions/sub/resourceGroups/RG-ML/providers/"
                                                   "Microsoft.Compute/virtualMachines/box")
    shouted = ResourceRef(vm.cloud, vm.account, vm.region, vm.id.upper())
    done = _intend(journal, vm)
    journal.done(done)
    assert journal.last_action(shouted).id == done
    with pytest.raises(AlreadyActed):
        _intend(journal, shouted)
    journal.mark(vm, "stop", T0)
    assert [m.kind for m in journal.marks(shouted)] == ["stop"]

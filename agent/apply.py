"""The guarded apply: take a plan's actions through every guard, act on the allowed ones, journal everything.

One apply, under the journal's ``apply`` lease (one agent acts at a time):

1. **Reconcile** intents a crashed apply left without a result: read each resource; the effect is there
   (``reconciled-done``, never repeated) or not (``reconciled-not-done``, the plan may try again).
2. **Refresh** the inventory of the plan's regions once: current tags (an opt-out added since the plan
   counts), the fleet's size (blast radius), what still exists.
3. For each action, in the plan's order (biggest savings first), **evaluate every guard**
   (``agent.guards``; freshness re-reads the resource and its metrics right before acting), then:
   allowed -> journal the intent (committed), call the actuator, journal the result; a first sight under a
   grace period -> mark it and notify; otherwise journal the refusal with every verdict.

The journal's (plan, resource, kind) key makes a second apply of the same plan skip what the first did.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from agent.apply_config import ApplySettings
from agent.clock import Clock
from agent.freshness import FreshnessCheck
from agent.guards import Candidate, Decision, Mode, Policy, RunState, evaluate
from agent.journal import (DONE, DRY_RUN, FAILED, MARKED, RECONCILED_DONE, REFUSED, ActionRecord, AlreadyActed,
                           Journal, JournalError, Lease)
from agent.plan import Plan, PlannedAction, group_limits
from providers.base import Actuator, Provider
from providers.errors import ProviderError
from providers.model import Action, Cloud, Group, Resource, ResourceRef

log = logging.getLogger(__name__)

LEASE = "apply"
LEASE_TTL = timedelta(minutes=2)  # renewed by a heartbeat while the apply runs; a dead holder's lapses soon
#: Mark notices: (what was marked, when the action may follow) -> whether the owners were told.
Notifier = Callable[[Sequence[tuple[Candidate, datetime]]], bool]


@dataclass(frozen=True)
class Step:
    """What became of one planned action."""

    planned: PlannedAction
    status: str  # done | failed | refused | dry-run | marked | skipped (already done by this plan)
    verdicts: tuple[Any, ...]
    action_id: str | None = None
    detail: str = ""
    before: Any = None
    after: Any = None


@dataclass(frozen=True)
class ApplyResult:
    plan_id: str
    run_id: str
    mode: Mode
    steps: tuple[Step, ...]
    reconciled: tuple[ActionRecord, ...] = ()
    unreconciled: tuple[str, ...] = ()  # pending intents of clouds this apply did not open

    def count(self, status: str) -> int:
        return sum(1 for s in self.steps if s.status == status)

    @property
    def failed(self) -> bool:
        return any(s.status == FAILED for s in self.steps)


@dataclass
class CloudSide:
    provider: Provider
    actuator: Actuator


def inverse(record: ActionRecord) -> Action:
    """The action whose effect shows that ``record`` (an action) was undone: for settling an undo's intent."""
    kind = record.kind.removeprefix("undo:")
    before, params = record.before or {}, dict(record.params or {})  # params keep the addressing (GCP zone)
    if kind in ("stop", "deallocate", "start"):
        was = str(before.get("state", "")).lower()
        return Action("start" if was in ("running", "pending") else "stop", record.ref, params)
    if kind == "resize":
        return Action("resize", record.ref, {**params, "to_type": before.get("type", before.get("size"))})
    return Action(kind, record.ref, {**params, **{k: v for k, v in before.items() if k != "scheduled_actions"}})


def capability(clouds: Mapping[Cloud, CloudSide], c: Candidate) -> str | None:
    """Why the cloud's actuator cannot do ``c`` (its declared kinds, then the group limits), None when it can."""
    side = clouds.get(c.ref.cloud)
    if side is None:
        return f"{c.ref.cloud} is not opened by this run"
    why = side.actuator.kinds().get(c.kind, f"unknown action kind {c.kind!r}")
    return why or group_limits(c)


class Marks:
    """``guards.Marks`` over the journal."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def _mark(self, key: str, kind: str) -> Any:
        return next((m for m in self.journal.marks(key) if m.kind == kind), None)

    def marked_at(self, key: str, kind: str) -> datetime | None:
        m = self._mark(key, kind)
        return None if m is None else m.marked_at

    def notified(self, key: str, kind: str) -> bool:
        m = self._mark(key, kind)
        return bool(m and m.notified)


def last_acted(journal: Journal) -> Callable[[str], datetime | None]:
    """``guards.History`` over the journal: when anything last happened (or may have) to a resource key."""
    def last(key: str) -> datetime | None:
        cloud, account, region, rid = key.split("/", 3)
        found = journal.last_action(ResourceRef(Cloud(cloud), account, region, rid))
        return None if found is None else found.created_at

    return last


class Applier:
    def __init__(self, journal: Journal, clouds: Mapping[Cloud, CloudSide], settings: ApplySettings, clock: Clock,
                 *, actor: str, cli_mode: Mode | None = None, approved: Sequence[str] = (),
                 notifier: Notifier | None = None, period: timedelta = timedelta(minutes=5)) -> None:
        self.journal, self.clouds, self.clock, self.actor = journal, dict(clouds), clock, actor
        policy = settings.policy
        if approved:
            policy = Policy(**{**policy.__dict__, "approved_ids": policy.approved_ids | frozenset(approved)})
        self.policy, self.freshness, self.cli_mode, self.period = policy, settings.freshness, cli_mode, period
        self.notifier = notifier or (lambda marks: True)
        self.run_id = uuid.uuid4().hex[:12]
        self.lease_lost = threading.Event()  # set by the heartbeat when the lease could not be renewed

    # -- the lease ----------------------------------------------------------------------------------------

    @contextmanager
    def lease(self) -> Iterator[Lease]:
        """Hold the apply lease, renewed by a heartbeat thread, released on exit (raises ``LockHeld``)."""
        lease = self.journal.acquire(LEASE, ttl=LEASE_TTL)
        stop = threading.Event()

        def beat() -> None:
            nonlocal lease
            while not stop.wait(LEASE_TTL.total_seconds() / 4):
                try:
                    lease = self.journal.renew(lease, LEASE_TTL)
                except JournalError as exc:  # another agent may act now: this one must not
                    log.error("event=lease_lost %s", exc)
                    self.lease_lost.set()
                    return

        thread = threading.Thread(target=beat, name="costagent-lease", daemon=True)
        thread.start()
        try:
            yield lease
        finally:
            stop.set()
            thread.join(timeout=5)
            self.journal.release(lease.name, lease.owner)

    # -- reconcile ----------------------------------------------------------------------------------------

    def reconcile(self) -> tuple[list[ActionRecord], list[str]]:
        """Settle every intent left without a result by reading its resource now."""
        settled, left = [], []
        for record in self.journal.pending():
            side = self.clouds.get(record.ref.cloud)
            if side is None:
                left.append(f"{record.id[:12]} {record.kind} {record.ref.key} ({record.ref.cloud} not opened)")
                continue
            action = inverse(self.journal.get(record.undo_of)) if record.undo_of and self.journal.get(
                record.undo_of) else Action(record.kind, record.ref, dict(record.params or {}))
            try:
                state = dict(side.actuator.read(action))
                happened = side.actuator.effect_seen(action, state)
            except ProviderError as exc:
                left.append(f"{record.id[:12]} {record.kind} {record.ref.key}: {exc.one_line()}")
                continue
            settled.append(self.journal.reconcile(record.id, happened, after=state))
            log.info("event=reconciled action=%s happened=%s", record.id, happened)
        return settled, left

    # -- the run ------------------------------------------------------------------------------------------

    def fresh_inventory(self, plan: Plan) -> tuple[dict[str, Resource], dict[str, Group], int]:
        """Resources and groups of the plan's regions, by key, and the GPU fleet's size there."""
        resources: dict[str, Resource] = {}
        groups: dict[str, Group] = {}
        for cloud, side in self.clouds.items():
            for region in plan.regions.get(str(cloud), ()):
                resources.update({r.ref.key: r for r in side.provider.resources(region)})
                if any(p.candidate.kind == "scale" and p.candidate.ref.cloud == cloud for p in plan.actions):
                    groups.update({g.ref.key: g for g in side.provider.groups(region)})
        fleet = sum(1 for r in resources.values() if r.has_gpu)
        return resources, groups, fleet

    def capability(self, c: Candidate) -> str | None:
        return capability(self.clouds, c)

    def run(self, plan: Plan) -> ApplyResult:
        reconciled, left = self.reconcile()
        resources, groups, fleet = self.fresh_inventory(plan)
        marks = Marks(self.journal)
        observed = {p.candidate.ref.key: p.observed for p in plan.actions}

        def fresh_record(c: Candidate) -> Resource | None:
            return resources.get(c.ref.key)

        check = FreshnessCheck({str(k): s.provider for k, s in self.clouds.items()},
                               {str(k): s.actuator for k, s in self.clouds.items()}, fresh_record, self.clock.now,
                               self.freshness, self.period, observed)
        run = RunState(fleet)
        steps = []
        for planned in plan.actions:
            steps.append(self._one(plan, planned, resources, groups, run, marks, check))
        return ApplyResult(plan.plan_id, self.run_id, min(self.policy.mode, self.cli_mode or Mode.APPLY),
                           tuple(steps), tuple(reconciled), tuple(left))

    def _one(self, plan: Plan, planned: PlannedAction, resources: Mapping[str, Resource],
             groups: Mapping[str, Group], run: RunState, marks: Marks, check: FreshnessCheck) -> Step:
        c = planned.candidate
        now = self.clock.now()
        record = resources.get(c.ref.key) or _group_by_name(groups, c.ref)
        if record is None:
            verdicts = (("exists", False, "not in the fresh inventory: gone, or outside the listed regions"),)
            action_id = self._decided(plan, c, REFUSED, verdicts)
            return Step(planned, REFUSED, verdicts, action_id, verdicts[0][2])
        c = Candidate(c.kind, c.ref, dict(record.tags), c.recommender, c.recommendation_id, c.params,
                      c.monthly_savings_usd)
        decision = evaluate(c, self.policy, now=now, run_state=run, marks=marks, history=last_acted(self.journal),
                            capabilities=self.capability, freshness=check, cli_mode=self.cli_mode)
        verdicts = tuple((v.guard, v.allowed, v.reason) for v in decision.verdicts)
        if decision.would_act:
            run.admitted.append(c.ref.key)
        if decision.to_mark and decision.mode is Mode.APPLY:
            return self._mark(plan, planned, c, verdicts, now)
        if not decision.allowed:
            status = DRY_RUN if decision.would_act else REFUSED
            action_id = self._decided(plan, c, status, verdicts)
            reason = "; ".join(f"{g}: {r}" for g, ok, r in verdicts if not ok and not (status == DRY_RUN))
            return Step(planned, status, verdicts, action_id, reason or "dry run: every other guard allows")
        return self._act(plan, planned, c, decision, verdicts)

    def _act(self, plan: Plan, planned: PlannedAction, c: Candidate, decision: Decision,
             verdicts: tuple[tuple[str, bool, str], ...]) -> Step:
        if self.lease_lost.is_set():
            verdicts += (("lease", False, "the apply lease was lost: another agent may be acting"),)
            return Step(planned, REFUSED, verdicts, self._decided(plan, c, REFUSED, verdicts), verdicts[-1][2])
        actuator = self.clouds[c.ref.cloud].actuator
        action = Action(c.kind, c.ref, dict(c.params))
        try:
            before = dict(actuator.read(action))
            action_id = self.journal.intend(c.ref, c.kind, c.params, plan_id=plan.plan_id, run_id=self.run_id,
                                            actor=self.actor, before=before, verdicts=verdicts)
        except AlreadyActed as exc:
            return Step(planned, "skipped", verdicts, None, str(exc))
        except ProviderError as exc:
            action_id = self._decided(plan, c, REFUSED, verdicts + (("read", False, exc.one_line()),))
            return Step(planned, REFUSED, verdicts, action_id, f"could not read it before acting: {exc.one_line()}")
        log.info("event=act action=%s kind=%s resource=%s", action_id, c.kind, c.ref.key)
        try:
            outcome = actuator.execute(action)
        except ProviderError as exc:
            self.journal.failed(action_id, exc.one_line())
            return Step(planned, FAILED, verdicts, action_id, exc.one_line(), before)
        done = self.journal.done(action_id, after=dict(outcome.after))
        if self.policy.grace_hours > 0:
            self.journal.clear_mark(c.ref, c.kind)
        return Step(planned, DONE, verdicts, action_id, outcome.note, done.before, done.after)

    def _mark(self, plan: Plan, planned: PlannedAction, c: Candidate, verdicts: tuple[tuple[str, bool, str], ...],
              now: datetime) -> Step:
        act_after = now + timedelta(hours=self.policy.grace_hours)
        self.journal.mark(c.ref, c.kind, act_after)
        told = self.notifier([(c, act_after)])
        if told:
            self.journal.mark_notified(c.ref, c.kind)
        note = f"marked: act after {act_after.isoformat()}; owners {'notified' if told else 'NOT notified yet'}"
        action_id = self._decided(plan, c, MARKED, verdicts, note)
        return Step(planned, MARKED, verdicts, action_id, note)

    def _decided(self, plan: Plan, c: Candidate, status: str, verdicts: Sequence[tuple[str, bool, str]],
                 note: str | None = None) -> str:
        return self.journal.decided(c.ref, c.kind, c.params, plan_id=plan.plan_id, run_id=self.run_id,
                                    status=status, verdicts=verdicts, actor=self.actor, note=note)

    # -- undo ---------------------------------------------------------------------------------------------

    def undo(self, record: ActionRecord) -> ActionRecord:
        """Reverse a done action: the actuator restores its ``before``; journaled as an action of its own."""
        if record.status not in (DONE, RECONCILED_DONE):
            raise JournalError(f"action {record.id[:12]} is {record.status}: only a done action can be undone")
        if record.kind.startswith("undo:"):
            raise JournalError(f"action {record.id[:12]} is itself an undo: apply a new plan instead")
        side = self.clouds.get(record.ref.cloud)
        if side is None:
            raise JournalError(f"action {record.id[:12]} is on {record.ref.cloud}, which is not opened")
        action = Action(record.kind, record.ref, dict(record.params or {}))
        now_state = dict(side.actuator.read(action))
        undo_id = self.journal.intend(record.ref, f"undo:{record.kind}", record.params or {},
                                      plan_id=f"undo-{record.id}", run_id=self.run_id, actor=self.actor,
                                      before=now_state, undo_of=record.id,
                                      verdicts=[("undo", True, f"undo of {record.id} requested by {self.actor}")])
        try:
            outcome = side.actuator.undo(action, record.before or {})
        except ProviderError as exc:
            return self.journal.failed(undo_id, exc.one_line())
        return self.journal.done(undo_id, after={**dict(outcome.after), **({"note": outcome.note}
                                                                              if outcome.note else {})})


def _group_by_name(groups: Mapping[str, Group], ref: ResourceRef) -> Group | None:
    """A group's plan ref may be its ARM id (Azure scale sets) while the inventory keys it by name."""
    found = groups.get(ref.key)
    if found is not None:
        return found
    name = ref.id.rstrip("/").rsplit("/", 1)[-1]
    return next((g for g in groups.values() if g.ref.cloud == ref.cloud and g.ref.account == ref.account
                 and g.ref.id == name), None)


__all__ = ["Applier", "ApplyResult", "CloudSide", "Step", "inverse", "LEASE"]

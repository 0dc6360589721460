"""The journal and state store of the guarded apply (SQLAlchemy Core; SQLite by default, PostgreSQL by URL).

Guarantees:

- **Intent before the call.** ``intend`` commits the intended action (and the guards' verdicts) before it
  returns, so a crash during the cloud call leaves a durable ``intended`` row; ``done``/``failed`` record
  the result after. ``pending`` lists intents without a result; the apply reads the resource and settles
  each with ``reconcile`` (``reconciled-done`` / ``reconciled-not-done``): no action is lost.
- **Never twice.** An action is keyed by (plan, resource, kind); while one is ``intended``, ``done``,
  ``reconciled-done`` or ``undone`` the key is held by a unique index, so a second ``intend`` of the same
  plan + resource + kind raises ``AlreadyActed`` -- atomically, even from another process. ``failed`` and
  ``reconciled-not-done`` free the key (a re-run may try again). An undone action keeps its key: re-running
  the plan does not redo what a person undid.
- **One actor.** ``lock`` takes a named lease in the database (``agent/lease.py``), so of two agents sharing
  the database only one acts.
- Times are UTC, stored as fixed-width ISO text (``2025-01-02T03:04:05.000000+00:00``), so they compare
  correctly in SQL on every backend; "now" comes only from the injected ``Clock``.
- JSON fields (params, before, after) round-trip JSON values exactly; ``Decimal`` and ``datetime`` values
  are stored as strings.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, create_engine, event, func, insert, select, true, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError

from agent.clock import Clock, SystemClock
from agent.lease import Lease, LeaseStore, LockHeld, default_actor, holder_is_dead, lease_owner
from agent.state_schema import JournalError, _iso, _time, actions, guard_verdicts, marks_table, metadata
from providers.model import Cloud, ResourceRef

__all__ = ["Journal", "JournalError", "AlreadyActed", "LockHeld", "Lease", "ActionRecord", "Mark", "Verdict",
           "default_actor", "lease_owner", "holder_is_dead", "safe_url"]

INTENDED, DONE, FAILED = "intended", "done", "failed"
RECONCILED_DONE, RECONCILED_NOT_DONE, UNDONE = "reconciled-done", "reconciled-not-done", "undone"
#: Decisions that changed nothing, journaled with every guard's verdict: a guard refused; a dry run would
#: have acted; a grace period started (the resource was marked, owners told).
REFUSED, DRY_RUN, MARKED = "refused", "dry-run", "marked"
STATUSES = (INTENDED, DONE, FAILED, RECONCILED_DONE, RECONCILED_NOT_DONE, UNDONE, REFUSED, DRY_RUN, MARKED)
DECISIONS = (REFUSED, DRY_RUN, MARKED)
#: Statuses meaning "this happened, or may have": they hold the (plan, resource, kind) key.
ACTED = (INTENDED, DONE, RECONCILED_DONE, UNDONE)


class AlreadyActed(JournalError):
    """The same plan already acted (or intends to act) on this resource with this kind."""


@dataclass(frozen=True, slots=True)
class Verdict:
    guard: str
    allowed: bool
    reason: str


@dataclass(frozen=True)
class ActionRecord:
    id: str
    plan_id: str
    run_id: str
    actor: str
    kind: str
    ref: ResourceRef
    params: Any
    status: str
    before: Any
    after: Any
    error: str | None
    undo_of: str | None
    created_at: datetime
    finished_at: datetime | None
    verdicts: tuple[Verdict, ...] = ()


@dataclass(frozen=True, slots=True)
class Mark:
    resource_key: str
    kind: str
    marked_at: datetime
    act_after: datetime
    notified: bool
    cleared_at: datetime | None


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return _iso(value)
    raise TypeError(f"cannot store {type(value).__name__} in the journal (JSON values only)")


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=_json_default)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _key(ref: ResourceRef | str) -> str:
    """The resource's key; an Azure one lower-cased (ARM ids are case-insensitive)."""
    if isinstance(ref, ResourceRef):
        return ref.key.lower() if ref.cloud == Cloud.AZURE else ref.key
    return ref.lower() if ref.startswith(f"{Cloud.AZURE}/") else ref


def safe_url(url: str) -> str:
    """The URL with its password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


class Journal(LeaseStore):
    """Actions, guard verdicts, grace-period marks and locks, in one database shared by every agent."""

    def __init__(self, url: str = "sqlite:///costagent-state.db", clock: Clock = SystemClock()) -> None:
        self.url, self.clock = url, clock
        try:
            self.engine: Engine = create_engine(url)
            if self.engine.dialect.name == "sqlite":
                event.listen(self.engine, "connect", _sqlite_pragmas)
            metadata.create_all(self.engine)
        except (SQLAlchemyError, ValueError, ImportError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise JournalError(f"cannot open the journal at {safe_url(url)}: {reason}") from None

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- actions -------------------------------------------------------------------------------------

    def intend(self, ref: ResourceRef, kind: str, params: Mapping[str, Any] | None = None, *, plan_id: str,
               run_id: str, actor: str | None = None, before: Any = None,
               verdicts: Iterable[tuple[str, bool, str]] = (), action_id: str | None = None,
               undo_of: str | None = None) -> str:
        """Record the intent durably (committed before returning) and return its id.

        Raises ``AlreadyActed`` when this plan already holds an intended/done action of ``kind`` on ``ref``.
        """
        action_id = action_id or uuid.uuid4().hex
        active = f"{plan_id}|{_key(ref)}|{kind}"
        row = dict(id=action_id, plan_id=plan_id, run_id=run_id, actor=actor or default_actor(), kind=kind,
                   cloud=str(ref.cloud), account=ref.account, region=ref.region, resource_id=ref.id,
                   params=_dumps(dict(params or {})), status=INTENDED, before=_dumps(before), undo_of=undo_of,
                   active_key=active, created_at=_iso(self.clock.now()))
        rows = [dict(action_id=action_id, position=i, guard=g, allowed=bool(a), reason=r)
                for i, (g, a, r) in enumerate(verdicts)]
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(actions), row)
                if rows:
                    conn.execute(insert(guard_verdicts), rows)
        except IntegrityError:
            held = self._one(actions.c.active_key == active)
            if held is None:  # the clash was on the id
                raise JournalError(f"action id {action_id} is already in the journal") from None
            raise AlreadyActed(f"plan {plan_id} already has {kind} of {ref.key} as {held.status} "
                               f"(action {held.id})") from None
        return action_id

    def decided(self, ref: ResourceRef, kind: str, params: Mapping[str, Any] | None = None, *, plan_id: str,
                run_id: str, status: str, verdicts: Iterable[tuple[str, bool, str]], actor: str | None = None,
                before: Any = None, note: str | None = None) -> str:
        """Journal a decision that changed nothing (``REFUSED``, ``DRY_RUN``, ``MARKED``) with its verdicts.

        It holds no key: a later run may still act once the guards allow.
        """
        if status not in DECISIONS:
            raise JournalError(f"{status!r} is not a decision status ({', '.join(DECISIONS)})")
        action_id = uuid.uuid4().hex
        now = _iso(self.clock.now())
        row = dict(id=action_id, plan_id=plan_id, run_id=run_id, actor=actor or default_actor(), kind=kind,
                   cloud=str(ref.cloud), account=ref.account, region=ref.region, resource_id=ref.id,
                   params=_dumps(dict(params or {})), status=status, before=_dumps(before), error=note,
                   active_key=None, created_at=now, finished_at=now)
        rows = [dict(action_id=action_id, position=i, guard=g, allowed=bool(a), reason=r)
                for i, (g, a, r) in enumerate(verdicts)]
        with self.engine.begin() as conn:
            conn.execute(insert(actions), row)
            if rows:
                conn.execute(insert(guard_verdicts), rows)
        return action_id

    def find(self, prefix: str) -> ActionRecord:
        """The action whose id is ``prefix`` or starts with it (at least 6 characters, like a short git hash)."""
        prefix = prefix.strip().lower()
        if len(prefix) < 6 or not re.fullmatch(r"[0-9a-f]+", prefix):
            raise JournalError(f"action id {prefix!r}: give at least 6 hex characters of an id from `costagent journal`")
        found = self._records(actions.c.id.like(f"{prefix}%"), limit=2)
        if not found:
            raise JournalError(f"no action {prefix} in the journal at {safe_url(self.url)}")
        if len(found) > 1:
            raise JournalError(f"action id {prefix} is ambiguous: give more characters")
        return found[0]

    def done(self, action_id: str, after: Any = None) -> ActionRecord:
        """The cloud call succeeded; an undo (done or reconciled-done) marks the action it undoes ``undone``."""
        return self._finish(action_id, DONE, after=_dumps(after))

    def failed(self, action_id: str, error: str) -> ActionRecord:
        """The cloud call failed (nothing changed); a re-run of the plan may try again."""
        return self._finish(action_id, FAILED, error=error, active_key=None)

    def reconcile(self, action_id: str, happened: bool, after: Any = None) -> ActionRecord:
        """Settle a pending intent from what the resource shows now."""
        if happened:
            return self._finish(action_id, RECONCILED_DONE, after=_dumps(after))
        return self._finish(action_id, RECONCILED_NOT_DONE, after=_dumps(after), active_key=None)

    def pending(self) -> list[ActionRecord]:
        """Intents without a result (a crash between intent and result), oldest first."""
        return self._records(actions.c.status == INTENDED, newest_first=False)

    def get(self, action_id: str) -> ActionRecord | None:
        found = self._records(actions.c.id == action_id)
        return found[0] if found else None

    def history(self, ref: ResourceRef | None = None, since: datetime | None = None,
                statuses: Sequence[str] | None = None, plan_id: str | None = None,
                limit: int | None = None) -> list[ActionRecord]:
        """Every action (of ``ref``, created at or after ``since``, with one of ``statuses``), newest first."""
        where = [] if ref is None else self._ref_filter(ref)
        if since is not None:
            where.append(actions.c.created_at >= _iso(since))
        if statuses is not None:
            where.append(actions.c.status.in_(list(statuses)))
        if plan_id is not None:
            where.append(actions.c.plan_id == plan_id)
        return self._records(and_(true(), *where), limit=limit)

    def last_action(self, ref: ResourceRef, kinds: Sequence[str] | None = None) -> ActionRecord | None:
        """The newest action on ``ref`` that happened or may have (for cooldowns); ``kinds`` narrows it."""
        where = [*self._ref_filter(ref), actions.c.status.in_(ACTED)]
        if kinds is not None:
            where.append(actions.c.kind.in_(list(kinds)))
        found = self._records(and_(*where), limit=1)
        return found[0] if found else None

    def _finish(self, action_id: str, status: str, **values: Any) -> ActionRecord:
        with self.engine.begin() as conn:
            changed = conn.execute(update(actions).where(and_(actions.c.id == action_id,
                                                              actions.c.status == INTENDED))
                                   .values(status=status, finished_at=_iso(self.clock.now()), **values)).rowcount
            if changed and status in (DONE, RECONCILED_DONE):  # an undo that happened: in the same transaction
                undone = select(actions.c.undo_of).where(actions.c.id == action_id).scalar_subquery()
                conn.execute(update(actions).where(and_(actions.c.id == undone,
                                                        actions.c.status.in_((DONE, RECONCILED_DONE))))
                             .values(status=UNDONE))
        record = self.get(action_id)
        if record is None:
            raise JournalError(f"no action {action_id} in the journal")
        if not changed:
            raise JournalError(f"action {action_id} is {record.status}, not {INTENDED}: cannot make it {status}")
        return record

    @staticmethod
    def _ref_filter(ref: ResourceRef) -> list[Any]:
        same = [actions.c.cloud == str(ref.cloud), actions.c.account == ref.account, actions.c.region == ref.region]
        if ref.cloud == Cloud.AZURE:  # ARM ids are case-insensitive, and APIs differ in their resource groups' case
            return [*same, func.lower(actions.c.resource_id) == ref.id.lower()]
        return [*same, actions.c.resource_id == ref.id]

    def _one(self, where: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(actions).where(where)).first()

    def _records(self, where: Any, newest_first: bool = True, limit: int | None = None) -> list[ActionRecord]:
        order = (actions.c.created_at.desc(), actions.c.seq.desc()) if newest_first else (
            actions.c.created_at, actions.c.seq)
        with self.engine.connect() as conn:
            rows = conn.execute(select(actions).where(where).order_by(*order).limit(limit)).all()
            verdicts: dict[str, list[Verdict]] = {}
            if rows:
                found = conn.execute(select(guard_verdicts).where(guard_verdicts.c.action_id.in_([r.id for r in rows]))
                                     .order_by(guard_verdicts.c.action_id, guard_verdicts.c.position))
                for v in found:
                    verdicts.setdefault(v.action_id, []).append(Verdict(v.guard, bool(v.allowed), v.reason))
        return [ActionRecord(
            id=r.id, plan_id=r.plan_id, run_id=r.run_id, actor=r.actor, kind=r.kind,
            ref=ResourceRef(Cloud(r.cloud), r.account, r.region, r.resource_id), params=_loads(r.params),
            status=r.status, before=_loads(r.before), after=_loads(r.after), error=r.error, undo_of=r.undo_of,
            created_at=_time(r.created_at), finished_at=_time(r.finished_at),  # type: ignore[arg-type]
            verdicts=tuple(verdicts.get(r.id, ()))) for r in rows]

    # -- marks (grace period before an action, like Cloud Custodian's mark-for-op) ---------------------

    def mark(self, ref_key: ResourceRef | str, kind: str, act_after: datetime) -> Mark:
        """Mark a resource for ``kind`` after ``act_after``; an open mark is kept as it is (idempotent)."""
        key = _key(ref_key)
        existing = self._open_mark(key, kind)
        if existing is not None:
            return existing
        with self.engine.begin() as conn:
            conn.execute(insert(marks_table), dict(resource_key=key, kind=kind, marked_at=_iso(self.clock.now()),
                                                  act_after=_iso(act_after), notified=False))
        return self._open_mark(key, kind)  # type: ignore[return-value]

    def marks(self, ref_key: ResourceRef | str | None = None, include_cleared: bool = False) -> list[Mark]:
        """Marks (open ones unless ``include_cleared``), oldest first."""
        query = select(marks_table).order_by(marks_table.c.seq)
        if ref_key is not None:
            query = query.where(marks_table.c.resource_key == _key(ref_key))
        if not include_cleared:
            query = query.where(marks_table.c.cleared_at.is_(None))
        with self.engine.connect() as conn:
            return [Mark(m.resource_key, m.kind, _time(m.marked_at), _time(m.act_after),  # type: ignore[arg-type]
                         bool(m.notified), _time(m.cleared_at)) for m in conn.execute(query)]

    def clear_mark(self, ref_key: ResourceRef | str, kind: str) -> bool:
        """Close the open mark; False when there was none."""
        return self._update_mark(ref_key, kind, cleared_at=_iso(self.clock.now()))

    def mark_notified(self, ref_key: ResourceRef | str, kind: str) -> bool:
        return self._update_mark(ref_key, kind, notified=True)

    def _open_mark(self, key: str, kind: str) -> Mark | None:
        return next((m for m in self.marks(key) if m.kind == kind), None)

    def _update_mark(self, ref_key: ResourceRef | str, kind: str, **values: Any) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(update(marks_table).where(and_(
                marks_table.c.resource_key == _key(ref_key), marks_table.c.kind == kind,
                marks_table.c.cleared_at.is_(None))).values(**values)).rowcount > 0

def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()

"""The daemon's run ledger: one row per (job, scheduled time), so no scheduled run happens twice or is lost.

APScheduler moves a job's next run time forward in its job store *before* the job runs, so a process that
stops mid-run (SIGTERM past its deadline, ``kill -9``, a node drained) would lose that run. The ledger closes
the gap: ``claim`` inserts ``running`` before any work (the (job, scheduled_for) key is unique: a second
daemon on the same database, or a re-fire of the same time, gets nothing), a heartbeat renews it, ``finish``
settles it. A run left ``running`` whose process is gone (same host: its pid no longer exists; any host: its
heartbeat older than ``STALE``) or marked ``interrupted`` at shutdown is handed back by ``unfinished`` for the
next start to run again with the same scheduled time, so what it sends is deduplicated by that key.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from agent.clock import Clock
from agent.lease import holder_is_dead, lease_owner
from agent.state_schema import _iso, _time, runs

RUNNING, OK, FAILED, SKIPPED, INTERRUPTED, SUPERSEDED = "running", "ok", "failed", "skipped", "interrupted", "superseded"
#: A running row whose heartbeat is older than this belongs to a process that is gone (any host).
STALE = timedelta(minutes=2)
HEARTBEAT = timedelta(seconds=30)


@dataclass(frozen=True)
class Run:
    run_id: str
    job: str
    scheduled_for: datetime
    status: str
    owner: str
    started_at: datetime
    heartbeat_at: datetime
    finished_at: datetime | None = None
    attempt: int = 1
    detail: Any = None


def _run(row: Any) -> Run:
    return Run(row.run_id, row.job, _time(row.scheduled_for), row.status, row.owner,  # type: ignore[arg-type]
               _time(row.started_at), _time(row.heartbeat_at), _time(row.finished_at),  # type: ignore[arg-type]
               row.attempt, json.loads(row.detail) if row.detail else None)


class RunLedger:
    def __init__(self, engine: Any, clock: Clock, owner: str | None = None) -> None:
        self.engine, self.clock = engine, clock
        self.owner = owner or lease_owner()

    def claim(self, job: str, scheduled_for: datetime) -> Run | None:
        """Start (job, scheduled_for): a new ``running`` row, or the takeover of one whose process is gone or
        that was interrupted. None when it ran already, or a live process is running it."""
        now = _iso(self.clock.now())
        row = dict(run_id=uuid.uuid4().hex[:16], job=job, scheduled_for=_iso(scheduled_for), status=RUNNING,
                   owner=self.owner, started_at=now, heartbeat_at=now, attempt=1)
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(runs), row)
            return self.get(row["run_id"])
        except IntegrityError:
            pass
        key = and_(runs.c.job == job, runs.c.scheduled_for == row["scheduled_for"])
        with self.engine.begin() as conn:
            held = conn.execute(select(runs).where(key)).first()
            if held is None or not self._abandoned(held):
                return None
            taken = conn.execute(update(runs).where(and_(key, runs.c.owner == held.owner, runs.c.status == held.status))
                                 .values(run_id=row["run_id"], status=RUNNING, owner=self.owner, started_at=now,
                                         heartbeat_at=now, finished_at=None, attempt=held.attempt + 1)).rowcount
        return self.get(row["run_id"]) if taken == 1 else None

    def _abandoned(self, row: Any) -> bool:
        if row.status == INTERRUPTED:
            return True
        if row.status != RUNNING or row.owner == self.owner:
            return False
        return holder_is_dead(row.owner) or _time(row.heartbeat_at) < self.clock.now() - STALE  # type: ignore[operator]

    def heartbeat(self) -> int:
        """Renew every run this process holds; the number renewed."""
        with self.engine.begin() as conn:
            return conn.execute(update(runs).where(and_(runs.c.owner == self.owner, runs.c.status == RUNNING))
                                .values(heartbeat_at=_iso(self.clock.now()))).rowcount

    def finish(self, run_id: str, status: str, detail: Mapping[str, Any] | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(runs).where(and_(runs.c.run_id == run_id, runs.c.owner == self.owner)).values(
                status=status, finished_at=_iso(self.clock.now()),
                detail=json.dumps(dict(detail or {}), sort_keys=True, default=str)))

    def interrupt_mine(self) -> list[Run]:
        """At shutdown: our runs still going are marked ``interrupted`` (the next start runs them again)."""
        mine = [r for r in self.running() if r.owner == self.owner]
        with self.engine.begin() as conn:
            conn.execute(update(runs).where(and_(runs.c.owner == self.owner, runs.c.status == RUNNING))
                         .values(status=INTERRUPTED, finished_at=_iso(self.clock.now())))
        return mine

    def running(self) -> list[Run]:
        with self.engine.connect() as conn:
            return [_run(r) for r in conn.execute(select(runs).where(runs.c.status == RUNNING))]

    def unfinished(self) -> list[Run]:
        """Runs to run again: interrupted, or running in a process that is gone. Oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(runs).where(runs.c.status.in_((RUNNING, INTERRUPTED)))
                                .order_by(runs.c.scheduled_for)).all()
        return [_run(r) for r in rows if self._abandoned(r)]

    def supersede(self, run: Run, by: datetime) -> None:
        """An abandoned run that a newer scheduled run of the same job replaces (a coalesced catch-up)."""
        with self.engine.begin() as conn:
            conn.execute(update(runs).where(and_(runs.c.job == run.job, runs.c.scheduled_for == _iso(run.scheduled_for),
                                                 runs.c.status == run.status, runs.c.owner == run.owner))
                         .values(status=SUPERSEDED, finished_at=_iso(self.clock.now()),
                                 detail=json.dumps({"superseded_by": _iso(by)})))

    def find(self, job: str, scheduled_for: datetime) -> Run | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(runs).where(and_(runs.c.job == job,
                                                       runs.c.scheduled_for == _iso(scheduled_for)))).first()
        return None if row is None else _run(row)

    def get(self, run_id: str) -> Run | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(runs).where(runs.c.run_id == run_id)).first()
        return None if row is None else _run(row)

    def last(self, job: str, statuses: tuple[str, ...] = (OK, FAILED)) -> Run | None:
        """The latest finished run of ``job`` (by scheduled time) with one of ``statuses``."""
        with self.engine.connect() as conn:
            row = conn.execute(select(runs).where(and_(runs.c.job == job, runs.c.status.in_(statuses)))
                               .order_by(runs.c.scheduled_for.desc()).limit(1)).first()
        return None if row is None else _run(row)

    def history(self, job: str | None = None, limit: int = 100) -> list[Run]:
        query = select(runs).order_by(runs.c.scheduled_for.desc(), runs.c.started_at.desc()).limit(limit)
        if job:
            query = query.where(runs.c.job == job)
        with self.engine.connect() as conn:
            return [_run(r) for r in conn.execute(query)]

    def counts(self) -> dict[tuple[str, str], int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(runs.c.job, runs.c.status, func.count()).group_by(runs.c.job, runs.c.status))
            return {(job, status): n for job, status, n in rows}

    def prune(self, before: datetime) -> int:
        """Delete finished runs scheduled before ``before``; the latest of each job is kept."""
        keep = {r.run_id for job in {j for j, _ in self.counts()} if (r := self.last(job, (OK, FAILED, SKIPPED)))}
        with self.engine.begin() as conn:
            return conn.execute(delete(runs).where(and_(
                runs.c.scheduled_for < _iso(before), runs.c.run_id.not_in(keep or {""}),
                or_(*(runs.c.status == s for s in (OK, FAILED, SKIPPED, SUPERSEDED)))))).rowcount


__all__ = ["RunLedger", "Run", "RUNNING", "OK", "FAILED", "SKIPPED", "INTERRUPTED", "SUPERSEDED", "STALE",
           "HEARTBEAT"]

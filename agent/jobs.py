"""The daemon's four jobs. Each takes the job context and its ledger run and returns what it did (a JSON-able
detail, ``status`` ``skipped`` with a ``reason`` when there was nothing to do); an exception fails the run.

- **collect**: audit every configured cloud, build the plan (every guard evaluated, nothing changed), build
  the fleet-wide digest, and store the three in ``collected`` for the other jobs (and the next start).
- **apply**: the latest plan through the guarded apply (``agent.apply.Applier``) when it is new, or when a
  grace-period mark in it has come due; the configured mode decides (dry-run by default). Marks are
  announced through the channels.
- **digest**: the latest digest, with what was applied since the last digest and what is due, to every
  channel and audience under the run's scheduled time (``agent.dispatch``).
- **housekeeping**: prune runs, deliveries and collect results older than the retention.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select

from agent.clock import Clock
from agent.config import Config
from agent.deliveries import Deliveries
from agent.dispatch import SENT, Dispatcher
from agent.journal import DECISIONS, STATUSES, Journal, LockHeld
from agent.metrics import Metrics
from agent.runs import SKIPPED, Run, RunLedger
from agent.state_schema import _iso, _time, collected
from providers.model import Cloud

log = logging.getLogger(__name__)
KEEP_COLLECTED = 48  # collect results kept whatever their age (the digest and apply read the latest)


def _actor() -> str:
    return f"costagent-daemon@{socket.gethostname()}"


@dataclass
class JobContext:
    config: Config
    journal: Journal
    ledger: RunLedger
    clock: Clock
    metrics: Metrics
    dispatcher: Dispatcher
    stop: threading.Event = field(default_factory=threading.Event)
    #: Opens the clouds (``agent.clouds.open_targets`` by default): (clouds, regions, lookback) -> Opened.
    opener: Callable[[Sequence[Cloud], Sequence[str], timedelta], AbstractContextManager[Any]] | None = None
    #: Called by apply and digest with their scheduled time: returns once a collect scheduled for the same
    #: moment (both jobs firing at 09:00) has finished, so they use its results rather than the previous ones.
    await_collect: Callable[[datetime], None] = lambda when: None

    def open(self, clouds: Sequence[Cloud], regions: Sequence[str], lookback: timedelta) -> AbstractContextManager[Any]:
        if self.opener is not None:
            return self.opener(clouds, regions, lookback)
        from agent.clouds import open_targets

        return open_targets(clouds, self.config, demo=False, regions=regions, profile=None,
                            live_prices=self.config.audit.live_prices, now=self.clock.now(), lookback=lookback)


def skipped(reason: str, **detail: Any) -> dict[str, Any]:
    return {"status": SKIPPED, "reason": reason, **detail}


# -- collect ---------------------------------------------------------------------------------------------------

def collect(ctx: JobContext, run: Run) -> dict[str, Any]:
    from agent import clouds as cloud_targets
    from agent import plan as plans
    from agent.audit import AuditRequest, run_audit
    from agent.cli import _billing_reader
    from agent.cli_apply import _sides
    from agent.digests import build_digest
    from agent.planning import build_plan
    from agent.progress import QuietProgress
    from reports.digest_json import to_json

    settings, report = ctx.config.audit, ctx.config.report
    chosen = cloud_targets.default_clouds(ctx.config, demo=False)
    with ctx.open(chosen, (), settings.lookback) as opened:
        request = AuditRequest(regions=tuple(r for t in opened.targets for r in t.regions), lookback=settings.lookback,
                               period=settings.period, settings=settings.recommenders,
                               billing=tuple(settings.billing or opened.billing_paths))
        outcome = run_audit(list(opened.targets), request, ctx.clock, QuietProgress(),
                            billing_reader=_billing_reader([t.provider for t in opened.targets]))
        plan = build_plan(outcome, opened.targets, _sides(opened.targets), ctx.config.apply, ctx.journal, ctx.clock,
                          actor=_actor(), period=settings.period)
    digest = build_digest(outcome, owner_tag=report.owner_tag, team_tag=report.team_tag)
    recs = outcome.report.recommendations
    by_kind: dict[str, int] = {}
    usd: dict[str, Decimal] = {}
    for r in recs:
        by_kind[str(r.kind)] = by_kind.get(str(r.kind), 0) + 1
        usd[str(r.kind)] = usd.get(str(r.kind), Decimal(0)) + r.monthly_savings_usd
    summary = {"recommendations": len(recs), "by_kind": by_kind,
               "monthly_savings_usd": str(outcome.report.summary.monthly_savings_usd),
               "gaps": len(outcome.report.gaps), "failures": list(outcome.failures), "plan_id": plan.plan_id,
               "actions": len(plan.actions), "would_act": sum(1 for p in plan.actions if p.would_act),
               "clouds": list(outcome.report.clouds)}
    with ctx.journal.engine.begin() as conn:
        conn.execute(insert(collected), dict(run_id=run.run_id, finished_at=_iso(ctx.clock.now()),
                                             digest=to_json(digest), plan=plans.write(plan, None),
                                             summary=json.dumps(summary, sort_keys=True)))
    ctx.metrics.found(by_kind, usd, outcome.report.summary.monthly_savings_usd)
    for failure in outcome.failures:
        ctx.metrics.api_errors.labels(failure.split(" ", 1)[0]).inc()
        log.warning("event=read_failed %s", failure)
    log.info("event=collected recommendations=%d savings_usd=%s gaps=%d plan=%s", len(recs),
             summary["monthly_savings_usd"], summary["gaps"], plan.plan_id)
    return summary


@dataclass(frozen=True)
class Collected:
    run_id: str
    finished_at: datetime
    digest: str
    plan: str
    summary: Mapping[str, Any]


def latest(ctx: JobContext) -> Collected | None:
    with ctx.journal.engine.connect() as conn:
        row = conn.execute(select(collected).order_by(collected.c.seq.desc()).limit(1)).first()
    if row is None:
        return None
    return Collected(row.run_id, _time(row.finished_at), row.digest, row.plan,  # type: ignore[arg-type]
                     json.loads(row.summary))


def _plan_of(found: Collected) -> Any:
    from agent import plan as plans

    return plans.parse(found.plan, f"collect run {found.run_id}")


# -- apply -----------------------------------------------------------------------------------------------------

def apply(ctx: JobContext, run: Run) -> dict[str, Any]:
    from agent.apply import Applier
    from agent.cli_apply import _sides

    ctx.await_collect(run.scheduled_for)
    found = latest(ctx)
    if found is None:
        return skipped("nothing collected yet")
    plan = _plan_of(found)
    age = ctx.clock.now() - plan.created_at
    if age > timedelta(hours=ctx.config.daemon.max_plan_age_hours):
        return skipped(f"the latest plan ({plan.plan_id}) is {age} old: no collect succeeded since",
                       plan_id=plan.plan_id)
    keys = {(p.candidate.ref.key, p.candidate.kind) for p in plan.actions}
    now = ctx.clock.now()
    due = [m for m in ctx.journal.marks() if (m.resource_key, m.kind) in keys and m.act_after <= now]
    previous = ctx.ledger.last("apply")
    if previous is not None and (previous.detail or {}).get("plan_id") == plan.plan_id and not due:
        return skipped("the latest plan was applied already and no mark in it is due", plan_id=plan.plan_id)
    if not plan.actions:
        return skipped("the latest plan has no actions", plan_id=plan.plan_id)
    regions = [r for rs in plan.regions.values() for r in rs]
    try:
        with ctx.open([Cloud(c) for c in plan.clouds], regions, timedelta(hours=2)) as opened:
            applier = Applier(ctx.journal, _sides(opened.targets), ctx.config.apply, ctx.clock, actor=_actor(),
                              notifier=lambda marks: notify(ctx, plan, marks),
                              period=timedelta(seconds=plan.period_seconds))
            with applier.lease():
                result = applier.run(plan)
    except LockHeld as exc:
        return skipped(f"another agent is applying: {exc}", plan_id=plan.plan_id)
    counts: dict[str, int] = {}
    for step in result.steps:
        counts[step.status] = counts.get(step.status, 0) + 1
        ctx.metrics.actions.labels(step.planned.candidate.kind, step.status).inc()
    log.info("event=applied plan=%s mode=%s %s", plan.plan_id, result.mode.label,
             " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    detail = {"plan_id": plan.plan_id, "mode": result.mode.label, "steps": counts,
              "reconciled": len(result.reconciled), "unreconciled": list(result.unreconciled), "due": len(due)}
    if result.failed or result.unreconciled:
        raise JobFailed(f"apply of {plan.plan_id}: {counts.get('failed', 0)} failed, "
                        f"{len(result.unreconciled)} not reconciled", detail)
    return detail


class JobFailed(Exception):
    """The job ran and finished, but part of it failed: the run is ``failed`` with this detail."""

    def __init__(self, message: str, detail: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.detail = dict(detail)


def notify(ctx: JobContext, plan: Any, marks: Sequence[tuple[Any, datetime]]) -> bool:
    """Tell the owners of newly marked resources, through the channels: a digest of those resources' findings
    with what is due. True when every channel took it (or none is configured)."""
    from reports.digest import Due
    from reports.digest_json import from_json

    found = latest(ctx)
    for c, act_after in marks:
        log.info("event=marked resource=%s kind=%s act_after=%s", c.ref.key, c.kind, act_after.isoformat())
    if found is None or not ctx.config.channels:
        return True
    digest = from_json(found.digest)
    named = {(str(c.ref.cloud), c.ref.id) for c, _ in marks}
    notice = replace(digest, findings=tuple(f for f in digest.findings if (f.cloud, f.resource_id) in named),
                     applied=(), unread=(),
                     due=tuple(Due(c.kind, str(c.ref.cloud), c.ref.id, at) for c, at in marks))
    key = f"notice:{plan.plan_id}:" + ",".join(sorted(f"{c.ref.key}:{c.kind}" for c, _ in marks))[:200]
    outcomes = ctx.dispatcher.send(notice, key)
    return all(o.status != "failed" for o in outcomes)


# -- digest ----------------------------------------------------------------------------------------------------

def digest(ctx: JobContext, run: Run) -> dict[str, Any]:
    from agent.digests import _applied, _due
    from reports.digest_json import from_json

    ctx.await_collect(run.scheduled_for)
    found = latest(ctx)
    if found is None:
        return skipped("nothing collected yet")
    fleet = from_json(found.digest)
    previous = ctx.ledger.last("digest")
    since = previous.scheduled_for if previous is not None else run.scheduled_for - timedelta(days=1)
    acted = ctx.journal.history(since=since, statuses=[s for s in STATUSES if s not in DECISIONS])
    fleet = replace(fleet, applied=tuple(_applied(a) for a in acted),
                    due=tuple(_due(m) for m in ctx.journal.marks()))
    key = _iso(run.scheduled_for)
    outcomes = ctx.dispatcher.send(fleet, key)
    for o in outcomes:
        ctx.metrics.deliveries.labels(o.channel, o.status).inc()
    html = _write_html(ctx, fleet, run)
    detail = {"collect_run": found.run_id, "key": key, "html": html,
              "deliveries": [{"channel": o.channel, "audience": o.audience, "status": o.status, "detail": o.detail}
                             for o in outcomes]}
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        raise JobFailed(f"{len(failed)} of {len(outcomes)} deliveries failed (retried at the next digest run): "
                        f"{failed[0].channel}: {failed[0].detail}", detail)
    log.info("event=digest key=%s sent=%d", key, sum(o.status == SENT for o in outcomes))
    return detail


def _write_html(ctx: JobContext, fleet: Any, run: Run) -> str | None:
    folder = ctx.config.report.html_dir
    if not folder:
        return None
    from reports.channels import FileChannel
    from reports.digest_html import render_html

    html = render_html(fleet, top_n=None)
    stamp = run.scheduled_for.strftime("%Y%m%dT%H%MZ")
    target = Path(folder).expanduser() / f"costagent-report-{stamp}.html"
    FileChannel(target).send(html)
    FileChannel(Path(folder).expanduser() / "latest.html").send(html)
    return str(target)


# -- housekeeping ----------------------------------------------------------------------------------------------

def housekeeping(ctx: JobContext, run: Run) -> dict[str, Any]:
    before = ctx.clock.now() - timedelta(days=ctx.config.daemon.retention_days)
    with ctx.journal.engine.begin() as conn:
        keep = [r.seq for r in conn.execute(select(collected.c.seq).order_by(collected.c.seq.desc())
                                            .limit(KEEP_COLLECTED))]
        pruned_collected = conn.execute(delete(collected).where(
            collected.c.finished_at < _iso(before), collected.c.seq.not_in(keep or [-1]))).rowcount
    pruned_runs = ctx.ledger.prune(before)
    pruned_deliveries = Deliveries(ctx.journal.engine, ctx.clock).prune(before)
    detail = {"before": _iso(before), "runs": pruned_runs, "deliveries": pruned_deliveries,
              "collected": pruned_collected}
    log.info("event=housekeeping %s", " ".join(f"{k}={v}" for k, v in detail.items()))
    return detail


JOBS: dict[str, Callable[[JobContext, Run], dict[str, Any]]] = {
    "collect": collect, "apply": apply, "digest": digest, "housekeeping": housekeeping}


__all__ = ["JOBS", "JobContext", "JobFailed", "collect", "apply", "digest", "housekeeping", "latest", "notify"]

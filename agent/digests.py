"""Build the digest (``reports.digest.Digest``) from one audit and the journal.

Findings come from the audit's recommendations with the routing tags of their resources (``owner``,
``team`` by default); applied actions and due marks from the journal since the last digest; gaps as "could
not be read". The charts' series come from the idle model: per UTC day the idle GPU-hours (idle periods x the
instance's GPUs) and the dollars they cost (idle hours x the instance's hourly price), and the idle
GPU-hours per hour of the week.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import numpy as np
import pandas as pd

from agent.audit import AuditOutcome
from agent.journal import ActionRecord, Mark
from providers.model import Cloud
from recommenders.idle import IDLE, SLOTS_PER_WEEK
from reports.digest import Applied, Digest, Due, Finding, IdleDay, Unread

CENT = Decimal("0.01")


def build_digest(outcome: AuditOutcome, *, applied: Iterable[ActionRecord] = (), due: Iterable[Mark] = (),
                 owner_tag: str = "owner", team_tag: str = "team") -> Digest:
    snapshot, report = outcome.snapshot, outcome.report
    tags = {r.ref.key: r.tags for r in snapshot.resources} | {g.ref.key: g.tags for g in snapshot.groups}
    findings = tuple(Finding(
        id=r.id, kind=str(r.kind), recommender=r.recommender, cloud=str(r.ref.cloud), account=r.ref.account,
        region=r.ref.region, resource_id=r.ref.id, name=r.name, instance_type=r.instance_type,
        monthly_savings_usd=r.monthly_savings_usd, confidence=r.confidence, risk=str(r.risk), summary=r.summary,
        owner=_tag(tags.get(r.ref.key, {}), owner_tag), team=_tag(tags.get(r.ref.key, {}), team_tag),
        actionable=r.action is not None) for r in report.recommendations)
    days, heat = idle_series(outcome)
    return Digest(
        generated_at=report.generated_at, window_start=report.window.start, window_end=report.window.end,
        clouds=report.clouds, findings=findings,
        applied=tuple(_applied(a) for a in applied),
        due=tuple(_due(m) for m in due),
        unread=tuple(Unread(str(g.cloud), g.what, g.reason, g.region, g.resource_id, g.hint) for g in report.gaps),
        idle_by_day=days, idle_heatmap=heat, demo=report.demo)


def _tag(tags: object, key: str) -> str | None:
    if not isinstance(tags, dict) and not hasattr(tags, "items"):
        return None
    lowered = {str(k).lower(): str(v) for k, v in tags.items()}  # type: ignore[attr-defined]
    value = lowered.get(key.lower())
    return value or None


def idle_series(outcome: AuditOutcome) -> tuple[tuple[IdleDay, ...], tuple[float, ...]]:
    """(idle GPU-hours and dollars per UTC day, idle GPU-hours per hour of the week), over the whole fleet."""
    idle = outcome.analysis.idle
    if not idle.keys or idle.state.size == 0:
        return (), ()
    resources = {r.ref.key: r for r in outcome.snapshot.resources}
    gpus = np.array([resources[k].accelerators.count if k in resources and resources[k].accelerators else 0
                     for k in idle.keys], dtype=float)
    price = np.array([float(q.hourly_usd) if k in resources and (q := outcome.snapshot.price_for(resources[k]))
                      else 0.0 for k in idle.keys])
    hours = (idle.state == IDLE).astype(float) / idle.steps_per_hour  # (R, T) idle hours per period
    per_day = pd.DataFrame({"gpu_hours": (hours * gpus[:, None]).sum(axis=0),
                            "usd": (hours * price[:, None]).sum(axis=0)}, index=idle.times)
    daily = per_day.groupby(per_day.index.floor("D")).sum()
    days = tuple(IdleDay(ts.date(), round(float(row.gpu_hours), 2),
                         Decimal(str(row.usd)).quantize(CENT)) for ts, row in daily.iterrows())
    week = idle.week_idle.sum(axis=1) / idle.steps_per_hour  # (R, 168) idle hours per slot
    heat = (week * gpus[:, None]).sum(axis=0) if week.size else np.zeros(SLOTS_PER_WEEK)
    return days, tuple(round(float(v), 2) for v in heat)


def _short(state: object) -> str:
    if isinstance(state, dict):
        return " ".join(str(v) for k, v in state.items() if k in ("state", "type", "size", "capacity", "desired_capacity"))
    return "" if state is None else str(state)


def _applied(a: ActionRecord) -> Applied:
    return Applied(a.id, a.kind, str(a.ref.cloud), a.ref.id, a.status, a.finished_at or a.created_at, a.actor,
                   _short(a.before), _short(a.after))


def _due(m: Mark) -> Due:
    cloud, _account, _region, rid = m.resource_key.split("/", 3)
    return Due(m.kind, Cloud(cloud).value, rid, m.act_after)


__all__ = ["build_digest", "idle_series"]

"""Build a plan from an audit: candidates from its recommendations, every guard evaluated (read-only).

The guards see the journal (marks, the last action per resource) but change nothing; the freshness guard
previews each action that every cheaper guard allows (EC2 ``DryRun``, else a state read) and re-reads its
latest metrics, so the plan already says "became busy" or "already stopped" where that is so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from agent.apply import CloudSide, Marks, capability, last_acted
from agent.apply_config import ApplySettings
from agent.audit import AuditOutcome
from agent.clock import Clock
from agent.freshness import FreshnessCheck
from agent.guards import evaluate_run
from agent.journal import Journal
from agent.plan import Plan, candidates, new_plan_id, with_decisions
from providers.model import Cloud


def build_plan(outcome: AuditOutcome, targets: Sequence[Any], sides: Mapping[Cloud, CloudSide],
               settings: ApplySettings, journal: Journal, clock: Clock, *, actor: str,
               period: timedelta) -> Plan:
    snapshot = outcome.snapshot
    planned, advice = candidates(outcome.analysis.recommendations, snapshot)
    resources = {r.ref.key: r for r in snapshot.resources}
    fleet = sum(1 for r in snapshot.resources if r.has_gpu)
    now = clock.now()
    check = FreshnessCheck({str(k): s.provider for k, s in sides.items()},
                           {str(k): s.actuator for k, s in sides.items()},
                           lambda c: resources.get(c.ref.key), clock.now, settings.freshness, period, {})
    decisions = evaluate_run([p.candidate for p in planned], settings.policy, now=now, fleet_size=fleet,
                             marks=Marks(journal), history=last_acted(journal),
                             capabilities=lambda c: capability(sides, c), freshness=check)
    return Plan(plan_id=new_plan_id(now), created_at=now, created_by=actor,
                clouds=tuple(str(t.provider.cloud) for t in targets),
                regions={str(t.provider.cloud): tuple(t.regions) for t in targets},
                period_seconds=int(period.total_seconds()), mode=settings.policy.mode.label,
                actions=tuple(with_decisions(planned, decisions, check.seen)), advice=tuple(advice),
                fleet_size=fleet, demo=outcome.report.demo)

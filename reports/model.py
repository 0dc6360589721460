"""The versioned audit report: one model that every renderer (table, JSON, Markdown) reads.

``to_dict`` *is* the JSON contract; ``reports/schema/audit-report.v1.json`` describes it and
tests hold the two together. Bump ``SCHEMA_VERSION`` on any incompatible change (a removed or
renamed field, a changed type); adding an optional field is a minor bump.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from providers.model import Gap, Window, utc
from recommenders.kpis import FleetKpis, TeamKpi
from recommenders.model import Recommendation

SCHEMA_VERSION = "1.2"


@dataclass(frozen=True)
class Summary:
    instances: int  # every instance the inventory returned
    gpu_instances: int
    gpu_instances_running: int
    analyzed: int  # running GPU instances with enough telemetry to judge
    idle_gpu_hours: float  # over the window, analyzed instances
    idle_usd: Decimal  # the same hours priced at each instance's hourly rate
    #: Sum over resources of each resource's largest finding (findings on one resource overlap:
    #: a schedule and a right-size of the same instance do not add up).
    monthly_savings_usd: Decimal
    gpu_spend_usd: Decimal | None  # billed GPU instance spend in the window; None: billing not read
    savings_by_kind: Mapping[str, Decimal] = field(default_factory=dict)  # each kind's own sum (overlapping)
    kpis: FleetKpis | None = None
    #: What the billing exports said (``--billing``): rows, totals, commitment coverage; None: none read.
    billing: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class AuditReport:
    generated_at: datetime
    window: Window
    period_seconds: int
    clouds: tuple[str, ...]
    regions: tuple[str, ...]
    summary: Summary
    recommendations: tuple[Recommendation, ...]
    gaps: tuple[Gap, ...]
    api_calls: Mapping[str, int] = field(default_factory=dict)
    demo: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "generated_at", utc(self.generated_at))
        ranked = sorted(self.recommendations, key=lambda r: (-r.monthly_savings_usd, r.id))
        object.__setattr__(self, "recommendations", tuple(ranked))
        object.__setattr__(self, "gaps", sorted_gaps(self.gaps))


def _money(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _iso(value: datetime) -> str:
    return utc(value).isoformat().replace("+00:00", "Z")


def recommendation_dict(rec: Recommendation) -> dict[str, Any]:
    return {
        "id": rec.id,
        "recommender": rec.recommender,
        "kind": rec.kind.value,
        "cloud": rec.ref.cloud.value,
        "account": rec.ref.account,
        "region": rec.ref.region,
        "resource_id": rec.ref.id,
        "name": rec.name,
        "instance_type": rec.instance_type,
        "monthly_savings_usd": _money(rec.monthly_savings_usd),
        "confidence": round(rec.confidence, 3),
        "risk": rec.risk.value,
        "summary": rec.summary,
        "action": None if rec.action is None else {"kind": rec.action.kind, "params": dict(rec.action.params)},
        "evidence": dict(rec.evidence),
    }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(float(value), digits)


def team_dict(team: TeamKpi) -> dict[str, Any]:
    return {
        "team": team.team,
        "instances": team.instances,
        "gpus": team.gpus,
        "gpu_hours": _round(team.gpu_hours, 2),
        "busy_gpu_hours": _round(team.busy_gpu_hours, 2),
        "cost_usd": _money(team.cost_usd),
        "usd_per_busy_gpu_hour": _money(team.usd_per_busy_gpu_hour),
        "idle_usd": _money(team.idle_usd),
        "energy_kwh": _round(team.energy_kwh, 2),
        "co2e_kg": _round(team.co2e_kg, 2),
        "unpriced_instances": team.unpriced_instances,
    }


def kpis_dict(kpis: FleetKpis) -> dict[str, Any]:
    return {
        "tag_key": kpis.tag_key,
        "total": team_dict(kpis.total),
        "teams": [team_dict(t) for t in kpis.teams],
        "energy_measured_instances": kpis.energy_measured_instances,
        "energy_estimated_instances": kpis.energy_estimated_instances,
        "energy_unknown_instances": kpis.energy_unknown_instances,
        "factors": dict(kpis.factors),
    }


def gap_dict(gap: Gap) -> dict[str, Any]:
    return {
        "cloud": gap.cloud.value,
        "account": gap.account,
        "region": gap.region,
        "resource_id": gap.resource_id,
        "what": gap.what,
        "reason": gap.reason,
        "hint": gap.hint,
    }


def to_dict(report: AuditReport) -> dict[str, Any]:
    s = report.summary
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": _iso(report.generated_at),
        "demo": report.demo,
        "window": {
            "start": _iso(report.window.start),
            "end": _iso(report.window.end),
            "period_seconds": report.period_seconds,
        },
        "clouds": list(report.clouds),
        "regions": list(report.regions),
        "summary": {
            "instances": s.instances,
            "gpu_instances": s.gpu_instances,
            "gpu_instances_running": s.gpu_instances_running,
            "analyzed": s.analyzed,
            "recommendations": len(report.recommendations),
            "gaps": len(report.gaps),
            "idle_gpu_hours": round(s.idle_gpu_hours, 2),
            "idle_usd": _money(s.idle_usd),
            "monthly_savings_usd": _money(s.monthly_savings_usd),
            "gpu_spend_usd": _money(s.gpu_spend_usd),
            "savings_by_kind": {k: _money(v) for k, v in sorted(s.savings_by_kind.items())},
            "kpis": None if s.kpis is None else kpis_dict(s.kpis),
            "billing": None if s.billing is None else dict(s.billing),
        },
        "recommendations": [recommendation_dict(r) for r in report.recommendations],
        "gaps": [gap_dict(g) for g in report.gaps],
        "api_calls": dict(sorted(report.api_calls.items())),
    }


def sorted_gaps(gaps: Sequence[Gap]) -> tuple[Gap, ...]:
    return tuple(sorted(gaps, key=lambda g: (g.cloud, g.region or "", g.resource_id or "", g.what, g.reason)))


_ARM_ID = re.compile(r"^/subscriptions/[^/]+/resourceGroups/(?P<rg>[^/]+)/providers/[^/]+/[^/]+/(?P<name>[^/]+)"
                     r"(?:/virtualMachines/(?P<instance>[^/]+))?$", re.IGNORECASE)


def short_id(resource_id: str | None, name: str | None = None) -> str | None:
    """A resource id as people read it in a table: None when it only repeats the name (GCP instance names),
    ``<resource group>/<name>`` for an Azure ARM id; the JSON report always carries the full id."""
    if not resource_id:
        return None
    match = _ARM_ID.match(resource_id)
    if match:
        tail = match["name"] + (f"/{match['instance']}" if match["instance"] else "")
        return f"{match['rg']}/{tail}"
    return None if resource_id == name else resource_id

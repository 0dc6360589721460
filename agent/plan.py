"""``costagent plan``: the actions an audit's recommendations propose, each with every guard's verdict, as a file.

Like ``terraform plan``, a plan changes nothing: no marks, no journal rows, no cloud writes (the freshness
guard's re-read and EC2 ``DryRun`` preview are reads). ``costagent apply PLAN`` re-evaluates every guard
right before each action; the verdicts in the file say what the guards thought when it was written.

The file is JSON (``format: costagent-plan``, ``version: 1``): ``actions`` (one per recommendation with an
action, in the order an apply takes them: the biggest savings first) and ``advice`` (recommendations that
are advice only: spot moves, commitments, consolidation).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from agent.guards import Candidate, Decision, Verdict, run_order
from providers.model import Action, Cloud, ResourceRef, Snapshot, utc
from recommenders.model import Recommendation

FORMAT, VERSION = "costagent-plan", 1
#: Recommendation kind -> the actuator's action kind.
ACTION_KIND = {"stop": "stop", "rightsize": "resize", "autoscale": "scale", "schedule": "schedule"}


class PlanError(Exception):
    """A plan file that cannot be used: one line naming the file and what is wrong."""


@dataclass(frozen=True)
class PlannedAction:
    candidate: Candidate
    summary: str
    instance_type: str | None
    name: str | None
    verdicts: tuple[Verdict, ...] = ()
    would_act: bool = False
    observed: Mapping[str, Any] = field(default_factory=dict)  # the resource's state the preview read

    @property
    def action(self) -> Action:
        c = self.candidate
        return Action(c.kind, c.ref, dict(c.params))


@dataclass(frozen=True)
class Advice:
    recommendation_id: str
    recommender: str
    kind: str
    ref: ResourceRef
    summary: str
    monthly_savings_usd: Decimal
    reason: str


@dataclass(frozen=True)
class Plan:
    plan_id: str
    created_at: datetime
    created_by: str
    clouds: tuple[str, ...]
    regions: Mapping[str, tuple[str, ...]]
    period_seconds: int
    mode: str
    actions: tuple[PlannedAction, ...]
    advice: tuple[Advice, ...] = ()
    fleet_size: int = 0
    source: str | None = None  # the file it was read from
    demo: bool = False  # made against the embedded demo cloud, which lived only for that run


def new_plan_id(at: datetime) -> str:
    return f"plan-{utc(at):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def to_action(rec: Recommendation, snapshot: Snapshot) -> Action | None:
    """The actuator action for ``rec`` (the cloud's own addressing filled in), None for advice only."""
    if rec.action is None:
        return None
    kind = ACTION_KIND.get(str(rec.action.kind), str(rec.action.kind))
    params = dict(rec.action.params)
    ref = rec.action.ref
    resources = {r.ref.key: r for r in snapshot.resources}
    if ref.cloud == Cloud.GCP and kind != "scale":
        found = resources.get(ref.key)
        if found is not None and found.zone:
            params["zone"] = found.zone
    if kind == "scale":
        ref, params = _group_action(ref, params, snapshot)
    return Action(kind, ref, params)


def _group_action(ref: ResourceRef, params: dict[str, Any], snapshot: Snapshot) -> tuple[ResourceRef, dict[str, Any]]:
    """A group's ``scale`` in its cloud's terms: AWS the autoscale params as they are; a GCP zonal MIG its size
    and zone (from its members); an Azure scale set its capacity and ARM id (from its members' ids)."""
    if ref.cloud == Cloud.AWS:
        return ref, params
    group = next((g for g in snapshot.groups if g.ref == ref), None)
    members = [r for r in snapshot.resources if group is not None and r.ref.key in set(group.member_keys())]
    desired = params.get("desired_capacity")
    out: dict[str, Any] = {"scheduled_actions": params.get("scheduled_actions") or []}
    if ref.cloud == Cloud.GCP:
        zones = {r.zone for r in members if r.zone}
        out.update(size=desired, zone=zones.pop() if len(zones) == 1 else None)
        return ref, out
    marker = f"/virtualmachinescalesets/{ref.id.lower()}"
    ids = [r.ref.id for r in members if marker in r.ref.id.lower()]
    arm_id = ids[0][:ids[0].lower().index(marker) + len(marker)] if ids else None
    out.update(capacity=desired)
    return (ResourceRef(ref.cloud, ref.account, ref.region, arm_id) if arm_id else ref), out


def group_limits(candidate: Candidate) -> str | None:
    """Why a group's ``scale`` cannot be applied as planned, beyond the actuator's kinds (None: it can)."""
    if candidate.kind != "scale" or candidate.ref.cloud == Cloud.AWS:
        return None
    if candidate.params.get("scheduled_actions"):
        what = "MIG scaling schedules" if candidate.ref.cloud == Cloud.GCP else "scale set autoscale profiles"
        return (f"the plan is a weekly capacity schedule; {what} are not in the actuator yet: "
                "setting one size now would drop the schedule's scale-out (apply the schedule by hand)")
    if candidate.ref.cloud == Cloud.GCP and not candidate.params.get("zone"):
        return "a regional (or memberless) MIG: only zonal MIG resizes are in the actuator"
    if candidate.ref.cloud == Cloud.AZURE and "/" not in candidate.ref.id:
        return "the scale set's resource id is unknown (no member listed): cannot address it"
    if candidate.params.get("size", candidate.params.get("capacity")) is None:
        return "the plan has no target size"
    return None


def candidates(recommendations: Iterable[Recommendation], snapshot: Snapshot) -> tuple[list[PlannedAction],
                                                                                      list[Advice]]:
    """Split recommendations into planned actions (with their guard candidate) and advice."""
    tags = {r.ref.key: dict(r.tags) for r in snapshot.resources}
    tags.update({g.ref.key: dict(g.tags) for g in snapshot.groups})
    planned, advice = [], []
    for rec in recommendations:
        action = to_action(rec, snapshot)
        if action is None:
            advice.append(Advice(rec.id, rec.recommender, str(rec.kind), rec.ref, rec.summary,
                                 rec.monthly_savings_usd, f"{rec.kind} is advice only: costagent never "
                                 + {"spot": "relaunches an instance on spot", "commitment": "buys commitments",
                                    "consolidate": "moves workloads between machines"}.get(str(rec.kind), "acts on it")))
            continue
        c = Candidate(action.kind, action.ref, tags.get(rec.ref.key, {}), rec.recommender, rec.id, action.params,
                      rec.monthly_savings_usd)
        planned.append(PlannedAction(c, rec.summary, rec.instance_type, rec.name))
    planned.sort(key=lambda p: run_order(p.candidate))
    advice.sort(key=lambda a: (-a.monthly_savings_usd, a.ref.key))
    return planned, advice


def with_decisions(planned: Sequence[PlannedAction], decisions: Sequence[Decision],
                   observed: Mapping[str, Mapping[str, Any]]) -> list[PlannedAction]:
    """Attach each decision (``evaluate_run`` keeps ``run_order``, as ``candidates`` does)."""
    by_id = {(d.candidate.recommendation_id, d.candidate.kind): d for d in decisions}
    out = []
    for p in planned:
        d = by_id[(p.candidate.recommendation_id, p.candidate.kind)]
        verdicts = tuple(_planning_words(v) for v in d.verdicts)
        out.append(PlannedAction(p.candidate, p.summary, p.instance_type, p.name, verdicts, d.would_act,
                                 observed.get(p.candidate.ref.key, {})))
    return out


def _planning_words(v: Verdict) -> Verdict:
    """A plan marks nothing: the grace guard's "marked now" becomes what the apply will do."""
    if v.guard == "grace" and v.reason.startswith("marked now"):
        return Verdict(v.guard, v.allowed, "apply will mark it now and " + v.reason.removeprefix("marked now, "))
    return v


# -- the file ----------------------------------------------------------------------------------------------

def _ref(ref: ResourceRef) -> dict[str, str]:
    return {"cloud": str(ref.cloud), "account": ref.account, "region": ref.region, "id": ref.id}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return utc(value).isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def to_dict(plan: Plan) -> dict[str, Any]:
    acting = [p for p in plan.actions if p.would_act]
    return {
        "format": FORMAT, "version": VERSION, "plan_id": plan.plan_id,
        "created_at": utc(plan.created_at).isoformat(), "created_by": plan.created_by,
        "clouds": list(plan.clouds), "regions": {k: list(v) for k, v in plan.regions.items()},
        "period_seconds": plan.period_seconds, "mode": plan.mode, "fleet_size": plan.fleet_size, "demo": plan.demo,
        "totals": {"actions": len(plan.actions), "would_act": len(acting),
                   "refused": len(plan.actions) - len(acting), "advice": len(plan.advice),
                   "monthly_savings_usd_would_act": str(sum((p.candidate.monthly_savings_usd for p in acting),
                                                            Decimal(0)))},
        "actions": [{
            "recommendation_id": p.candidate.recommendation_id, "recommender": p.candidate.recommender,
            "kind": p.candidate.kind, "ref": _ref(p.candidate.ref), "name": p.name,
            "instance_type": p.instance_type, "params": _jsonable(p.candidate.params),
            "tags": dict(p.candidate.tags), "monthly_savings_usd": str(p.candidate.monthly_savings_usd),
            "summary": p.summary, "would_act": p.would_act, "observed": _jsonable(p.observed),
            "verdicts": [{"guard": v.guard, "allowed": v.allowed, "reason": v.reason} for v in p.verdicts],
        } for p in plan.actions],
        "advice": [{
            "recommendation_id": a.recommendation_id, "recommender": a.recommender, "kind": a.kind,
            "ref": _ref(a.ref), "summary": a.summary, "monthly_savings_usd": str(a.monthly_savings_usd),
            "reason": a.reason,
        } for a in plan.advice],
    }


def write(plan: Plan, path: Path | None) -> str:
    """The plan as JSON text; written to ``path`` when given."""
    text = json.dumps(to_dict(plan), indent=2) + "\n"
    if path is not None:
        path.write_text(text, encoding="utf-8")
    return text


def read(path: Path) -> Plan:
    """Load a plan file; ``PlanError`` (one line naming the file and the field) for anything unusable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError(f"plan {path}: no such file (write one with `costagent plan --out {path}`)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"plan {path}: cannot read it ({exc})") from None
    return parse(text, f"plan {path}", source=str(path))


def parse(text: str, where: str, source: str | None = None) -> Plan:
    """A plan from its JSON text; ``where`` names it in errors."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(f"{where}: not JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PlanError(f"{where}: not a costagent plan (no \"format\": \"{FORMAT}\")")
    if data.get("version") != VERSION:
        raise PlanError(f"{where}: plan version {data.get('version')!r}; this costagent reads version {VERSION}")
    try:
        actions = tuple(_planned(a) for a in data["actions"])
        return Plan(plan_id=str(data["plan_id"]), created_at=utc(datetime.fromisoformat(data["created_at"])),
                    created_by=str(data.get("created_by", "")), clouds=tuple(data["clouds"]),
                    regions={str(k): tuple(v) for k, v in data.get("regions", {}).items()},
                    period_seconds=int(data.get("period_seconds", 300)), mode=str(data.get("mode", "")),
                    actions=actions, advice=tuple(_advice(a) for a in data.get("advice", ())),
                    fleet_size=int(data.get("fleet_size", 0)), source=source, demo=bool(data.get("demo", False)))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PlanError(f"{where}: malformed ({type(exc).__name__}: {exc})") from None


def _ref_of(r: Mapping[str, Any]) -> ResourceRef:
    return ResourceRef(Cloud(r["cloud"]), str(r["account"]), str(r["region"]), str(r["id"]))


def _advice(a: Mapping[str, Any]) -> Advice:
    return Advice(str(a["recommendation_id"]), str(a["recommender"]), str(a["kind"]), _ref_of(a["ref"]),
                  str(a.get("summary", "")), Decimal(str(a["monthly_savings_usd"])), str(a.get("reason", "")))


def _planned(a: Mapping[str, Any]) -> PlannedAction:
    ref = _ref_of(a["ref"])
    c = Candidate(str(a["kind"]), ref, dict(a.get("tags") or {}), str(a["recommender"]),
                  str(a["recommendation_id"]), dict(a.get("params") or {}), Decimal(str(a["monthly_savings_usd"])))
    verdicts = tuple(Verdict(str(v["guard"]), bool(v["allowed"]), str(v["reason"])) for v in a.get("verdicts", ()))
    return PlannedAction(c, str(a.get("summary", "")), a.get("instance_type"), a.get("name"), verdicts,
                         bool(a.get("would_act", False)), dict(a.get("observed") or {}))


def age(plan: Plan, now: datetime) -> timedelta:
    return utc(now) - plan.created_at

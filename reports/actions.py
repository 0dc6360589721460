"""Text and JSON for ``costagent plan``, ``apply``, ``undo`` and ``journal``: one line per action, the
refusing guards' reasons beside it, like ``terraform plan`` / ``apply`` output."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from reports.model import short_id

SYMBOL = {"done": "+", "reconciled-done": "+", "would-act": "~", "dry-run": "~", "marked": "!", "refused": "x",
          "failed": "X", "skipped": "=", "undone": "<", "intended": "?", "reconciled-not-done": "-"}


def _where(cloud: str, region: str, rid: str, name: str | None = None) -> str:
    shown = short_id(rid) if cloud == "azure" else rid
    return f"{cloud}:{region}:{shown}" + (f" ({name})" if name else "")


def _refusals(verdicts: Sequence[Mapping[str, Any]]) -> str:
    return "; ".join(f"{v['guard']}: {v['reason']}" for v in verdicts if not v["allowed"] and v["guard"] != "mode")


def _state(value: Any) -> str:
    if not value:
        return "-"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items() if k != "scheduled_actions" and v is not None)
    return str(value)


def render_plan(plan: Mapping[str, Any]) -> str:
    """A plan file's content for a person: what apply would do, what it refuses and why."""
    lines = [f"Plan {plan['plan_id']} ({plan['created_at']}, mode {plan['mode']}, fleet of "
             f"{plan['fleet_size']} GPU instances)", ""]
    for a in plan["actions"]:
        r = a["ref"]
        mark = "~" if a["would_act"] else "x"
        lines.append(f"  {mark} {a['kind']:<8} {_where(r['cloud'], r['region'], r['id'], a.get('name'))}  "
                     f"${a['monthly_savings_usd']}/month  {a['summary']}")
        why = _refusals(a["verdicts"])
        mode = next((v for v in a["verdicts"] if v["guard"] == "mode"), None)
        if why:
            lines.append(f"      refused: {why}")
        elif mode is not None and not mode["allowed"]:
            lines.append(f"      {mode['reason']}")
    for a in plan["advice"]:
        r = a["ref"]
        lines.append(f"  . {a['kind']:<8} {_where(r['cloud'], r['region'], r['id'])}  ${a['monthly_savings_usd']}"
                     f"/month  {a['summary']} (advice only)")
    t = plan["totals"]
    lines += ["", f"Plan: {t['would_act']} to act (${t['monthly_savings_usd_would_act']}/month), {t['refused']} "
                  f"refused, {t['advice']} advice only."]
    return "\n".join(lines) + "\n"


def apply_dict(result: Any) -> dict[str, Any]:
    return {
        "plan_id": result.plan_id, "run_id": result.run_id, "mode": result.mode.label,
        "totals": {s: result.count(s) for s in ("done", "failed", "refused", "dry-run", "marked", "skipped")},
        "reconciled": [{"action_id": r.id, "kind": r.kind, "resource": r.ref.key, "status": r.status}
                       for r in result.reconciled],
        "unreconciled": list(result.unreconciled),
        "steps": [{
            "action_id": s.action_id, "status": s.status, "kind": s.planned.candidate.kind,
            "recommendation_id": s.planned.candidate.recommendation_id, "resource": s.planned.candidate.ref.key,
            "name": s.planned.name, "monthly_savings_usd": str(s.planned.candidate.monthly_savings_usd),
            "detail": s.detail, "before": s.before, "after": s.after,
            "verdicts": [{"guard": g, "allowed": ok, "reason": why} for g, ok, why in s.verdicts],
        } for s in result.steps],
    }


def render_apply(result: Any) -> str:
    d = apply_dict(result)
    lines = [f"Apply of {d['plan_id']} (run {d['run_id']}, mode {d['mode']})"]
    for r in d["reconciled"]:
        lines.append(f"  reconciled {r['action_id'][:12]} {r['kind']} {r['resource']}: {r['status']}")
    for u in d["unreconciled"]:
        lines.append(f"  NOT reconciled: {u}")
    for s in d["steps"]:
        ref = s["resource"].split("/", 3)
        head = f"  {SYMBOL.get(s['status'], '?')} {s['status']:<8} {s['kind']:<8} {_where(ref[0], ref[2], ref[3], s['name'])}"
        if s["action_id"]:
            head += f"  [{s['action_id'][:12]}]"
        lines.append(head)
        if s["status"] == "done":
            lines.append(f"      {_state(s['before'])} -> {_state(s['after'])}" + (f" ({s['detail']})" if s["detail"]
                                                                                    else ""))
        elif s["detail"]:
            lines.append(f"      {s['detail']}")
    t = d["totals"]
    lines.append(f"Apply complete: {t['done']} done, {t['failed']} failed, {t['refused']} refused, {t['dry-run']} "
                 f"dry-run, {t['marked']} marked, {t['skipped']} already done by this plan.")
    return "\n".join(lines) + "\n"


def record_dict(r: Any) -> dict[str, Any]:
    return {
        "action_id": r.id, "status": r.status, "kind": r.kind, "cloud": str(r.ref.cloud), "account": r.ref.account,
        "region": r.ref.region, "resource_id": r.ref.id, "params": r.params, "actor": r.actor, "plan_id": r.plan_id,
        "run_id": r.run_id, "created_at": r.created_at.isoformat(),
        "finished_at": r.finished_at.isoformat() if r.finished_at else None, "before": r.before, "after": r.after,
        "error": r.error, "undo_of": r.undo_of,
        "verdicts": [{"guard": v.guard, "allowed": v.allowed, "reason": v.reason} for v in r.verdicts],
    }


def render_journal(records: Sequence[Any], verbose: bool = False) -> str:
    if not records:
        return "The journal is empty (for this filter).\n"
    lines = []
    for r in records:
        lines.append(f"{r.id[:12]}  {r.created_at:%Y-%m-%d %H:%M:%SZ}  {r.status:<19} {r.kind:<12} "
                     f"{_where(str(r.ref.cloud), r.ref.region, r.ref.id)}  by {r.actor}")
        if r.before is not None or r.after is not None:
            lines.append(f"    {_state(r.before)} -> {_state(r.after)}")
        if r.error:
            lines.append(f"    {r.error}")
        if r.undo_of:
            lines.append(f"    undoes {r.undo_of[:12]}")
        shown = r.verdicts if verbose else [v for v in r.verdicts if not v.allowed and v.guard != "mode"]
        lines += [f"    {'ok' if v.allowed else 'no'} {v.guard}: {v.reason}" for v in shown]
    return "\n".join(lines) + "\n"


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str) + "\n"

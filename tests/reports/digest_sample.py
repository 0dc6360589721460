"""Digests for the renderer tests: a full one whose cloud text tries every injection a tag value can carry
(HTML, Slack mentions and links, Markdown, CSV formulas), and an empty one."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from reports.digest import Applied, Digest, Due, Finding, IdleDay, Unread

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
#: What a hostile or careless tag value may hold; no renderer may let any of it through as markup.
HOSTILE_NAME = '<script>alert("x")</script> <!channel> <@U123> <https://evil.example|click> *bold* =HYPERLINK("x")'
HOSTILE_TEAM = "ml & <b>vision</b>"


def _finding(i: int, kind: str, savings: str, **kw) -> Finding:
    base = dict(id=f"{kind}-{i:04d}abcd", kind=kind, recommender={"stop": "gpu-idle"}.get(kind, kind), cloud="aws",
                account="123456789012", region="us-east-1", resource_id=f"i-0{i:016x}", name=f"box-{i}",
                instance_type="g5.xlarge", monthly_savings_usd=Decimal(savings), confidence=0.9, risk="low",
                summary=f"{kind.title()}: box-{i}", owner="alice", team="ml", actionable=kind != "spot")
    base.update(kw)
    return Finding(**base)


def full_digest() -> Digest:
    findings = (
        _finding(1, "stop", "10162.40", name=HOSTILE_NAME, team=HOSTILE_TEAM, summary="Stop: all 8 GPUs idle 191 h"),
        _finding(2, "schedule", "901.27", owner="bob"),
        _finding(3, "rightsize", "3634.46", cloud="gcp", account="ml-prod", region="us-central1",
                 resource_id="multi-gpu-dev", instance_type="a2-highgpu-4g", status="changed"),
        _finding(4, "spot", "2070.14", cloud="azure", account="sub-1", region="eastus",
                 resource_id="/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm4",
                 team=None, owner=None, status="unchanged"),
    )
    days = [NOW.date() - timedelta(days=d) for d in range(6, -1, -1)]
    heat = tuple(float((h * 7) % 24) if h % 24 < 8 or h // 24 >= 5 else 0.0 for h in range(168))
    return Digest(
        generated_at=NOW, window_start=NOW - timedelta(days=7), window_end=NOW, clouds=("aws", "gcp", "azure"),
        findings=findings,
        applied=(Applied("85eaadbd9de94f0c", "stop", "aws", "i-00000000000000001", "done",
                         NOW - timedelta(hours=20), "costagent@prod", "running", "stopped"),),
        due=(Due("stop", "aws", "i-00000000000000002", NOW + timedelta(hours=4)),),
        unread=(Unread("gcp", "gpu-telemetry", "no GPU metrics from this VM", "us-central1", "no-agent-<l4>",
                       "install the Ops Agent"),),
        idle_by_day=tuple(IdleDay(d, 40.0 + 3 * i, Decimal(f"{120 + 9 * i}.50")) for i, d in enumerate(days)),
        idle_heatmap=heat,
    )


def empty_digest() -> Digest:
    return Digest(generated_at=NOW, window_start=NOW - timedelta(days=7), window_end=NOW, clouds=("aws",))


__all__ = ["NOW", "HOSTILE_NAME", "HOSTILE_TEAM", "full_digest", "empty_digest", "date"]

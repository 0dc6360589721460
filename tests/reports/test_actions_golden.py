"""plan / apply / journal text compared byte for byte with tests/reports/golden/actions-*.txt
(COSTAGENT_UPDATE_GOLDEN=1 rewrites them; review the diff)."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from agent.apply import ApplyResult, Step
from agent.guards import Candidate, Mode, Verdict
from agent.journal import ActionRecord
from agent.journal import Verdict as JournalVerdict
from agent.plan import Advice, Plan, PlannedAction, to_dict
from providers.model import Cloud, ResourceRef
from reports.actions import render_apply, render_journal, render_plan

GOLDEN = Path(__file__).parent / "golden"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
GPU = ResourceRef(Cloud.AWS, "123456789012", "us-east-1", "i-0abc")
VM = ResourceRef(Cloud.AZURE, "sub", "eastus", "/subscriptions/sub/resourceGroups/rg-ml/providers/"
                                                "Microsoft.Compute/virtualMachines/llm")
ORDER = ("mode", "capability", "scope", "window", "grace", "cooldown", "blast-radius", "freshness", "approval")


def verdicts(**refusals: str) -> tuple[Verdict, ...]:
    return tuple(Verdict(g, g not in refusals, refusals.get(g, "ok")) for g in ORDER)


def planned(ref: ResourceRef, kind: str, savings: str, name: str, acts: bool, **refusals: str) -> PlannedAction:
    c = Candidate(kind, ref, {}, "gpu-idle", f"rec-{name}", {}, Decimal(savings))
    return PlannedAction(c, f"{kind.title()}: {name}", "g5.xlarge", name, verdicts(**refusals), acts)


PLAN = Plan("plan-20261123T100000Z-0a1b2c3d", NOW, "ops@box", ("aws", "azure"), {"aws": ("us-east-1",)}, 300,
            "apply", (planned(GPU, "stop", "812.40", "notebook", True),
                      planned(VM, "stop", "2681.29", "llm", False, scope="opted out by costagent:skip",
                              freshness="not checked: scope refused")),
            (Advice("spot-1", "spot", "spot", GPU, "Spot: run it on spot", Decimal("120.00"), "advice only"),),
            fleet_size=12)


def record(status: str, kind: str, before, after, **kw) -> ActionRecord:
    return ActionRecord(id="85eaadbd9de94f0c8a1b2c3d4e5f6a7b", plan_id=PLAN.plan_id, run_id="r1", actor="ops@box",
                        kind=kind, ref=GPU, params={}, status=status, before=before, after=after,
                        error=kw.get("error"), undo_of=kw.get("undo_of"), created_at=NOW, finished_at=NOW,
                        verdicts=kw.get("verdicts", ()))


RENDERED = {
    "plan": lambda: render_plan(to_dict(PLAN)),
    "apply": lambda: render_apply(ApplyResult(PLAN.plan_id, "r1", Mode.APPLY, (
        Step(PLAN.actions[0], "done", (), "85eaadbd9de94f0c8a1b", "", {"state": "running", "type": "g5.xlarge"},
             {"state": "stopped", "type": "g5.xlarge"}),
        Step(PLAN.actions[1], "refused", (), "3be0c4293f7812", "scope: opted out by costagent:skip"),
    ))),
    "journal": lambda: render_journal([
        record("undone", "stop", {"state": "running"}, {"state": "stopped"}),
        record("refused", "stop", None, None, verdicts=(JournalVerdict("window", False, "outside every window"),)),
        record("failed", "stop", {"state": "running"}, None, error="aws ec2.StopInstances: UnauthorizedOperation"),
    ]),
}


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_matches_golden(name: str) -> None:
    rendered = RENDERED[name]()
    path = GOLDEN / f"actions-{name}.txt"
    if os.environ.get("COSTAGENT_UPDATE_GOLDEN") == "1":
        path.write_text(rendered, encoding="utf-8")
        return
    assert path.exists(), f"{path} missing: run with COSTAGENT_UPDATE_GOLDEN=1 to create it"
    assert rendered == path.read_text(encoding="utf-8")

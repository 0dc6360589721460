"""The plan file: written and read back unchanged; a file that is not a usable plan is one line naming it."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from agent import plan as plans
from agent.guards import Candidate, Verdict
from providers.model import Cloud, ResourceRef

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
REF = ResourceRef(Cloud.GCP, "ml-prod", "us-central1", "box-a")


def a_plan() -> plans.Plan:
    c = Candidate("stop", REF, {"team": "ml"}, "gpu-idle", "gpu-idle-abc", {"zone": "us-central1-a"}, Decimal("812.40"))
    action = plans.PlannedAction(c, "Stop: 1 GPU idle", "g2-standard-8", "box-a",
                                 (Verdict("mode", True, "mode apply"), Verdict("scope", False, "opted out")), False,
                                 {"state": "RUNNING"})
    advice = plans.Advice("spot-1", "spot", "spot", REF, "Spot: ...", Decimal("12.00"), "advice only")
    return plans.Plan("plan-x", NOW, "ops@ci", ("gcp",), {"gcp": ("us-central1",)}, 300, "apply", (action,),
                      (advice,), fleet_size=4)


def test_a_plan_round_trips_through_its_file(tmp_path):
    path = tmp_path / "plan.json"
    plans.write(a_plan(), path)
    loaded = plans.read(path)
    assert plans.to_dict(loaded) == plans.to_dict(a_plan())
    assert loaded.actions[0].candidate.monthly_savings_usd == Decimal("812.40")


@pytest.mark.parametrize("text, words", [
    ("{", "not JSON (line 1"),
    ('{"format": "terraform"}', "not a costagent plan"),
    ('{"format": "costagent-plan", "version": 9}', "plan version 9"),
    ('{"format": "costagent-plan", "version": 1, "plan_id": "p"}', "malformed (KeyError"),
])
def test_an_unusable_file_is_one_line_naming_it(tmp_path, text, words):
    path = tmp_path / "plan.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(plans.PlanError) as err:
        plans.read(path)
    assert words in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_missing_file_says_how_to_make_one(tmp_path):
    with pytest.raises(plans.PlanError, match="costagent plan --out"):
        plans.read(tmp_path / "nope.json")


def test_the_totals_count_what_would_act_and_its_savings():
    body = plans.to_dict(a_plan())
    assert body["totals"] == {"actions": 1, "would_act": 0, "refused": 1, "advice": 1,
                              "monthly_savings_usd_would_act": "0"}
    assert json.loads(json.dumps(body)) == body


def test_a_demo_plan_is_refused_by_apply(tmp_path):
    from click.testing import CliRunner

    from agent.cli import main

    path = tmp_path / "plan.json"
    plans.write(plans.Plan(**{**a_plan().__dict__, "demo": True}), path)
    result = CliRunner().invoke(main, ["apply", str(path), "--yes"], env={"COSTAGENT_STATE_URL": f"sqlite:///{tmp_path}/s.db"})
    assert result.exit_code == 2 and "embedded demo cloud" in result.output

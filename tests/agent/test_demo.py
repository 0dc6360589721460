"""``costagent audit --demo`` end to end: the embedded demo clouds (AWS on moto, GCP and Azure on the local
emulators), the normal SDK paths, ground truth."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from providers.sandbox.azure_demo import azure_demo_fleet
from providers.sandbox.fleet import demo_fleet
from providers.sandbox.gcp_demo import gcp_demo_fleet
from providers.sandbox.groups import demo_groups

ALL_VMS = demo_fleet() + gcp_demo_fleet() + azure_demo_fleet()


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """What `make demo` runs (JSON instead of the table), with the HTML report it ends with."""
    html = tmp_path_factory.mktemp("demo") / "costagent-report.html"
    run = subprocess.run([sys.executable, "-m", "agent.cli", "audit", "--demo", "--output", "json", "--html", str(html)],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout), html, run.stderr


@pytest.fixture(scope="module")
def demo(demo_run):
    return demo_run[0]


def test_demo_ends_by_writing_the_html_report_and_printing_its_path(demo_run):
    report, html, stderr = demo_run
    assert f"HTML report written to {html.resolve()}" in stderr
    text = html.read_text(encoding="utf-8")
    assert text.count("<svg") == 4 and "DEMO" in text
    top = max(report["recommendations"], key=lambda r: float(r["monthly_savings_usd"]))
    assert top["resource_id"] in text


def test_demo_meets_its_ground_truth(demo):
    got = {r["name"]: r["kind"] for r in demo["recommendations"] if r["kind"] != "commitment"}  # pools: below
    want = {i.name: i.expect for i in ALL_VMS if i.expect} | {g.name: g.expect for g in demo_groups() if g.expect}
    assert got == want


def test_demo_audits_three_clouds_with_idle_gpus_stopped_on_each(demo):
    assert demo["clouds"] == ["aws", "gcp", "azure"]
    stops = {r["cloud"] for r in demo["recommendations"] if r["kind"] == "stop"}
    assert stops == {"aws", "gcp", "azure"}


def test_demo_groups_get_sizes_and_schedules(demo):
    recs = {r["name"]: r for r in demo["recommendations"] if r["kind"] == "autoscale"}
    office = recs["llm-chat-office"]["action"]["params"]
    assert office["min_size"] == 0 and office["scheduled_actions"]  # zero at night and at weekends
    assert recs["search-embed-overprovisioned"]["action"]["params"]["desired_capacity"] == 1


def test_demo_summary_has_kpis_per_team(demo):
    kpis = demo["summary"]["kpis"]
    assert {t["team"] for t in kpis["teams"]} >= {"llm", "research", "vision"}
    assert kpis["total"]["energy_kwh"] > 0 and kpis["total"]["usd_per_busy_gpu_hour"] > 0


def test_demo_lists_unmeasured_and_young_instances_as_gaps(demo):
    gap_types = {(g["region"], g["what"]) for g in demo["gaps"] if g["resource_id"]}
    assert gap_types == {("us-east-1", "gpu-telemetry"), ("us-west-2", "analysis"),  # AWS
                         ("europe-west4", "gpu-telemetry"), ("eastus", "gpu-telemetry")}  # GCP, Azure: no agent


def test_demo_covers_the_fleet_it_promises(demo):
    assert demo["demo"] is True
    members = sum(g.desired for g in demo_groups())
    assert demo["summary"]["instances"] == len(ALL_VMS) + members >= 12
    assert len(demo["regions"]) >= 2
    assert demo["summary"]["gpu_spend_usd"] > 0  # Cost Explorer answered from the seeded costs


def test_demo_reads_its_billing_export_from_s3(demo):
    billing = demo["summary"]["billing"]
    assert billing["sources"] and all(s.startswith("s3://costagent-demo-billing/") for s in billing["sources"])
    assert billing["rows"] > 1000 and billing["bad_rows"] == 0
    assert 0 < billing["commitments"]["coverage"] < 0.2  # one p4d of the fleet is reserved
    assert billing["commitments"]["utilization"] == 1.0


def test_a_stop_on_a_reserved_instance_is_priced_at_its_effective_rate_and_strands_it(demo):
    rec = next(r for r in demo["recommendations"] if r["name"] == "llm-finetune-7b")
    assert rec["kind"] == "stop"
    commitment = rec["evidence"]["commitment"]
    assert commitment["strands_commitment"] is True and commitment["covered_fraction"] == 1.0
    assert rec["evidence"]["price"]["pricing_model"] == "committed"
    on_demand_month = 21.958 * 730
    assert rec["monthly_savings_usd"] < 0.9 * on_demand_month  # the reservation's rate, not the list price
    assert "Strands a commitment" in rec["summary"]


def test_demo_spot_findings_are_declared_or_inferred(demo):
    spot = {r["name"]: r for r in demo["recommendations"] if r["kind"] == "spot"}
    assert spot["llm-pretrain-l4"]["confidence"] > spot["batch-embeddings"]["confidence"]
    assert spot["llm-pretrain-l4"]["action"] is None  # advice: an on-demand instance is relaunched by its owner
    evidence = spot["llm-pretrain-l4"]["evidence"]
    assert evidence["interruption_band"] and evidence["checkpoint_minutes"] == 5


def test_demo_commits_to_the_steady_group_and_not_to_instances_other_findings_change(demo):
    commitments = {(r["region"], r["resource_id"]): r for r in demo["recommendations"] if r["kind"] == "commitment"}
    steady = commitments[("ap-northeast-1", "commitment:g6")]  # llm-api-steady: 4 g6.xlarge around the clock
    assert steady["evidence"]["level_instances"] == 4 and steady["action"] is None
    assert steady["evidence"]["usage_source"] == "billing"
    # the scheduled notebook (g6.xlarge in the same region) is not committed to, nor the resized or stopped boxes
    assert ("eu-west-1", "commitment:g5") not in commitments and ("us-east-1", "commitment:p4d") not in commitments

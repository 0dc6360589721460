"""The demo's GCP and Azure clouds audited through the real path, and ``audit --demo`` with all three clouds.

Each cloud is seeded once (module fixtures) and audited in-process with the provider built exactly as
``agent/clouds.py`` builds it for the demo, a fixed clock (a Wednesday afternoon) and hourly periods.
The fleets' ``expect`` / ``expect_gap`` are the ground truth the reports must meet.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from agent.audit import AuditRequest, Target, run_audit
from agent.clock import FixedClock
from agent.progress import QuietProgress
from reports.json_report import render_json

NOW = datetime(2026, 3, 11, 14, 17, tzinfo=UTC)
LOOKBACK = timedelta(days=14)
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "reports" / "schema" / "audit-report.v1.json").read_text())


def _audit(provider: Any, regions: tuple[str, ...]) -> dict[str, Any]:
    request = AuditRequest(regions=regions, lookback=LOOKBACK, period=timedelta(hours=1), demo=True)
    outcome = run_audit([Target(provider, regions)], request, FixedClock(NOW), QuietProgress())
    assert outcome.failures == ()
    return json.loads(render_json(outcome.report))


def _vm(resource_id: str) -> str:
    """A VM's name from its id (GCP: the instance name; Azure: the ARM id's last segment)."""
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


def _verdicts(report: dict[str, Any]) -> dict[str, str]:
    """VM name -> finding, commitment pools left out (they are per pool, not per VM)."""
    return {_vm(r["resource_id"]): r["kind"] for r in report["recommendations"] if r["kind"] != "commitment"}


def _gap_vms(report: dict[str, Any], what: str) -> set[str]:
    return {_vm(g["resource_id"]) for g in report["gaps"] if g["resource_id"] and g["what"] == what}


@pytest.fixture(scope="module")
def gcp() -> Iterator[tuple[Any, dict[str, Any]]]:
    from providers.gcp import GcpProvider
    from providers.gcp.client import GcpClients
    from providers.sandbox.gcp_demo import gcp_demo_cloud

    with gcp_demo_cloud(NOW, LOOKBACK) as cloud:
        provider = GcpProvider(GcpClients(projects=cloud.projects, endpoints=cloud.endpoints,
                                          credentials=cloud.credentials, retry_timeout=10),
                               live_prices=False, billing_table=cloud.billing_table)
        yield cloud, _audit(provider, cloud.regions)


@pytest.fixture(scope="module")
def azure() -> Iterator[tuple[Any, dict[str, Any]]]:
    from providers.azure import AzureProvider
    from providers.azure.client import AzureClients
    from providers.sandbox.azure_demo import azure_demo_cloud

    with azure_demo_cloud(NOW, LOOKBACK) as cloud:
        clients = AzureClients(subscriptions=cloud.subscriptions, credential=cloud.credential, base_url=cloud.base_url,
                               ca_bundle=cloud.ca_path, polling_interval=0, metrics_endpoint=cloud.metrics_endpoint)
        yield cloud, _audit(AzureProvider(clients, live_prices=False), cloud.regions)


@pytest.fixture(params=["gcp", "azure"])
def demo(request: pytest.FixtureRequest) -> tuple[Any, dict[str, Any]]:
    return request.getfixturevalue(request.param)


def test_every_vm_gets_the_verdict_its_behaviour_calls_for(demo: tuple[Any, dict[str, Any]]) -> None:
    cloud, report = demo
    assert _verdicts(report) == {i.name: i.expect for i in cloud.fleet if i.expect}


def test_vms_without_gpu_telemetry_are_gaps_not_findings(demo: tuple[Any, dict[str, Any]]) -> None:
    cloud, report = demo
    assert _gap_vms(report, "gpu-telemetry") == {i.name for i in cloud.fleet if i.expect_gap}


def test_report_follows_the_published_schema(demo: tuple[Any, dict[str, Any]]) -> None:
    _, report = demo
    Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(report)


def test_the_whole_fleet_is_listed_and_the_running_gpu_vms_analyzed(demo: tuple[Any, dict[str, Any]]) -> None:
    cloud, report = demo
    summary = report["summary"]
    assert summary["instances"] == len(cloud.fleet)
    assert summary["gpu_instances_running"] == sum(i.running for i in cloud.fleet if i.gpus)
    assert summary["analyzed"] == sum(i.publishes_gpu for i in cloud.fleet)
    assert set(report["regions"]) == set(cloud.regions) and len(cloud.regions) >= 2


def test_gcp_findings_carry_catalog_types_and_labels(gcp: tuple[Any, dict[str, Any]]) -> None:
    _, report = gcp
    stop = next(r for r in report["recommendations"] if r["resource_id"] == "llm-finetune-a100")
    assert (stop["cloud"], stop["account"], stop["region"], stop["instance_type"]) == (
        "gcp", "acme-ml-prod", "us-central1", "a2-highgpu-1g")
    assert float(stop["monthly_savings_usd"]) > 2000  # an A100 box at the catalog's ~$3.67/h
    teams = {t["team"] for t in report["summary"]["kpis"]["teams"]}
    assert teams == {"llm", "research", "vision"}


def test_gcp_costs_come_from_the_bigquery_billing_export(gcp: tuple[Any, dict[str, Any]]) -> None:
    cloud, report = gcp
    assert cloud.billing_table and report["summary"]["gpu_spend_usd"] > 0
    assert report["api_calls"]["bigquery.Jobs.Query"] == 1
    assert not [g for g in report["gaps"] if g["what"] == "costs"]


def test_azure_powered_off_vm_is_told_to_deallocate(azure: tuple[Any, dict[str, Any]]) -> None:
    cloud, report = azure
    rec = next(r for r in report["recommendations"] if _vm(r["resource_id"]) == "vision-t4-poweredoff")
    assert rec["resource_id"] == cloud.vm_id("vision-t4-poweredoff")  # the VM's ARM id
    assert rec["action"]["kind"] == "stop" and rec["action"]["params"] == {"deallocate": True}
    assert cloud.arm.power_state(rec["resource_id"]) == "stopped"  # an audit changes nothing


def test_azure_costs_are_read_from_cost_management(azure: tuple[Any, dict[str, Any]]) -> None:
    _, report = azure
    assert report["api_calls"]["costmanagement.Query.Usage"] >= 1
    assert not [g for g in report["gaps"] if g["what"] == "costs"]
    assert report["summary"]["gpu_spend_usd"] > 0  # the VMs' rows matched to their sizes


def test_azure_host_metrics_come_through_the_batch_api(azure: tuple[Any, dict[str, Any]]) -> None:
    _, report = azure
    calls = report["api_calls"]
    assert calls.get("monitor.MetricsBatch.Query", 0) >= 1  # CPU and network: one call per region's batch
    running_gpu_vms = sum(1 for i in azure[0].fleet if i.running and i.gpus)
    assert calls["monitor.MetricsBatch.Query"] < running_gpu_vms


def test_the_digest_of_the_gcp_demo_has_its_findings_routing_and_idle_series():
    from agent.digests import build_digest
    from providers.gcp import GcpProvider
    from providers.gcp.client import GcpClients
    from providers.sandbox.gcp_demo import gcp_demo_cloud

    with gcp_demo_cloud(NOW, LOOKBACK) as cloud:
        provider = GcpProvider(GcpClients(projects=cloud.projects, endpoints=cloud.endpoints,
                                          credentials=cloud.credentials, retry_timeout=10),
                               live_prices=False, billing_table=cloud.billing_table)
        request = AuditRequest(regions=cloud.regions, lookback=LOOKBACK, period=timedelta(hours=1), demo=True)
        outcome = run_audit([Target(provider, cloud.regions)], request, FixedClock(NOW), QuietProgress())
    digest = build_digest(outcome)
    assert [f.id for f in digest.findings] == [r.id for r in outcome.report.recommendations]
    assert any(f.team for f in digest.findings)  # the demo labels its VMs with a team
    assert len(digest.idle_heatmap) == 168 and sum(digest.idle_heatmap) > 0
    days = digest.idle_by_day
    assert len(days) in (14, 15) and all(d.idle_gpu_hours >= 0 and d.idle_usd >= 0 for d in days)
    # the forgotten A100 alone idles 24 GPU-hours a day at its hourly price
    assert max(d.idle_gpu_hours for d in days) >= 24 and max(d.idle_usd for d in days) > 50

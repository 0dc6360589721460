"""The documented way to point costagent at other endpoints (docs/configuration.md): a config file naming
the GCP services' endpoints, or Azure Resource Manager's URL and CA bundle, and the clouds' standard
credential variables — here against the project's emulators seeded with a small fleet, through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from providers.azure import permissions as azure_permissions
from providers.gcp import permissions as gcp_permissions
from providers.sandbox.azure_arm import AzureArmEmulator
from providers.sandbox.azure_costs import AzureCostsExtension
from providers.sandbox.azure_monitor import AzureMonitorExtension
from providers.sandbox.gcp_compute import GcpComputeEmulator
from providers.sandbox.gcp_monitoring import GcpMonitoringEmulator, add_gce_host, add_ops_agent_gpu

NOW = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
HOURS = pd.date_range(NOW - timedelta(days=3), NOW, freq="1h", inclusive="left")
N = len(HOURS)
QUIET = {"cpu": np.full(N, 1.0), "net": np.full(N, 3e3)}
BUSY = {"cpu": np.full(N, 40.0), "net": np.full(N, 3e7)}
SUB = "7d3e5a1c-0000-4000-8000-00000000c0de"


def run_cli(*args: str, env: dict[str, str] | None = None, code: int = 0) -> dict:
    run = subprocess.run([sys.executable, "-m", "agent.cli", "audit", *args, "--output", "json", "--period", "1h",
                          "--lookback", "3d", "--no-live-prices", "--no-progress"],
                         capture_output=True, text=True, timeout=240, check=False, env={**os.environ, **(env or {})})
    assert run.returncode == code, run.stderr
    return json.loads(run.stdout)


def verdicts(report: dict) -> dict[str, str]:
    return {r["name"] or r["resource_id"]: r["kind"] for r in report["recommendations"]}


@pytest.fixture(scope="module")
def gcp() -> Iterator[tuple[GcpComputeEmulator, GcpMonitoringEmulator]]:
    with GcpComputeEmulator() as compute, GcpMonitoringEmulator() as monitoring:
        compute.add_project("ml-prod")
        for name, machine, util, host in (("idle-a100", "a2-highgpu-1g", np.zeros(N), QUIET),
                                          ("busy-l4", "g2-standard-8", np.full(N, 92.0), BUSY),
                                          ("no-agent-l4", "g2-standard-8", None, BUSY)):
            inst = compute.add_instance("ml-prod", "us-central1-a", name, machine, labels={"team": "ml"},
                                        created=NOW - timedelta(days=30), last_start=NOW - timedelta(days=30))
            if util is not None:
                add_ops_agent_gpu(monitoring, "ml-prod", "us-central1-a", inst["id"], 0, HOURS, util)
                add_gce_host(monitoring, "ml-prod", "us-central1-a", inst["id"], HOURS, host["cpu"], host["net"],
                             host["net"])
        yield compute, monitoring


def test_gcp_audit_through_configured_endpoints(gcp, tmp_path):
    compute, monitoring = gcp
    config = tmp_path / "costagent.toml"
    config.write_text(f"""
[gcp]
projects = ["ml-prod"]
[gcp.endpoints]
compute = "{compute.url}"
monitoring = "{monitoring.address}"
""", encoding="utf-8")
    report = run_cli("--cloud", "gcp", "--config", str(config))
    assert report["clouds"] == ["gcp"] and report["regions"] == ["us-central1"]
    assert verdicts(report) == {"idle-a100": "stop"}
    assert any(g["what"] == "gpu-telemetry" and g["resource_id"] == "no-agent-l4" for g in report["gaps"])
    assert set(report["api_calls"]) <= set(gcp_permissions.READ), "a call the read-only role does not cover"


@pytest.fixture(scope="module")
def azure() -> Iterator[AzureArmEmulator]:
    monitor, costs = AzureMonitorExtension(), AzureCostsExtension()
    with AzureArmEmulator(extensions=[monitor, costs]) as arm:
        arm.add_subscription(SUB)
        costs.add_subscription(SUB)
        for name, size, util, host, state in (
                ("idle-a100", "Standard_NC24ads_A100_v4", np.zeros(N), QUIET, "running"),
                ("busy-t4", "Standard_NC4as_T4_v3", np.full(N, 88.0), BUSY, "running"),
                ("parked-a100", "Standard_NC24ads_A100_v4", None, None, "stopped"),
                ("released-t4", "Standard_NC4as_T4_v3", None, None, "deallocated")):
            vm = arm.add_vm(SUB, "rg-ml", name, size, "eastus", power_state=state, tags={"team": "ml"},
                            created=NOW - timedelta(days=30))
            if util is not None:
                monitor.add_gpu_series(vm["id"], 0, "utilization_gpu", (HOURS, util))
                monitor.add_series(vm["id"], "Percentage CPU", (HOURS, host["cpu"]))
                for metric in ("Network In Total", "Network Out Total"):
                    monitor.add_series(vm["id"], metric, (HOURS, host["net"] * 3600), unit="Bytes")
        yield arm


def test_azure_audit_through_configured_resource_manager(azure, tmp_path):
    config = tmp_path / "costagent.toml"
    config.write_text(f"""
[azure]
subscriptions = ["{SUB}"]
base_url = "{azure.url}"
ca_bundle = "{azure.ca_path}"
""", encoding="utf-8")
    # DefaultAzureCredential's environment credential logs in at the emulator's token endpoint.
    env = {"AZURE_TENANT_ID": "00000000-0000-0000-0000-00000000beef", "AZURE_CLIENT_ID": "costagent-ci",
           "AZURE_CLIENT_SECRET": "not-a-secret", "AZURE_AUTHORITY_HOST": azure.url}
    report = run_cli("--cloud", "azure", "--config", str(config), env=env)
    assert report["clouds"] == ["azure"] and report["regions"] == ["eastus"]
    assert verdicts(report) == {"idle-a100": "stop", "parked-a100": "stop"}
    parked = next(r for r in report["recommendations"] if r["name"] == "parked-a100")
    assert parked["evidence"]["power_state"] == "stopped (allocated)"
    assert azure.tokens_issued
    assert set(report["api_calls"]) <= set(azure_permissions.READ), "a call the read-only role does not cover"


AZURE_ENV = {"AZURE_TENANT_ID": "00000000-0000-0000-0000-00000000beef", "AZURE_CLIENT_ID": "costagent-ci",
             "AZURE_CLIENT_SECRET": "not-a-secret"}


def test_a_cloud_that_cannot_be_listed_is_a_gap_and_the_other_is_still_audited(gcp, azure, tmp_path):
    compute, monitoring = gcp
    compute.add_project("locked-prj")
    compute.deny("locked-prj")
    config = tmp_path / "costagent.toml"
    config.write_text(f"""
[gcp]
projects = ["locked-prj"]
[gcp.endpoints]
compute = "{compute.url}"
monitoring = "{monitoring.address}"
[azure]
subscriptions = ["{SUB}"]
base_url = "{azure.url}"
ca_bundle = "{azure.ca_path}"
metrics_endpoint = "{azure.url}"
""", encoding="utf-8")
    report = run_cli("--config", str(config), env={**AZURE_ENV, "AZURE_AUTHORITY_HOST": azure.url}, code=3)
    assert report["clouds"] == ["gcp", "azure"]
    assert [g["cloud"] for g in report["gaps"] if g["what"] == "inventory"] == ["gcp"]
    assert verdicts(report) == {"idle-a100": "stop", "parked-a100": "stop"}  # Azure's findings
    assert report["api_calls"].get("monitor.MetricsBatch.Query") == 1  # CPU and network of both VMs, one call

"""plan -> apply -> journal -> undo as a user runs them on Azure: the CLI in its own process, against the
Resource Manager emulator over HTTPS (Compute, with the Monitor extension for GPU telemetry), configured the
documented way (``[azure] subscriptions/base_url/ca_bundle`` and the standard credential variables), the
journal in a SQLite file. A stop on Azure is always a deallocation: a VM powered off but still allocated
(PowerState/stopped, still billed) is deallocated too, and no powerOff or DELETE ever reaches the cloud."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from providers.sandbox.azure_arm import AzureArmEmulator
from providers.sandbox.azure_costs import AzureCostsExtension
from providers.sandbox.azure_monitor import AzureMonitorExtension

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
HOURS = pd.date_range(NOW - timedelta(days=3), NOW, freq="1h", inclusive="left")
N = len(HOURS)
SUB, RG, LOCATION = "7d3e5a1c-0000-4000-8000-00000000a991", "rg-ml", "eastus"
#: name -> (size, GPU utilization (None: no telemetry), power state, tags). Savings order (catalog prices):
#: A100 > A10 > NC8as T4 (parked) > NC4as T4 (opted out).
FLEET = {
    "idle-a100": ("Standard_NC24ads_A100_v4", 0.0, "running", {}),
    "idle-a10": ("Standard_NV36ads_A10_v5", 0.0, "running", {}),
    "idle-optout": ("Standard_NC4as_T4_v3", 0.0, "running", {"costagent:skip": "true"}),
    "busy-t4": ("Standard_NC8as_T4_v3", 93.0, "running", {}),
    "parked-t4": ("Standard_NC8as_T4_v3", None, "stopped", {}),  # powered off, still allocated (and billed)
}
ACTED = {"idle-a100", "idle-a10", "parked-t4"}
# DefaultAzureCredential's environment credential logs in at the emulator's token endpoint.
CREDENTIALS = {"AZURE_TENANT_ID": "00000000-0000-0000-0000-00000000beef", "AZURE_CLIENT_ID": "costagent-ci",
               "AZURE_CLIENT_SECRET": "not-a-secret"}
FORBIDDEN = ("DELETE ", "/poweroff")  # matched against the lower-cased request lines


@dataclass
class Cloud:
    arm: AzureArmEmulator
    monitor: AzureMonitorExtension
    ids: dict[str, str]
    tmp: Path

    def config(self, apply: str = 'mode = "apply"') -> Path:
        path = self.tmp / "costagent.toml"
        path.write_text(f"""
[azure]
subscriptions = ["{SUB}"]
base_url = "{self.arm.url}"
ca_bundle = "{Path(self.arm.ca_path).as_posix()}"
[state]
url = "sqlite:///{(self.tmp / 'state.db').as_posix()}"
[apply]
{apply}
""", encoding="utf-8")
        return path

    def power(self, name: str) -> str:
        return self.arm.power_state(self.ids[name])

    def posts(self, action: str | None = None, name: str | None = None) -> int:
        """``POST .../virtualMachines/{name}/{action}`` requests the emulator answered (None: any action, any VM)."""
        vm = f"/virtualmachines/{name.lower()}/" if name else "/virtualmachines/"
        return sum(line.startswith("POST ") and vm in (path := line.split("?", 1)[0].lower())
                   and (action is None or path.endswith(f"/{action.lower()}")) for line in self.arm.requests)

    def forbidden(self) -> list[str]:
        return [line for line in self.arm.arrived if any(f.lower() in line.lower() for f in FORBIDDEN)]

    def busy_now(self, name: str) -> None:
        """The VM's GPU works again in the last hour (after the plan was written)."""
        self.monitor.add_gpu_series(self.ids[name], 0, "utilization_gpu", (HOURS[-1:], np.array([88.0])))


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    monitor, costs = AzureMonitorExtension(), AzureCostsExtension()
    # lro_polls=0: an operation ends at its first status poll (the SDK waits 30 s between polls otherwise).
    with AzureArmEmulator(extensions=[monitor, costs], lro_polls=0) as arm:
        arm.add_subscription(SUB)
        costs.add_subscription(SUB)
        ids = {}
        for name, (size, util, power, tags) in FLEET.items():
            vm = arm.add_vm(SUB, RG, name, size, LOCATION, power_state=power, tags=tags,
                            created=NOW - timedelta(days=30))
            ids[name] = vm["id"]
            if util is None:
                continue
            busy = util > 0
            monitor.add_gpu_series(vm["id"], 0, "utilization_gpu", (HOURS, np.full(N, util)))
            monitor.add_series(vm["id"], "Percentage CPU", (HOURS, np.full(N, 40.0 if busy else 1.0)))
            for metric in ("Network In Total", "Network Out Total"):
                monitor.add_series(vm["id"], metric, (HOURS, np.full(N, (3e7 if busy else 3e3) * 3600)), unit="Bytes")
        made = Cloud(arm, monitor, ids, tmp_path)
        yield made
        assert made.forbidden() == [], "a DELETE or powerOff reached Resource Manager"


def cli(cloud: Cloud, *args: str, code: int | None = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **CREDENTIALS, "AZURE_AUTHORITY_HOST": cloud.arm.url, "COSTAGENT_ACTOR": "tester@ci"}
    run = subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True, timeout=240,
                         check=False, stdin=subprocess.DEVNULL, env=env)
    if code is not None:
        assert run.returncode == code, run.stderr + run.stdout
    return run


def plan(cloud: Cloud, config: Path) -> Path:
    out = cloud.tmp / "plan.json"
    cli(cloud, "plan", "--cloud", "azure", "--config", str(config), "--period", "1h", "--lookback", "3d",
        "--no-live-prices", "--out", str(out))
    return out


def apply(cloud: Cloud, config: Path, plan_file: Path) -> dict[str, dict]:
    """The apply's steps by VM name."""
    run = cli(cloud, "apply", str(plan_file), "--config", str(config), "--yes", "--output", "json")
    return {s["resource"].rsplit("/", 1)[-1]: s for s in json.loads(run.stdout)["steps"]}


def journal(cloud: Cloud, config: Path, *extra: str) -> list[dict]:
    return json.loads(cli(cloud, "journal", "--config", str(config), "--output", "json", *extra).stdout)


def by_name(records: list[dict]) -> dict[str, dict]:
    return {r["resource_id"].rsplit("/", 1)[-1]: r for r in records}


def test_plan_lists_every_idle_vm_with_all_nine_verdicts_and_changes_nothing(cloud: Cloud) -> None:
    config = cloud.config()
    body = json.loads(plan(cloud, config).read_text())
    actions = {a["ref"]["id"].rsplit("/", 1)[-1]: a for a in body["actions"]}

    assert set(actions) == {"idle-a100", "idle-a10", "idle-optout", "parked-t4"}
    assert {a["kind"] for a in actions.values()} == {"stop"}
    assert actions["idle-a100"]["ref"]["id"] == cloud.ids["idle-a100"]  # the ARM id addresses the VM
    for action in actions.values():
        assert [v["guard"] for v in action["verdicts"]] == [
            "mode", "capability", "scope", "window", "grace", "cooldown", "blast-radius", "freshness", "approval"]
    assert {n for n, a in actions.items() if a["would_act"]} == ACTED
    assert cloud.posts() == 0 and cloud.arm.count("PATCH ") == cloud.arm.count("PUT ") == 0
    assert {n: cloud.power(n) for n in FLEET} == {n: power for n, (_, _, power, _) in FLEET.items()}
    assert journal(cloud, config, "--all") == []


def test_apply_deallocates_exactly_the_allowed_vms_and_refuses_the_opted_out_one(cloud: Cloud) -> None:
    config = cloud.config()
    result = apply(cloud, config, plan(cloud, config))

    assert {n for n, s in result.items() if s["status"] == "done"} == ACTED
    assert {n: cloud.posts("deallocate", n) for n in FLEET} == {n: int(n in ACTED) for n in FLEET}
    assert cloud.posts("deallocate") == len(ACTED) and cloud.posts("start") == 0
    assert result["idle-optout"]["status"] == "refused"
    assert "opted out by costagent:skip" in result["idle-optout"]["detail"]
    assert {n: cloud.power(n) for n in FLEET} == {"idle-a100": "deallocated", "idle-a10": "deallocated",
                                                  "parked-t4": "deallocated", "idle-optout": "running",
                                                  "busy-t4": "running"}


def test_an_idle_vm_busy_again_since_the_plan_is_refused_by_freshness(cloud: Cloud) -> None:
    config = cloud.config()
    plan_file = plan(cloud, config)
    cloud.busy_now("idle-a10")

    result = apply(cloud, config, plan_file)

    assert result["idle-a10"]["status"] == "refused"
    assert "freshness: became busy: GPU 0 at 88%" in result["idle-a10"]["detail"]
    assert cloud.posts("deallocate", "idle-a10") == 0 and cloud.power("idle-a10") == "running"
    assert result["idle-a100"]["status"] == "done"  # the others still go ahead


def test_blast_radius_refuses_what_is_over_the_cap(cloud: Cloud) -> None:
    config = cloud.config('mode = "apply"\nmax_actions_per_run = 1')
    result = apply(cloud, config, plan(cloud, config))

    assert result["idle-a100"]["status"] == "done"  # the biggest saving goes first
    for name in ("idle-a10", "parked-t4"):
        assert result[name]["status"] == "refused"
        assert "blast-radius: run cap reached: 1 of 1" in result[name]["detail"]
    assert cloud.posts("deallocate") == 1 and cloud.power("idle-a10") == "running"


def test_the_powered_off_but_allocated_vm_is_deallocated_never_powered_off(cloud: Cloud) -> None:
    config = cloud.config()
    body = json.loads(plan(cloud, config).read_text())
    parked = next(a for a in body["actions"] if a["ref"]["id"] == cloud.ids["parked-t4"])
    freshness = next(v for v in parked["verdicts"] if v["guard"] == "freshness")
    assert freshness["allowed"] and "powered off but allocated" in freshness["reason"]

    result = apply(cloud, config, cloud.tmp / "plan.json")

    assert result["parked-t4"]["status"] == "done"
    assert cloud.power("parked-t4") == "deallocated"
    assert cloud.posts("deallocate", "parked-t4") == 1 and cloud.posts("poweroff") == 0
    record = by_name(journal(cloud, config))["parked-t4"]
    assert (record["before"]["state"], record["after"]["state"]) == ("stopped", "deallocated")


def test_journal_shows_before_after_and_actor_and_undo_starts_the_vm_again(cloud: Cloud) -> None:
    config = cloud.config('mode = "apply"\nmax_actions_per_run = 1')
    apply(cloud, config, plan(cloud, config))
    [done] = journal(cloud, config)
    assert (done["status"], done["kind"], done["resource_id"], done["actor"]) == (
        "done", "stop", cloud.ids["idle-a100"], "tester@ci")
    assert done["before"] == {"state": "running", "size": "Standard_NC24ads_A100_v4"}
    assert done["after"] == {"state": "deallocated", "size": "Standard_NC24ads_A100_v4"}

    cli(cloud, "undo", done["action_id"][:10], "--config", str(config), "--yes")

    assert cloud.power("idle-a100") == "running" and cloud.posts("start", "idle-a100") == 1
    records = {r["action_id"]: r for r in journal(cloud, config)}
    assert records[done["action_id"]]["status"] == "undone"
    [undo] = [r for r in records.values() if r["kind"] == "undo:stop"]
    assert (undo["status"], undo["actor"], undo["after"]["state"]) == ("done", "tester@ci", "running")


def test_no_delete_or_power_off_ever_reaches_resource_manager(cloud: Cloud) -> None:
    """The whole flow, every done action undone: the powered-off VM's undo leaves it deallocated."""
    config = cloud.config()
    apply(cloud, config, plan(cloud, config))
    done = journal(cloud, config)
    assert {r["resource_id"] for r in done} == {cloud.ids[n] for n in ACTED}
    for record in done:
        cli(cloud, "undo", record["action_id"], "--config", str(config), "--yes")

    assert {n: cloud.power(n) for n in ACTED} == {"idle-a100": "running", "idle-a10": "running",
                                                  "parked-t4": "deallocated"}
    parked_undo = next(r for r in journal(cloud, config) if r["kind"] == "undo:stop"
                       and r["resource_id"] == cloud.ids["parked-t4"])
    assert "costagent never powers off" in parked_undo["after"]["note"]
    assert cloud.forbidden() == [] and cloud.arm.count("DELETE ") == 0
    writes = [line.split("?", 1)[0].rsplit("/", 1)[-1] for line in cloud.arm.arrived
              if line.split(" ", 1)[0] != "GET" and "/microsoft.compute/" in line.lower()]
    assert sorted(writes) == ["deallocate"] * 3 + ["start"] * 2  # the parked VM's undo made no call


def test_a_job_started_in_the_current_hour_is_seen_by_freshness(cloud: Cloud) -> None:
    config = cloud.config()
    plan_file = plan(cloud, config)
    now = datetime.now(UTC)  # whatever the minute: the re-read ends at now rounded up, so this bucket is read
    # A training run started on idle-a10 a few seconds ago, after the plan was written.
    cloud.monitor.add_gpu_series(cloud.ids["idle-a10"], 0, "utilization_gpu",
                                 (pd.DatetimeIndex([now - timedelta(seconds=5)]), np.array([95.0])))

    result = apply(cloud, config, plan_file)

    assert result["idle-a10"]["status"] == "refused" and cloud.power("idle-a10") == "running"

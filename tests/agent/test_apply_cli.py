"""plan -> apply -> journal -> undo as a user runs them: the CLI in its own process, against the GCP emulators
(Compute Engine REST, Cloud Monitoring gRPC), the journal in a SQLite file. Each guard that can refuse does,
with its reason; a kill -9 between the call and its journal entry is reconciled without a second stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from providers.sandbox.gcp_compute import GcpComputeEmulator
from providers.sandbox.gcp_monitoring import GcpMonitoringEmulator, add_gce_host, add_ops_agent_gpu

NOW = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
HOURS = pd.date_range(NOW - timedelta(days=3), NOW, freq="1h", inclusive="left")
N = len(HOURS)
PROJECT, ZONE = "ml-prod", "us-central1-a"
#: name -> (machine type, GPU utilization, labels). Savings order: a2 > g2-standard-8 > g2-standard-4.
FLEET = {
    "idle-a100": ("a2-highgpu-1g", 0.0, {}),
    "idle-l4-big": ("g2-standard-8", 0.0, {}),
    "idle-l4-small": ("g2-standard-4", 0.0, {}),
    "idle-optout": ("a2-highgpu-1g", 0.0, {"costagent-skip": "true"}),
    "busy-l4": ("g2-standard-8", 93.0, {}),
}


@dataclass
class Cloud:
    compute: GcpComputeEmulator
    monitoring: GcpMonitoringEmulator
    ids: dict[str, str]
    tmp: Path

    def config(self, apply: str = 'mode = "apply"') -> Path:
        path = self.tmp / "costagent.toml"
        path.write_text(f"""
[gcp]
projects = ["{PROJECT}"]
[gcp.endpoints]
compute = "{self.compute.url}"
monitoring = "{self.monitoring.address}"
[state]
url = "sqlite:///{(self.tmp / 'state.db').as_posix()}"
[apply]
{apply}
""", encoding="utf-8")
        return path

    def status(self, name: str) -> str:
        return self.compute.instance(PROJECT, ZONE, name)["status"]

    def stops(self, name: str | None = None) -> int:
        return self.compute.count(f"/instances/{name}/stop" if name else "/stop")

    def busy_now(self, name: str) -> None:
        """The instance's GPU works again in the last hour (after the plan was written)."""
        add_ops_agent_gpu(self.monitoring, PROJECT, ZONE, self.ids[name], 0, HOURS[-1:], np.array([88.0]))


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    with GcpComputeEmulator() as compute, GcpMonitoringEmulator() as monitoring:
        ids = {}
        for name, (machine, util, labels) in FLEET.items():
            inst = compute.add_instance(PROJECT, ZONE, name, machine, labels=labels,
                                        created=NOW - timedelta(days=30), last_start=NOW - timedelta(days=30))
            ids[name] = inst["id"]
            add_ops_agent_gpu(monitoring, PROJECT, ZONE, inst["id"], 0, HOURS, np.full(N, util))
            host = 40.0 if util else 1.0
            add_gce_host(monitoring, PROJECT, ZONE, inst["id"], HOURS, np.full(N, host), np.full(N, 3e3),
                         np.full(N, 3e3))
        yield Cloud(compute, monitoring, ids, tmp_path)


def cli(*args: str, code: int | None = 0, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    run = subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True, timeout=240,
                         check=False, input=stdin, env={**os.environ, "COSTAGENT_ACTOR": "tester@ci"})
    if code is not None:
        assert run.returncode == code, run.stderr + run.stdout
    return run


def plan(cloud: Cloud, config: Path) -> Path:
    out = cloud.tmp / "plan.json"
    cli("plan", "--cloud", "gcp", "--config", str(config), "--period", "1h", "--lookback", "3d", "--no-live-prices",
        "--out", str(out))
    return out


def apply(config: Path, plan_file: Path, *extra: str, code: int = 0) -> dict:
    run = cli("apply", str(plan_file), "--config", str(config), "--yes", "--output", "json", *extra, code=code)
    return json.loads(run.stdout)


def steps(result: dict) -> dict[str, dict]:
    return {s["resource"].rsplit("/", 1)[-1]: s for s in result["steps"]}


def journal(config: Path, *extra: str) -> list[dict]:
    return json.loads(cli("journal", "--config", str(config), "--output", "json", *extra).stdout)


def test_plan_lists_every_idle_instance_with_its_verdicts_and_changes_nothing(cloud: Cloud) -> None:
    config = cloud.config()
    body = json.loads(plan(cloud, config).read_text())
    by_name = {a["ref"]["id"]: a for a in body["actions"]}
    assert set(by_name) == {"idle-a100", "idle-l4-big", "idle-l4-small", "idle-optout"}
    assert [v["guard"] for v in by_name["idle-a100"]["verdicts"]] == [
        "mode", "capability", "scope", "window", "grace", "cooldown", "blast-radius", "freshness", "approval"]
    assert by_name["idle-a100"]["would_act"] and not by_name["idle-optout"]["would_act"]
    assert by_name["idle-a100"]["params"]["zone"] == ZONE
    assert cloud.stops() == 0 and journal(config, "--all") == []


def test_apply_stops_exactly_the_allowed_idle_instances_and_explains_the_rest(cloud: Cloud) -> None:
    config = cloud.config('mode = "apply"\nmax_actions_per_run = 2')
    plan_file = plan(cloud, config)
    cloud.busy_now("idle-l4-big")

    result = steps(apply(config, plan_file))

    assert {n for n, s in result.items() if s["status"] == "done"} == {"idle-a100", "idle-l4-small"}
    assert cloud.status("idle-a100") == cloud.status("idle-l4-small") == "TERMINATED"
    assert cloud.status("idle-l4-big") == cloud.status("idle-optout") == "RUNNING"
    assert cloud.stops() == 2
    assert "opted out by costagent-skip" in result["idle-optout"]["detail"]
    assert "became busy: GPU 0 at 88%" in result["idle-l4-big"]["detail"]


def test_blast_radius_refuses_what_is_over_the_cap(cloud: Cloud) -> None:
    config = cloud.config('mode = "apply"\nmax_actions_per_run = 1')
    result = steps(apply(config, plan(cloud, config)))
    assert result["idle-a100"]["status"] == "done"
    assert "run cap reached: 1 of 1" in result["idle-l4-big"]["detail"]
    assert cloud.stops() == 1


def test_outside_every_maintenance_window_nothing_is_done(cloud: Cloud) -> None:
    closed = (NOW + timedelta(hours=6)).strftime("%H:00")
    config = cloud.config(f'mode = "apply"\n[[apply.windows]]\nstart = "{closed}"\nend = "{closed[:2]}:30"\n'
                          'timezone = "UTC"')
    result = steps(apply(config, plan(cloud, config)))
    assert {s["status"] for s in result.values()} == {"refused"}
    assert "outside every maintenance window" in result["idle-a100"]["detail"]
    assert cloud.stops() == 0


def test_journal_has_who_when_and_before_after_and_undo_restarts_the_instance(cloud: Cloud) -> None:
    config = cloud.config('mode = "apply"\nmax_actions_per_run = 1')
    apply(config, plan(cloud, config))
    [done] = journal(config)
    assert (done["status"], done["kind"], done["resource_id"], done["actor"]) == ("done", "stop", "idle-a100",
                                                                                 "tester@ci")
    assert done["before"]["state"] == "RUNNING" and done["after"]["state"] == "TERMINATED"

    cli("undo", done["action_id"][:10], "--config", str(config), "--yes")

    assert cloud.status("idle-a100") == "RUNNING"
    records = {r["action_id"]: r for r in journal(config)}
    assert records[done["action_id"]]["status"] == "undone"
    again = cli("undo", done["action_id"], "--config", str(config), "--yes", code=2)
    assert "only a done action can be undone" in again.stderr


def test_the_same_plan_applied_twice_acts_once(cloud: Cloud) -> None:
    config = cloud.config('mode = "apply"\nmax_actions_per_run = 1')
    plan_file = plan(cloud, config)
    apply(config, plan_file)
    second = steps(apply(config, plan_file))
    assert second["idle-a100"]["status"] == "refused" and "cooling down until" in second["idle-a100"]["detail"]
    assert cloud.stops("idle-a100") == 1


def test_dry_run_flag_changes_nothing_and_journals_every_decision(cloud: Cloud) -> None:
    config = cloud.config()
    result = steps(apply(config, plan(cloud, config), "--dry-run"))
    assert result["idle-a100"]["status"] == "dry-run" and result["idle-optout"]["status"] == "refused"
    assert cloud.stops() == 0
    assert journal(config) == []
    assert {r["status"] for r in journal(config, "--all")} == {"dry-run", "refused"}


def test_grace_period_marks_and_notifies_first(cloud: Cloud) -> None:
    config = cloud.config('mode = "apply"\ngrace_hours = 24')
    run = cli("apply", str(plan(cloud, config)), "--config", str(config), "--yes", "--output", "json")
    result = steps(json.loads(run.stdout))
    assert result["idle-a100"]["status"] == "marked" and cloud.stops() == 0
    assert "notice: gcp/ml-prod/us-central1/idle-a100 is marked for stop" in run.stderr


def test_without_yes_and_no_terminal_apply_refuses(cloud: Cloud) -> None:
    config = cloud.config()
    run = cli("apply", str(plan(cloud, config)), "--config", str(config), code=2, stdin="")
    assert "pass --yes" in run.stderr and cloud.stops() == 0


def test_a_kill_9_between_the_stop_and_its_journal_entry_is_reconciled_without_a_second_stop(cloud: Cloud) -> None:
    config = cloud.config('mode = "apply"\nmax_actions_per_run = 1')
    plan_file = plan(cloud, config)
    cloud.compute.hold_next("/instances/idle-a100/stop", 60)  # the stop is made; its answer never arrives
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "apply", str(plan_file), "--config", str(config),
                             "--yes"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not any("/instances/idle-a100/stop" in r for r in cloud.compute.arrived):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    [pending] = journal(config)
    assert pending["status"] == "intended"

    result = apply(config, plan_file)

    assert [r["status"] for r in result["reconciled"]] == ["reconciled-done"]
    assert steps(result)["idle-a100"]["status"] == "refused"  # cooling down: it was just stopped
    assert cloud.stops("idle-a100") == 1 and cloud.status("idle-a100") == "TERMINATED"


def test_two_agents_at_once_only_one_acts(cloud: Cloud) -> None:
    config = cloud.config('mode = "apply"\nmax_actions_per_run = 1')
    plan_file = plan(cloud, config)
    cloud.compute.hold_next("/instances/idle-a100/stop", 3)
    args = [sys.executable, "-m", "agent.cli", "apply", str(plan_file), "--config", str(config), "--yes"]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not any("/stop" in r for r in cloud.compute.arrived):
        assert first.poll() is None
        time.sleep(0.05)
    second = cli("apply", str(plan_file), "--config", str(config), "--yes", code=4)
    assert "another agent is applying" in second.stderr
    assert first.wait(timeout=120) == 0
    assert cloud.stops() == 1


def test_plan_reads_billing_exports_like_audit_and_says_what_it_could_not_read(cloud: Cloud) -> None:
    config = cloud.config()
    missing = cloud.tmp / "no-such-export.csv"
    run = cli("plan", "--cloud", "gcp", "--config", str(config), "--period", "1h", "--lookback", "3d",
              "--no-live-prices", "--out", str(cloud.tmp / "plan.json"), "--billing", str(missing), code=3)
    assert "no-such-export.csv" in run.stderr and (cloud.tmp / "plan.json").exists()

"""The apply engine in-process against the GCP emulators, with a fixed clock: the cases a CLI run cannot
stage (a crash before the call reached the cloud, a crash during an undo), the fleet-share cap, approvals,
a resource gone since the plan."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from google.auth.credentials import AnonymousCredentials

from agent.apply import Applier, CloudSide
from agent.apply_config import ApplySettings
from agent.clock import FixedClock
from agent.guards import Candidate, Mode, Policy
from agent.journal import Journal
from agent.plan import Plan, PlannedAction
from providers.gcp import GcpProvider
from providers.gcp.actuator import GcpActuator
from providers.gcp.client import GcpClients
from providers.model import Cloud, ResourceRef
from providers.sandbox.gcp_compute import GcpComputeEmulator
from providers.sandbox.gcp_monitoring import GcpMonitoringEmulator, add_gce_host, add_ops_agent_gpu

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
HOURS = pd.date_range(NOW - timedelta(hours=6), NOW, freq="1h", inclusive="left")
PROJECT, ZONE, REGION = "ml-prod", "us-central1-a", "us-central1"
NAMES = ("box-a", "box-b", "box-c", "box-d")
OPEN = Policy(mode=Mode.APPLY)


@dataclass
class World:
    compute: GcpComputeEmulator
    journal: Journal
    side: CloudSide

    def applier(self, policy: Policy = OPEN, **kw) -> Applier:
        return Applier(self.journal, {Cloud.GCP: self.side}, ApplySettings(policy), FixedClock(NOW),
                       actor="tester@ci", period=timedelta(hours=1), **kw)

    def status(self, name: str) -> str:
        return self.compute.instance(PROJECT, ZONE, name)["status"]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with GcpComputeEmulator(now=lambda: NOW) as compute, GcpMonitoringEmulator() as monitoring:
        for name in NAMES:
            inst = compute.add_instance(PROJECT, ZONE, name, "g2-standard-8")
            add_ops_agent_gpu(monitoring, PROJECT, ZONE, inst["id"], 0, HOURS, np.zeros(len(HOURS)))
            add_gce_host(monitoring, PROJECT, ZONE, inst["id"], HOURS, np.ones(len(HOURS)), np.full(len(HOURS), 1e3),
                         np.full(len(HOURS), 1e3))
        clients = GcpClients(projects=[PROJECT], endpoints={"compute": compute.url, "monitoring": monitoring.address},
                             credentials=AnonymousCredentials(), retry_timeout=1, retry_initial=0.01, timeout=10.0)
        side = CloudSide(GcpProvider(clients, live_prices=False), GcpActuator(clients, sleep=lambda _: None))
        with Journal(f"sqlite:///{tmp_path / 'state.db'}", FixedClock(NOW)) as journal:
            yield World(compute, journal, side)


def ref(name: str) -> ResourceRef:
    return ResourceRef(Cloud.GCP, PROJECT, REGION, name)


def planned(name: str, kind: str = "stop", savings: int = 100, **params) -> PlannedAction:
    c = Candidate(kind, ref(name), {}, "gpu-idle", f"rec-{name}", {"zone": ZONE, **params}, Decimal(savings))
    return PlannedAction(c, f"{kind} {name}", "g2-standard-8", name, would_act=True)


def a_plan(*actions: PlannedAction, plan_id: str = "plan-1") -> Plan:
    return Plan(plan_id, NOW, "tester@ci", ("gcp",), {"gcp": (REGION,)}, 3600, "apply", tuple(actions))


def test_a_crash_before_the_call_reached_the_cloud_is_settled_not_done_and_the_plan_acts_once(world):
    world.journal.intend(ref("box-a"), "stop", {"zone": ZONE}, plan_id="plan-1", run_id="dead", actor="x",
                         before={"state": "RUNNING"})  # the process died right after this commit

    result = world.applier().run(a_plan(planned("box-a")))

    assert [r.status for r in result.reconciled] == ["reconciled-not-done"]
    assert [s.status for s in result.steps] == ["done"]
    assert world.compute.count("/instances/box-a/stop") == 1 and world.status("box-a") == "TERMINATED"


def test_a_crash_during_an_undo_is_settled_by_the_undos_own_effect(world):
    applier = world.applier()
    [step] = applier.run(a_plan(planned("box-a"))).steps
    original = world.journal.get(step.action_id)
    world.journal.intend(ref("box-a"), "undo:stop", {"zone": ZONE}, plan_id=f"undo-{original.id}", run_id="dead",
                         actor="x", before={"state": "TERMINATED"}, undo_of=original.id)
    world.compute.instance(PROJECT, ZONE, "box-a")["status"] = "RUNNING"  # the start went through

    settled, left = world.applier().reconcile()

    assert [r.status for r in settled] == ["reconciled-done"] and left == []
    assert world.journal.get(original.id).status == "undone"


def test_fleet_share_caps_the_run_rounding_down(world):
    policy = replace(OPEN, max_fleet_fraction=0.5)  # 4 GPU instances: 2 actions
    result = world.applier(policy).run(a_plan(*(planned(n, savings=100 - i) for i, n in enumerate(NAMES))))
    assert [s.status for s in result.steps] == ["done", "done", "refused", "refused"]
    assert "run cap reached: 2 of 2 actions (fleet of 4)" in result.steps[2].detail


def test_a_resize_waits_for_approval_and_an_approved_one_runs(world):
    world.compute.instance(PROJECT, ZONE, "box-b")["status"] = "TERMINATED"
    resize = planned("box-b", "resize", from_type="g2-standard-8", to_type="g2-standard-4")

    [refused] = world.applier().run(a_plan(resize)).steps
    [done] = world.applier(approved=["rec-box-b"]).run(a_plan(resize, plan_id="plan-2")).steps

    assert refused.status == "refused" and "resize needs approval: approve rec-box-b" in refused.detail
    assert done.status == "done"
    assert world.compute.instance(PROJECT, ZONE, "box-b")["machineType"].endswith("/g2-standard-4")


def test_a_resource_gone_since_the_plan_is_refused_and_journaled(world):
    [step] = world.applier().run(a_plan(planned("box-gone"))).steps
    assert step.status == "refused" and "not in the fresh inventory" in step.detail
    assert world.journal.get(step.action_id).status == "refused"


def test_report_mode_evaluates_nothing_in_the_cloud_and_changes_nothing(world):
    [step] = world.applier(Policy(mode=Mode.REPORT)).run(a_plan(planned("box-a"))).steps
    assert step.status == "refused" and "mode report" in " ".join(r for _, _, r in step.verdicts)
    assert world.compute.count("/stop") == 0 and world.compute.count("/instances/box-a") == 0


def test_an_off_hours_schedule_is_refused_by_capability_with_the_clouds_own_scheduler_named(world):
    [step] = world.applier().run(a_plan(planned("box-a", "schedule"))).steps
    assert step.status == "refused" and "capability: cannot schedule on gcp" in step.detail
    assert "instance schedule" in step.detail and world.compute.count("/instances/box-a/") == 0


def test_a_cooldown_after_an_undo_keeps_the_resource_alone(world):
    [done] = world.applier().run(a_plan(planned("box-a"))).steps
    world.applier().undo(world.journal.get(done.action_id))
    policy = replace(OPEN, cooldown=timedelta(hours=24))
    [again] = world.applier(policy).run(a_plan(planned("box-a"), plan_id="plan-2")).steps
    assert again.status == "refused" and "cooling down until" in again.detail
    assert world.compute.count("/instances/box-a/stop") == 1 and world.status("box-a") == "RUNNING"


def test_the_recent_window_reads_the_unfinished_bucket_at_a_fine_step_and_two_audit_periods_back():
    from agent.freshness import recent_window

    now = datetime(2026, 11, 23, 11, 27, 30, tzinfo=timezone.utc)
    window, step = recent_window(now, timedelta(minutes=60), timedelta(hours=1))
    assert step == timedelta(minutes=5)
    assert (window.start, window.end) == (datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc),
                                          datetime(2026, 11, 23, 11, 30, tzinfo=timezone.utc))
    window, step = recent_window(now, timedelta(minutes=60), timedelta(minutes=1))
    assert step == timedelta(minutes=1) and window.end == datetime(2026, 11, 23, 11, 28, tzinfo=timezone.utc)
    assert window.duration == timedelta(minutes=60)


def test_after_the_lease_is_lost_nothing_more_is_done(world):
    applier = world.applier()
    applier.lease_lost.set()
    [step] = applier.run(a_plan(planned("box-a"))).steps
    assert step.status == "refused" and "lease was lost" in step.detail
    assert world.compute.count("/stop") == 0

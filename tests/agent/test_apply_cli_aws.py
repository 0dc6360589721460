"""plan -> apply -> journal -> undo on AWS as a user runs them: the CLI in its own process, pointed at a moto
server with ``AWS_ENDPOINT_URL`` and the standard credential variables, GPU metrics from the CloudWatch agent's
``nvidia_smi_*`` series; the freshness guard's preview is EC2's own ``DryRun``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from providers.aws import metrics
from providers.sandbox import MotoServer, moto_server
from tests.aws.support import HOUR, NOW, dims, hours, launch, put, raw, reset

REGION = "us-east-1"
TIMES = hours(NOW - timedelta(days=3), 72)


@pytest.fixture(scope="module")
def server() -> Iterator[MotoServer]:
    with moto_server((REGION,)) as srv:
        yield srv


@pytest.fixture
def moto(server: MotoServer) -> MotoServer:
    reset(server.url)
    return server


def gpu(cw, iid: str, values: list[tuple]) -> None:
    put(cw, "CWAgent", metrics.GPU_UTIL_NAME, dims(InstanceId=iid, index="0", name="NVIDIA A10G"), values, "Percent")


def seed(url: str) -> dict[str, str]:
    """Two idle g5s, an idle one opted out, a busy one; CPU low on the idle ones."""
    ec2, cw = raw("ec2", url, REGION), raw("cloudwatch", url, REGION)
    ids = {}
    for name, itype, util, tags in (("idle-big", "g5.4xlarge", 0.0, {}), ("idle-small", "g5.xlarge", 0.0, {}),
                                    ("idle-optout", "g5.2xlarge", 0.0, {"costagent:skip": ""}),
                                    ("busy", "g5.xlarge", 91.0, {})):
        [iid] = launch(ec2, itype, tags={"Name": name, **tags})
        ids[name] = iid
        gpu(cw, iid, [(t, util) for t in TIMES])
        put(cw, "AWS/EC2", "CPUUtilization", dims(InstanceId=iid), [(t, 40.0 if util else 1.0) for t in TIMES],
            "Percent")
    return ids


def env(url: str, tmp: Path) -> dict[str, str]:
    return {**os.environ, "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": str(tmp / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "none"), "COSTAGENT_ACTOR": "ops@ci"}


def config(tmp: Path, apply: str) -> Path:
    path = tmp / "costagent.toml"
    path.write_text(f'[aws]\nregions = ["{REGION}"]\n[state]\nurl = "sqlite:///{(tmp / "s.db").as_posix()}"\n'
                    f"[apply]\n{apply}\n", encoding="utf-8")
    return path


def cli(url: str, tmp: Path, *args: str, code: int = 0) -> str:
    run = subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True, timeout=240,
                         check=False, env=env(url, tmp))
    assert run.returncode == code, run.stderr + run.stdout
    return run.stdout


def state(url: str, iid: str) -> str:
    [r] = raw("ec2", url, REGION).describe_instances(InstanceIds=[iid])["Reservations"]
    return r["Instances"][0]["State"]["Name"]


def plan_and_apply(url: str, tmp: Path, apply: str, after_plan=None) -> dict:
    cfg = config(tmp, apply)
    cli(url, tmp, "plan", "--config", str(cfg), "--period", "1h", "--lookback", "3d", "--no-live-prices",
        "--out", str(tmp / "plan.json"))
    if after_plan:
        after_plan()
    return json.loads(cli(url, tmp, "apply", str(tmp / "plan.json"), "--config", str(cfg), "--yes",
                          "--output", "json"))


def by_id(result: dict) -> dict[str, dict]:
    return {s["resource"].rsplit("/", 1)[-1]: s for s in result["steps"]}


def test_apply_stops_the_allowed_idle_instances_after_an_ec2_dry_run(moto, tmp_path):
    ids = seed(moto.url)
    steps = by_id(plan_and_apply(moto.url, tmp_path, 'mode = "apply"'))

    assert {k for k, s in steps.items() if s["status"] == "done"} == {ids["idle-big"], ids["idle-small"]}
    assert state(moto.url, ids["idle-big"]) == "stopped" and state(moto.url, ids["busy"]) == "running"
    assert state(moto.url, ids["idle-optout"]) == "running"
    assert "opted out by costagent:skip" in steps[ids["idle-optout"]]["detail"]
    fresh = {v["guard"]: v for v in steps[ids["idle-big"]]["verdicts"]}["freshness"]
    assert fresh["allowed"] and "the cloud's dry run allows the stop" in fresh["reason"]


def test_an_instance_busy_again_since_the_plan_is_not_stopped(moto, tmp_path):
    ids = seed(moto.url)
    cw = raw("cloudwatch", moto.url, REGION)
    steps = by_id(plan_and_apply(moto.url, tmp_path, 'mode = "apply"',
                                 after_plan=lambda: gpu(cw, ids["idle-small"], [(NOW - HOUR, 77.0)])))
    assert steps[ids["idle-small"]]["status"] == "refused"
    assert "became busy: GPU 0 at 77%" in steps[ids["idle-small"]]["detail"]
    assert state(moto.url, ids["idle-small"]) == "running"


def test_journal_and_undo_restart_the_stopped_instance(moto, tmp_path):
    ids = seed(moto.url)
    plan_and_apply(moto.url, tmp_path, 'mode = "apply"\nmax_actions_per_run = 1')
    cfg = str(tmp_path / "costagent.toml")
    [done] = json.loads(cli(moto.url, tmp_path, "journal", "--config", cfg, "--output", "json"))
    assert (done["resource_id"], done["actor"], done["before"]["state"], done["after"]["state"]) == (
        ids["idle-big"], "ops@ci", "running", "stopped")

    cli(moto.url, tmp_path, "undo", done["action_id"], "--config", cfg, "--yes")

    assert state(moto.url, ids["idle-big"]) == "running"
    statuses = {r["kind"]: r["status"] for r in json.loads(cli(moto.url, tmp_path, "journal", "--config", cfg,
                                                                "--output", "json"))}
    assert statuses == {"stop": "undone", "undo:stop": "done"}

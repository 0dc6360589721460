"""An independent ("foreign") fleet audited end to end through the CLI.

Written by an outside tester *independently of* ``providers/sandbox/`` and of the rest of ``tests/``:
nothing here is imported from, or modelled on, the project's own demo fleet. The fleet is presented the
way real AWS and the real CloudWatch agent would present it:

* EC2 instances made with ``RunInstances`` (Name/team tags, spot via ``InstanceMarketOptions``, one
  stopped with ``StopInstances``), launch times in the past as a long-running fleet has them;
* the CloudWatch agent's ``nvidia_gpu`` plugin series in ``CWAgent`` — ``nvidia_smi_utilization_gpu``
  (Percent), ``nvidia_smi_memory_used`` / ``nvidia_smi_memory_total`` (Megabytes) — one series per GPU
  with ``InstanceId``, ``index`` and ``name``, some with ``host`` / ``InstanceType`` / ``ImageId``, the
  dimension lists in unsorted, per-instance orders, one instance with the agent's ``[InstanceId]``
  aggregation rollup too;
* ``AWS/EC2`` ``CPUUtilization`` and ``NetworkIn`` / ``NetworkOut`` (bytes per 5-minute sample) for
  most instances, not all.

Behaviours come from this file's own seeded generators (15-minute agent samples over 14 days, 1-minute
for the recent spot box). The moto server runs in a child process (this file run as a script), so no
moto state is shared with other tests. The CLI runs once per module, as a subprocess, with
``AWS_ENDPOINT_URL`` pointing at that server and ``--period 1h`` (moto's GetMetricData time grows with
periods x stored points: the default 5-minute period takes minutes on moto, not on AWS).

The expected verdicts were written down before the CLI was first run on this fleet.
"""
from __future__ import annotations

import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

PER_MONTH = 730.0
WEEKS_PER_MONTH = 730.0 / 168.0

GPU_NAME = {
    "g4dn": ("Tesla T4", 15360),
    "g5": ("NVIDIA A10G", 23028),
    "g6": ("NVIDIA L4", 23034),
    "p3": ("Tesla V100-SXM2-16GB", 16384),
}
GPU_COUNT = {"g4dn.xlarge": 1, "g5.xlarge": 1, "g5.2xlarge": 1, "g6.xlarge": 1,
             "g5.12xlarge": 4, "p3.2xlarge": 1, "m5.large": 0}


# ------------------------------------------------------------------------------------------- fleet

@dataclass
class Spec:
    key: str
    name: str
    team: str
    region: str
    itype: str
    behaviour: str
    spot: bool = False
    launched_h_ago: float = 14 * 24 + 6
    stopped_h_ago: float | None = None
    dims: list[str] = field(default_factory=lambda: ["InstanceId", "index", "name"])
    dims_before_switch: list[str] | None = None
    dims_switch_h_ago: float | None = None
    gpu_cadence_min: int = 15
    gpu_until_h_ago: float = 0.0
    ec2_metrics: bool = True
    ec2_cadence_min: int = 15
    cwagent: bool = True
    rollup: bool = False


FLEET = [
    Spec("A", "sandbox-a10g-idle", "research", "us-east-1", "g5.xlarge",
         "idle all 14 days (GPU 0-1 %, CPU 1-3 %)", dims=["index", "name", "InstanceId"]),
    Spec("B", "llm-finetune-forgotten", "nlp", "us-east-1", "g5.2xlarge",
         "trained ~5 days, then idle ~9 days with the kernel still holding GPU memory; no AWS/EC2 metrics",
         ec2_metrics=False, dims=["host", "InstanceId", "InstanceType", "name", "index"]),
    Spec("G", "vision-no-agent", "vision", "us-east-1", "g4dn.xlarge",
         "running, no CWAgent series at all (AWS/EC2 only)", cwagent=False),
    Spec("H", "legacy-v100-stopped", "legacy", "us-east-1", "p3.2xlarge",
         "stopped 3 days ago: busy until 5 days ago, idle 2 days before the stop",
         stopped_h_ago=72, dims=["index", "name", "host", "InstanceId"]),
    Spec("M", "bastion", "platform", "us-east-1", "m5.large", "not a GPU instance", cwagent=False),
    Spec("C", "notebook-pst", "data-science", "us-west-2", "g6.xlarge",
         "office-hours notebook, weekdays 09-17 UTC-8 with noise; idle nights and weekends",
         dims=["InstanceId", "ImageId", "InstanceType", "host", "index", "name"]),
    Spec("E", "batch-spot", "batch", "us-west-2", "g4dn.xlarge",
         "bursty batch (spot): 2-5 random jobs of 30-120 min a day", spot=True,
         dims=["name", "index", "host", "InstanceId", "InstanceType"]),
    Spec("D", "ddp-train-4x", "nlp", "us-east-2", "g5.12xlarge",
         "4-GPU training 24/7 with 15-min checkpoint dips, plus the [InstanceId] rollup",
         rollup=True, dims=["host", "index", "name", "InstanceId"]),
    Spec("J", "agent-died", "research", "ap-northeast-1", "g6.xlarge",
         "GPU idle, the agent stopped publishing 2 days ago, the instance still runs (CPU low)",
         gpu_until_h_ago=48, dims=["host", "InstanceId", "index", "name", "ImageId"]),
    Spec("I", "one-of-four", "cv", "eu-central-1", "g5.12xlarge",
         "4 GPUs, only GPU 0 works (24/7), GPUs 1-3 at 0 %", dims=["InstanceType", "InstanceId", "index", "name"]),
    Spec("F", "inference-api", "platform", "us-west-1", "g5.xlarge",
         "inference server, diurnal load, never idle"),
    Spec("K", "spot-idle-new", "research", "eu-west-1", "g4dn.xlarge",
         "spot, launched 72 h ago, worked 10 h, idle since; 1-minute agent data, 5-minute EC2 data",
         spot=True, launched_h_ago=72, gpu_cadence_min=1, ec2_cadence_min=5,
         dims=["InstanceId", "name", "index", "host"]),
    Spec("C4", "notebook-agent-reconfigured", "data-science", "ca-central-1", "g6.xlarge",
         "office-hours notebook as C; 6 days ago the agent config gained InstanceType/ImageId, so each GPU "
         "has an old series (first 8 days) and a new one (last 6 days)",
         dims=["InstanceId", "index", "name", "host", "InstanceType", "ImageId"],
         dims_before_switch=["InstanceId", "index", "name", "host"], dims_switch_h_ago=6 * 24),
]


class Behaviour:
    def __init__(self, spec: Spec, now: datetime, seed: int):
        self.s, self.now, self.rng = spec, now, random.Random(seed)
        self.ngpu = GPU_COUNT[spec.itype]
        self.mem_total = GPU_NAME[spec.itype.split(".")[0]][1] if self.ngpu else 0
        self.dip_phase = self.rng.randrange(0, 180)
        self.office: dict = {}
        self.jobs = self._batch_jobs() if spec.key == "E" else []

    def _h_ago(self, t):
        return (self.now - t).total_seconds() / 3600

    def _idle(self):
        return 0.0 if self.rng.random() < 0.85 else 1.0

    def _batch_jobs(self):
        jobs, day = [], self.now - timedelta(days=15)
        while day < self.now:
            for _ in range(self.rng.randint(2, 5)):
                start = day + timedelta(minutes=self.rng.uniform(0, 24 * 60))
                jobs.append((start, start + timedelta(minutes=self.rng.uniform(30, 120))))
            day += timedelta(days=1)
        recent = self.now - timedelta(hours=7, minutes=20)  # between jobs, not forgotten
        jobs.append((recent, recent + timedelta(minutes=75)))
        return jobs

    def _job_on(self, t):
        return any(a <= t < b for a, b in self.jobs)

    def _dip(self, t, every):
        return (int(t.timestamp() // 60) + self.dip_phase) % every < 15

    def _office_busy(self, t):
        local = t - timedelta(hours=8)  # America/Los_Angeles in winter
        if local.weekday() >= 5 or not 9 <= local.hour < 17:
            return False
        hour = (local.date(), local.hour)
        if hour not in self.office:  # some working hours see no GPU use at all; lunch mostly idle
            self.office[hour] = self.rng.random() < (0.35 if local.hour == 12 else 0.85)
        if not self.office[hour]:
            return False
        slot = t.replace(minute=t.minute - t.minute % 15, second=0, microsecond=0)
        if slot not in self.office:
            self.office[slot] = self.rng.random() < 0.8
        return self.office[slot]

    def gpu(self, t):
        k, rng, h = self.s.key, self.rng, self._h_ago(t)
        if k in ("A", "J"):
            return [self._idle()]
        if k == "B":
            if h > 9 * 24:
                return [rng.uniform(0, 3) if self._dip(t, 165) else rng.uniform(88, 100)]
            return [self._idle()]
        if k == "H":
            if h > 5 * 24:
                return [rng.uniform(0, 2) if self._dip(t, 165) else rng.uniform(60, 97)]
            return [self._idle()]
        if k in ("C", "C4"):
            return [rng.uniform(12, 85) if self._office_busy(t) else self._idle()]
        if k == "E":
            return [rng.uniform(85, 100) if self._job_on(t) else self._idle()]
        if k == "D":
            dip = self._dip(t, 180)
            return [rng.uniform(0, 3) if dip else rng.uniform(85, 100) for _ in range(4)]
        if k == "I":
            return [rng.uniform(0, 2) if self._dip(t, 200) else rng.uniform(75, 99), 0.0, 0.0, 0.0]
        if k == "F":
            hour = t.hour + t.minute / 60
            v = 45 + 30 * math.sin(2 * math.pi * (hour - 9) / 24) + rng.uniform(-8, 8)
            return [max(12.0, min(100.0, v))]
        if k == "K":
            age = self.s.launched_h_ago - h
            if age < 10:
                if 3.0 <= age < 3.6 or 6.5 <= age < 7.0:  # two short breaks
                    return [0.0]
                return [rng.uniform(40, 95)]
            return [self._idle()]
        raise KeyError(k)

    def mem_used(self, t):
        k, h = self.s.key, self._h_ago(t)
        if k == "B":
            return [21400.0 if h > 9 * 24 else 19800.0]
        if k == "H":
            return [14800.0 if h > 5 * 24 else 0.0]
        if k in ("C", "C4"):
            return [6200.0 if self._office_busy(t) else 2100.0]
        if k == "E":
            return [13000.0 if self._job_on(t) else 0.0]
        if k == "D":
            return [21800.0] * 4
        if k == "I":
            return [20500.0, 0.0, 0.0, 0.0]
        if k == "F":
            return [17000.0]
        if k == "K":
            return [9000.0 if self.s.launched_h_ago - h < 10 else 0.0]
        return [0.0] * self.ngpu

    def cpu_net(self, t):
        """CPU %, NetworkIn and NetworkOut bytes per 5-minute sample."""
        k, rng, h = self.s.key, self.rng, self._h_ago(t)
        idle = (rng.uniform(1, 3), rng.uniform(3e4, 1.5e5), rng.uniform(2e4, 1e5))
        busy = (rng.uniform(25, 55), rng.uniform(2e8, 6e8), rng.uniform(5e6, 2e7))
        if k in ("A", "J"):
            return idle
        if k == "G":
            return (rng.uniform(15, 35), rng.uniform(2e6, 2e7), rng.uniform(1e6, 5e6))
        if k == "M":
            return (rng.uniform(4, 12), rng.uniform(2e5, 1e6), rng.uniform(2e5, 1e6))
        if k == "H":
            return busy if h > 5 * 24 else idle
        if k in ("C", "C4"):
            return (rng.uniform(12, 40), rng.uniform(3e5, 3e6), rng.uniform(1e5, 1e6)) if self._office_busy(t) else idle
        if k == "E":
            return busy if self._job_on(t) else idle
        if k in ("D", "I"):
            return busy
        if k == "F":
            return (rng.uniform(15, 45), rng.uniform(5e6, 5e7), rng.uniform(2e7, 2e8))
        if k == "K":
            return busy if self.s.launched_h_ago - h < 10 else idle
        raise KeyError(k)


def _grid(start, end, step_min):
    t = start.replace(second=0, microsecond=0)
    t -= timedelta(minutes=t.minute % step_min)
    if t < start:
        t += timedelta(minutes=step_min)
    out = []
    while t <= end:
        out.append(t)
        t += timedelta(minutes=step_min)
    return out


def _put(cw, namespace, data):
    for i in range(0, len(data), 1000):
        cw.put_metric_data(Namespace=namespace, MetricData=data[i:i + 1000])


def seed_fleet(endpoint: str, now: datetime) -> dict[str, str]:
    """Create the fleet through the EC2 and CloudWatch APIs; return {key: instance id}."""
    import boto3

    creds = dict(endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing")
    ids = {}
    for n, s in enumerate(FLEET):
        ec2 = boto3.client("ec2", region_name=s.region, **creds)
        cw = boto3.client("cloudwatch", region_name=s.region, **creds)
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        args = dict(ImageId=image, InstanceType=s.itype, MinCount=1, MaxCount=1,
                    TagSpecifications=[{"ResourceType": "instance", "Tags": [
                        {"Key": "Name", "Value": s.name}, {"Key": "team", "Value": s.team}]}])
        if s.spot:
            args["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": {
                "SpotInstanceType": "persistent", "InstanceInterruptionBehavior": "stop"}}
        inst = ec2.run_instances(**args)["Instances"][0]
        iid = ids[s.key] = inst["InstanceId"]
        ip = inst.get("PrivateIpAddress") or f"10.0.{n}.{10 + n}"
        domain = "ec2.internal" if s.region == "us-east-1" else f"{s.region}.compute.internal"
        host = "ip-" + ip.replace(".", "-") + "." + domain

        # Telemetry starts at the (simulated) launch; moto stamps LaunchTime "now", which the audit does not use.
        launched = now - timedelta(hours=s.launched_h_ago)
        if s.stopped_h_ago is not None:
            ec2.stop_instances(InstanceIds=[iid])

        beh = Behaviour(s, now, 20261123 + n)
        start = max(launched + timedelta(minutes=5), now - timedelta(days=14, hours=2))
        end = now - timedelta(minutes=1)
        if s.stopped_h_ago is not None:
            end = now - timedelta(hours=s.stopped_h_ago)

        if s.cwagent and beh.ngpu:
            gname = GPU_NAME[s.itype.split(".")[0]][0]
            gpu_end = min(end, now - timedelta(hours=s.gpu_until_h_ago))
            switch = now - timedelta(hours=s.dims_switch_h_ago) if s.dims_switch_h_ago else None

            def dims(idx, t):
                vals = {"InstanceId": iid, "index": str(idx), "name": gname, "host": host,
                        "InstanceType": s.itype, "ImageId": image}
                order = s.dims_before_switch if switch is not None and t < switch else s.dims
                return [{"Name": d, "Value": vals[d]} for d in order]

            data = []
            for t in _grid(start, gpu_end, s.gpu_cadence_min):
                vals = beh.gpu(t)
                for i, v in enumerate(vals):
                    data.append({"MetricName": "nvidia_smi_utilization_gpu", "Dimensions": dims(i, t),
                                 "Timestamp": t, "Value": round(v), "Unit": "Percent"})
                if s.rollup:
                    data.append({"MetricName": "nvidia_smi_utilization_gpu",
                                 "Dimensions": [{"Name": "InstanceId", "Value": iid}],
                                 "Timestamp": t, "Value": round(sum(vals) / len(vals)), "Unit": "Percent"})
            # memory fields hourly (costagent reads them at 1 h / 1 day; keeps moto fast)
            for t in _grid(start, gpu_end, 60):
                for i, v in enumerate(beh.mem_used(t)):
                    data.append({"MetricName": "nvidia_smi_memory_used", "Dimensions": dims(i, t),
                                 "Timestamp": t, "Value": v, "Unit": "Megabytes"})
                    data.append({"MetricName": "nvidia_smi_memory_total", "Dimensions": dims(i, t),
                                 "Timestamp": t, "Value": float(beh.mem_total), "Unit": "Megabytes"})
            _put(cw, "CWAgent", data)

        if s.ec2_metrics:
            d = [{"Name": "InstanceId", "Value": iid}]
            data = []
            for t in _grid(start, end, s.ec2_cadence_min):
                cpu, nin, nout = beh.cpu_net(t)
                data += [
                    {"MetricName": "CPUUtilization", "Dimensions": d, "Timestamp": t,
                     "Value": round(cpu, 3), "Unit": "Percent"},
                    {"MetricName": "NetworkIn", "Dimensions": d, "Timestamp": t,
                     "Value": round(nin), "Unit": "Bytes"},
                    {"MetricName": "NetworkOut", "Dimensions": d, "Timestamp": t,
                     "Value": round(nout), "Unit": "Bytes"},
                ]
            _put(cw, "AWS/EC2", data)
    return ids


def _serve():
    """Child process: moto server + fleet; prints one JSON line, serves until stdin closes."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    t0 = time.monotonic()
    ids = seed_fleet(url, now)
    print(json.dumps({"url": url, "ids": ids, "now": now.isoformat(),
                      "seed_seconds": round(time.monotonic() - t0, 1)}), flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    _serve()
    sys.exit(0)


# ------------------------------------------------------------------------------------------- tests

import pytest  # noqa: E402

SCHEMA = Path(__file__).resolve().parents[2] / "reports" / "schema" / "audit-report.v1.json"


def _costagent() -> list[str]:
    exe = Path(sys.executable).with_name("costagent")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("costagent")
    assert found, "costagent is not installed in this environment"
    return [found]


@pytest.fixture(scope="module")
def audit(tmp_path_factory):
    log = tmp_path_factory.mktemp("foreign-fleet") / "moto.log"
    with open(log, "w") as err:
        child = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        line = child.stdout.readline()
        assert line, f"moto fleet server failed to start:\n{log.read_text()[-3000:]}"
        info = json.loads(line)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ENDPOINT_URL=info["url"], AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=os.devnull,
                   AWS_SHARED_CREDENTIALS_FILE=os.devnull)
        regions = sorted({s.region for s in FLEET})
        cmd = _costagent() + ["audit", "--cloud", "aws", "--output", "json", "--period", "1h"]
        for r in regions:
            cmd += ["--region", r]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        cli_seconds = time.monotonic() - t0
        print(f"foreign fleet: seeded in {info['seed_seconds']} s, CLI ran in {cli_seconds:.1f} s")
        yield {"proc": proc, "ids": info["ids"], "regions": regions, "cli_seconds": cli_seconds,
               "report": json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else None}
    finally:
        child.stdin.close()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()


def _report(audit):
    proc = audit["proc"]
    assert audit["report"] is not None, f"no JSON on stdout (rc={proc.returncode}):\n{proc.stderr[-3000:]}"
    return audit["report"]


def _recs(audit, key):
    iid = audit["ids"][key]
    return [r for r in _report(audit)["recommendations"] if r["resource_id"] == iid]


def _gaps(audit, key):
    iid = audit["ids"][key]
    return [g for g in _report(audit)["gaps"] if g["resource_id"] == iid]


def _one(audit, key, kind):
    recs = _recs(audit, key)
    assert [r["kind"] for r in recs] == [kind], (
        f"{key}: expected one {kind!r}, got {[(r['kind'], r['summary']) for r in recs]}")
    return recs[0]


def _no_recs(audit, key):
    recs = _recs(audit, key)
    assert recs == [], f"{key}: expected no recommendation, got {[(r['kind'], r['summary']) for r in recs]}"


# --- the contract of the run itself

def test_cli_exits_zero_with_json_only_on_stdout(audit):
    proc = audit["proc"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    json.loads(proc.stdout)  # stdout is the report and nothing else


def test_report_matches_schema(audit):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(_report(audit))]
    assert errors == []


def test_summary_counts(audit):
    s = _report(audit)["summary"]
    assert s["instances"] == len(FLEET)
    assert s["gpu_instances"] == len(FLEET) - 1          # the m5.large bastion has no GPU
    assert s["gpu_instances_running"] == len(FLEET) - 2  # ... and the p3 is stopped
    assert s["recommendations"] == len(_report(audit)["recommendations"])
    assert s["gaps"] == len(_report(audit)["gaps"])
    assert s["monthly_savings_usd"] == pytest.approx(
        sum(r["monthly_savings_usd"] for r in _report(audit)["recommendations"]), abs=0.05)
    assert sorted(_report(audit)["regions"]) == audit["regions"]


# --- one test per instance

def test_a_idle_whole_window_is_stopped_at_on_demand_price(audit):
    r = _one(audit, "A", "stop")
    ev = r["evidence"]
    assert ev["idle_streak_hours"] >= 300
    assert ev["price"]["hourly_usd"] == pytest.approx(1.006, rel=0.01)      # g5.xlarge us-east-1
    assert r["monthly_savings_usd"] == pytest.approx(1.006 * PER_MONTH, rel=0.02)


def test_b_forgotten_after_training_is_stopped_since_training_ended(audit):
    r = _one(audit, "B", "stop")
    ev = r["evidence"]
    assert 200 <= ev["idle_streak_hours"] <= 220                            # idle for ~9 days
    assert r["monthly_savings_usd"] == pytest.approx(1.212 * PER_MONTH, rel=0.02)   # g5.2xlarge


def test_c_office_hours_notebook_gets_a_schedule(audit):
    r = _one(audit, "C", "schedule")
    ev = r["evidence"]
    assert 100 <= ev["off_hours_per_week"] <= 136                           # 128 nominal
    on = {(w["day"], int(w["start"][:2]), int(w["end"][:2])) for w in ev["on_windows_utc"]}
    for day in ("Mon", "Tue", "Wed", "Thu", "Fri"):                        # 09-17 UTC-8 = 17-01 UTC
        assert any(d == day and a <= 19 < b for d, a, b in on), (day, on)
    assert all(d not in ("Sun",) for d, _, _ in on), on
    assert r["monthly_savings_usd"] == pytest.approx(
        ev["off_hours_per_week"] * WEEKS_PER_MONTH * 0.8048, rel=0.02)     # g6.xlarge us-west-2


def test_d_multi_gpu_training_is_left_alone(audit):
    _no_recs(audit, "D")
    assert _gaps(audit, "D") == []


def test_e_bursty_batch_is_left_alone(audit):
    _no_recs(audit, "E")


def test_f_inference_server_is_left_alone(audit):
    _no_recs(audit, "F")


def test_g_running_gpu_instance_without_agent_is_a_gap(audit):
    _no_recs(audit, "G")
    gaps = _gaps(audit, "G")
    assert gaps, "an unmeasured running GPU instance must be listed in gaps[]"
    assert any(g["what"] == "gpu-telemetry" for g in gaps), gaps


def test_h_stopped_instance_is_left_alone(audit):
    _no_recs(audit, "H")


def test_i_four_gpu_box_with_one_busy_gpu_is_not_stopped(audit):
    assert not any(r["kind"] in ("stop", "schedule") for r in _recs(audit, "I"))


def test_j_telemetry_that_stopped_is_never_idle(audit):
    _no_recs(audit, "J")


def test_k_recent_idle_spot_box_is_stopped_at_spot_price(audit):
    r = _one(audit, "K", "stop")
    ev = r["evidence"]
    assert ev["idle_streak_hours"] >= 55
    assert ev["price"]["pricing_model"] == "spot"
    assert 0.587 * 0.25 <= ev["price"]["hourly_usd"] <= 0.587 * 0.75      # g4dn.xlarge eu-west-1
    assert r["monthly_savings_usd"] == pytest.approx(ev["price"]["hourly_usd"] * PER_MONTH, rel=0.02)


def test_m_non_gpu_instance_is_ignored(audit):
    _no_recs(audit, "M")
    assert _gaps(audit, "M") == []


def test_c4_notebook_whose_agent_gained_dimensions_keeps_its_history(audit):
    """Same office-hours notebook; the agent's append_dimensions changed 6 days ago, so CloudWatch
    holds two series per GPU. Both are this GPU's history: reading only the newer one loses the first
    week, and the weekend then looks like a forgotten box."""
    assert not any(r["kind"] == "stop" for r in _recs(audit, "C4")), \
        [(r["kind"], r["summary"], r["evidence"].get("measured_hours")) for r in _recs(audit, "C4")]
    r = _one(audit, "C4", "schedule")
    assert 100 <= r["evidence"]["off_hours_per_week"] <= 136

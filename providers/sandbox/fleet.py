"""A simulated GPU fleet with ground truth: the demo cloud's contents, and the tests' and benchmarks'.

Each ``SimInstance`` has a behaviour (forgotten box, office-hours notebook, training run, ...) that
``simulate`` turns into per-period GPU, CPU and network series on a UTC grid, deterministically
from the instance's name. ``expect`` is the verdict a correct audit reaches for it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pandas as pd

SIM_PERIOD = timedelta(minutes=5)

FORGOTTEN = "forgotten"  # trained, then left running idle
IDLE_ALL = "idle-all"  # never used in the window
OFFICE = "office-hours"  # notebook used on weekdays 09-18 UTC
TRAINING = "training"  # all GPUs busy, checkpoint dips
BURSTY = "bursty"  # batch jobs at random times
INFERENCE = "inference"  # diurnal serving load, never idle
ONE_BUSY = "one-gpu-busy"  # multi-GPU box with one busy GPU
NO_AGENT = "no-agent"  # GPU instance without the CloudWatch agent's GPU metrics
STOPPED = "stopped"
NEW = "new"  # launched less than 30 h ago
OVERSIZED = "oversized"  # small model served around the clock on a big GPU: never idle, never near its limits
LIGHT = "light"  # a dev endpoint that keeps its GPU a little busy all the time (6-18 %), small memory
BEHAVIOURS = (FORGOTTEN, IDLE_ALL, OFFICE, TRAINING, BURSTY, INFERENCE, ONE_BUSY, NO_AGENT, STOPPED, NEW, OVERSIZED,
              LIGHT)


@dataclass(frozen=True)
class SimInstance:
    name: str
    region: str
    instance_type: str
    gpus: int
    gpu_memory_mib: float
    behaviour: str
    expect: str | None = None  # "stop" | "schedule" | "rightsize" | "consolidate" | None: a correct audit's verdict
    expect_gap: bool = False  # a correct audit lists it as a gap
    spot: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    idle_days: float = 0.0  # FORGOTTEN: idle for this long before the end of the window
    age_hours: float = 0.0  # NEW: data only for this long
    level: float = 1.0  # LIGHT: utilization scale

    @property
    def running(self) -> bool:
        return self.behaviour != STOPPED

    @property
    def publishes_gpu(self) -> bool:
        return self.gpus > 0 and self.behaviour not in (NO_AGENT, STOPPED)


@dataclass(frozen=True)
class Series:
    """Simulated telemetry on ``times``: per-GPU arrays have shape (gpus, T)."""

    times: pd.DatetimeIndex
    gpu_util: np.ndarray
    gpu_mem_used: np.ndarray
    cpu: np.ndarray
    net_in: np.ndarray  # bytes per second
    net_out: np.ndarray
    present: np.ndarray  # (T,) bool: the instance existed and was running
    busy: np.ndarray  # (T,) bool ground truth: any GPU doing work


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def _weekday_hours(times: pd.DatetimeIndex, start: int = 9, end: int = 18) -> np.ndarray:
    return np.asarray((times.day_of_week < 5) & (times.hour >= start) & (times.hour < end))


def _jobs(times: pd.DatetimeIndex, rng: np.random.Generator, mean_gap_h: float, dur_h: tuple[float, float]) -> np.ndarray:
    busy = np.zeros(len(times), dtype=bool)
    step_h = (times[1] - times[0]) / pd.Timedelta(hours=1) if len(times) > 1 else 1 / 12
    t = rng.exponential(mean_gap_h)
    horizon = len(times) * step_h
    while t < horizon:
        dur = rng.uniform(*dur_h)
        busy[int(t / step_h) : int((t + dur) / step_h) + 1] = True
        t += dur + rng.exponential(mean_gap_h)
    return busy


def _busy_pattern(inst: SimInstance, times: pd.DatetimeIndex, rng: np.random.Generator) -> np.ndarray:
    """(gpus, T) bool: which GPU is working when."""
    n = len(times)
    end = times[-1] + SIM_PERIOD
    every = np.ones(n, dtype=bool)
    b = inst.behaviour
    if b == FORGOTTEN:
        row = np.asarray(times < end - pd.Timedelta(days=inst.idle_days))
    elif b in (IDLE_ALL, NEW, NO_AGENT, STOPPED):
        row = np.zeros(n, dtype=bool) if b != NO_AGENT else _weekday_hours(times)
    elif b == OFFICE:
        row = _weekday_hours(times)
    elif b == TRAINING:
        minutes = np.asarray((times - times[0]) / pd.Timedelta(minutes=1))
        row = (minutes % 120) >= 10  # a 10-minute checkpoint write every 2 hours
    elif b == BURSTY:
        row = _jobs(times, rng, mean_gap_h=5.0, dur_h=(0.5, 2.0))
    elif b in (INFERENCE, ONE_BUSY, OVERSIZED, LIGHT):
        row = every
    else:
        raise ValueError(f"unknown behaviour {b!r}")
    pattern = np.repeat(row[None, :], inst.gpus, axis=0)
    if b == ONE_BUSY:
        pattern[1:] = False
    return pattern


def simulate(inst: SimInstance, times: pd.DatetimeIndex) -> Series:
    rng = _rng(inst.name)
    n = len(times)
    busy_gpu = _busy_pattern(inst, times, rng)
    if inst.behaviour == INFERENCE:
        hours = np.asarray(times.hour + times.minute / 60)
        load = 45 + 30 * np.sin((hours - 9) / 24 * 2 * np.pi)
        util = np.clip(load[None, :] + rng.normal(0, 5, (inst.gpus, n)), 12, 100)
    elif inst.behaviour == OVERSIZED:
        hours = np.asarray(times.hour + times.minute / 60)
        util = np.clip(12 + 5 * np.sin((hours - 9) / 24 * 2 * np.pi)[None, :] + rng.normal(0, 1.5, (inst.gpus, n)), 7, 20)
    elif inst.behaviour == LIGHT:
        util = rng.uniform(6, 18, (inst.gpus, n)) * inst.level
    else:
        util = np.where(busy_gpu, rng.uniform(70, 100, (inst.gpus, n)), rng.choice([0.0, 0.0, 0.0, 1.0], (inst.gpus, n)))
    keep_memory = inst.behaviour in (OFFICE, FORGOTTEN, INFERENCE)
    idle_mem = 0.3 if keep_memory else 0.01
    mem = inst.gpu_memory_mib * np.where(busy_gpu | (inst.behaviour == INFERENCE), rng.uniform(0.6, 0.9, (inst.gpus, n)), idle_mem)
    if inst.behaviour in (OVERSIZED, LIGHT):  # a small model: a few GiB whatever the GPU
        mem = np.broadcast_to(rng.uniform(5.5, 6.5, (inst.gpus, 1)) * 1024 * (0.5 if inst.behaviour == LIGHT else 1.0),
                              (inst.gpus, n)) + rng.uniform(0, 200, (inst.gpus, n))
    any_busy = busy_gpu.any(axis=0) | (inst.behaviour == INFERENCE)
    cpu = np.where(any_busy, rng.uniform(20, 60, n), rng.uniform(0.3, 2.5, n))
    if inst.behaviour in (ONE_BUSY, OVERSIZED, LIGHT):  # one process feeding one GPU uses a few cores
        cpu = rng.uniform(2, 9, n)
    net_in = np.where(any_busy, rng.uniform(5e6, 5e7, n), rng.uniform(2e3, 2e4, n))
    net_out = np.where(any_busy, rng.uniform(1e6, 1e7, n), rng.uniform(1e3, 1e4, n))
    present = np.ones(n, dtype=bool)
    if inst.behaviour == STOPPED:
        present[:] = False
    elif inst.behaviour == NEW:
        present = np.asarray(times >= times[-1] + SIM_PERIOD - pd.Timedelta(hours=inst.age_hours))
    return Series(times, util, mem, cpu, net_in, net_out, present, any_busy & present)


def _i(name: str, region: str, itype: str, gpus: int, mem_gib: float, behaviour: str, **kw: object) -> SimInstance:
    team = {"notebook": "research", "llm": "llm", "vision": "vision"}.get(name.split("-")[0], "platform")
    tags = {"Name": name, "team": team, "owner": f"{team}@example.com", **kw.pop("tags", {})}  # type: ignore[dict-item]
    return SimInstance(name, region, itype, gpus, mem_gib * 1024, behaviour, tags=tags, **kw)  # type: ignore[arg-type]


def demo_fleet() -> list[SimInstance]:
    """The embedded demo cloud: 19 instances over five regions, each a case a user meets."""
    # Spread over five regions: moto answers GetMetricData in time proportional to the points
    # stored in the region, so a spread fleet keeps the demo fast.
    east, west, eu, fra, tokyo = "us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1"
    return [
        _i("llm-finetune-7b", east, "p4d.24xlarge", 8, 40, FORGOTTEN, idle_days=8, expect="stop",
           tags={"demo:reserved": "1"}),  # covered by a reserved instance in the demo's billing export
        _i("render-legacy", east, "g4dn.xlarge", 1, 16, NO_AGENT, expect_gap=True),
        _i("web-frontend", east, "m5.large", 0, 0, INFERENCE),
        _i("demo-day-box", west, "g5.xlarge", 1, 22.35, IDLE_ALL, spot=True, expect="stop"),
        _i("llm-pretrain-l4", west, "g6.12xlarge", 4, 22.35, TRAINING, expect="spot",
           tags={"costagent:interruptible": "true", "costagent:checkpoint-minutes": "5"}),
        _i("llm-new-experiment", west, "g6.xlarge", 1, 22.35, NEW, age_hours=20, expect_gap=True),
        _i("vision-notebook-carol", eu, "g4dn.2xlarge", 1, 16, OFFICE, expect="schedule"),
        _i("multi-gpu-dev", eu, "g5.12xlarge", 4, 22.35, ONE_BUSY, expect="rightsize"),
        _i("eval-harness", eu, "g5.12xlarge", 4, 22.35, STOPPED),
        _i("vision-forgotten-a10", fra, "g5.4xlarge", 1, 22.35, FORGOTTEN, idle_days=3, expect="stop"),
        _i("inference-api", fra, "g6e.xlarge", 1, 44.7, INFERENCE),
        _i("vision-sweep", fra, "p3.2xlarge", 1, 16, TRAINING),
        _i("notebook-alice", tokyo, "g5.2xlarge", 1, 22.35, OFFICE, expect="schedule"),
        _i("notebook-bob", tokyo, "g6.xlarge", 1, 22.35, OFFICE, expect="schedule"),
        _i("batch-embeddings", tokyo, "g5.xlarge", 1, 22.35, BURSTY, expect="spot"),  # batch jobs: inferred
        _i("llm-chat-small", west, "g6e.xlarge", 1, 44.7, OVERSIZED, expect="rightsize"),
        _i("vision-dev-t4-a", fra, "g4dn.xlarge", 1, 16, LIGHT, expect="consolidate"),
        _i("vision-dev-t4-b", fra, "g4dn.xlarge", 1, 16, LIGHT, expect="consolidate"),
        _i("vision-dev-t4-c", fra, "g4dn.xlarge", 1, 16, LIGHT, level=1.3),  # the busiest: the others move onto it
    ]


def grid(end: pd.Timestamp, lookback: timedelta, period: timedelta = SIM_PERIOD) -> pd.DatetimeIndex:
    """The simulation grid: ``lookback`` back from ``end`` (floored to the period), UTC."""
    stop = pd.Timestamp(end).tz_convert("UTC").floor(pd.Timedelta(period))
    return pd.date_range(stop - pd.Timedelta(lookback), stop, freq=pd.Timedelta(period), inclusive="left")

"""A per-minute simulated GPU fleet with ground truth: the world of the savings benchmark (``bench/savings.py``).

``simulate(n_instances, seed)`` builds a deterministic fleet of standalone AWS GPU instances plus a few
Auto Scaling groups and, for every minute of a training window followed by a test window, their true
per-GPU utilization (%) and memory used (MiB), CPU (%), network in/out (bytes/s), whether each instance
is **busy** (work a stop would interrupt) and whether its CloudWatch agent was publishing GPU metrics;
for groups, the replicas their demand needs. ``snapshot(fleet)`` turns the training window alone into
the ``Snapshot`` an audit would collect (5-minute periods, as ``agent/collect.py`` assembles it).

Modelling choices (each one stated so the benchmark's figures can be judged):

- **Time.** Minutes on a UTC grid. The training window is the ``train_days`` (14) before ``as_of``
  (Monday 2026-11-23 10:00 UTC, the project's reference "now"); the test window the ``test_days`` (14)
  after. US Thanksgiving (Thu 2026-11-26, and the Friday for half the US users) falls in the test window.
- **Fleet.** Types come from the shipped catalog; regions us-east-1 (60 %), us-west-2 (28 %),
  eu-central-1 (12 %), a type not offered in the drawn region moving to us-east-1. About 10 % of
  training boxes are spot instances (they pay the catalog's spot price). Behaviours and their share of
  the standalone instances (``MIX``):

  * ``training``: gang jobs one after another (gang of 1/2/4/8 GPUs on the box's first GPUs), each with
    a data-loading phase (GPU idle, CPU and network busy, 5-60 min), checkpoint dips (GPU near 0 for
    2-6 min every 30-120 min, network out high), evaluation passes, 15 % of jobs crash and are retried
    after 5-30 min; gaps between jobs are exponential (1-8 h mean), one in ten is 1-3 days (empty queue).
    On boxes with >= 96 vCPUs, 60 % of jobs are GPU-bound with 3-9 % CPU (a CPU-only rule misfires);
    40 % of boxes stream their data set from S3 (20-150 MB/s), the rest read local disk.
  * ``inference``: an always-on endpoint, Poisson requests per minute with a diurnal, weekday-heavy rate;
    per-minute utilization is the requests' duty cycle (zero in minutes without a request).
  * ``light-inference``: the same with 0.5-3 requests a minute at peak and 5-25 % peak utilization, a small
    model: the consolidation candidates.
  * ``notebook``: office hours of one user (time zone drawn: US East, US West, Europe, Asia), 6-10 h
    weekday sessions with jitter, a lunch break, occasional late or weekend sessions, 5 % of days missed,
    15 % of users on a 3-8 workday vacation, US holidays; inside a session the GPU alternates between
    cells running (mean 12 min) and thinking (mean 15 min). Half the users leave the kernel (and its GPU
    memory) alive overnight.
  * ``forgotten``: a training box or notebook whose use stops at a uniformly drawn minute of the training
    window (20 %: before it) and never resumes; half keep a process holding GPU memory.
  * ``oversized``: a small model served around the clock on a big GPU (H100, L40S, V100) or on a big
    host (g5/g6 8x-16xlarge): the right-sizing candidates.
  * ``one-gpu-busy``: a 4- or 8-GPU box where one GPU serves or trains and the others never work.
  * ``batch``: Poisson batch jobs (20-180 min, 2-10 h apart on average).
  * ``nightly-batch``: a daily job at a fixed UTC hour (40-150 min; half on weekdays only).
  * group members (``group-member``): an ASG's demand (replicas, diurnal) spread evenly over its
    fixed ``desired`` members, each loaded to 85 % x demand / desired. Groups: one sized at its peak
    plus 25 %, one overprovisioned about 2.5x, one serving office hours only (zero demand at night and
    at weekends), one European diurnal one; the warm-up (cold start) of a new member is 10 minutes.
- **Busy** means a stop at that minute would interrupt work: a training job for its whole life
  (loading, checkpoint dips and crash-retry gaps included), a user's session (thinking and lunch
  included), a batch job, a minute in which an endpoint served a request, a group serving demand.
- **Idle telemetry.** An idle GPU reads 0 % (3 % of minutes 1-2 %: monitoring probes) and holds no memory
  unless a process keeps it; CPU 0.3-2 %; network is the agents' chatter, a per-instance lognormal rate
  of about 70 B/s in and 45 B/s out (so Trusted Advisor's 5 MB/day test passes for some idle
  instances and not others, as it does in practice).
- **Restart cost** (``Machine.restart_min``): 10 minutes from a start until work runs again (boot,
  driver, container, model or notebook state); 30 minutes for training boxes (re-staging the data set on
  local NVMe, collective init, checkpoint reload). Capacity risk (not getting a p4d/p5 back) is not modelled.
  **Work lost by a stop that hits a busy instance** (``Machine.lost_work_min``): 30 minutes (since the last
  checkpoint or save, or a notebook's state) for jobs and sessions; 0 for serving (the outage is the loss).
- **Missing telemetry.** 10 % of instances lose the CloudWatch agent for 1-3 stretches of 2-30 h (GPU
  series absent; EC2's CPU and network stay); one notebook never had the agent. Truth is unaffected.
- **Calibration.** The mix is set so that, like the Alibaba GenAI pod GPU duty-cycle trace (157,417
  one-minute samples of 143 pods: 66.85 % of samples at 0, mean 7.03 %, median pod mean 5.78 %, 28 pods
  with a mean under 5 %), about two thirds of the fleet's GPU-minutes read 0 and the median instance
  is near idle; ``realism`` reports the figures reached. Training boxes make the fleet's mean
  utilization higher than the trace's (the trace is a serving cluster).

The snapshot reads what the CloudWatch agent and EC2 would publish: GPU utilization as the maximum over
each 5-minute period, GPU memory used as the hourly peak, memory total once a day, CPU as the period's
mean, network as the period's mean rate; prices, region offerings and type specs from the shipped
catalog, as the collect stage does. Everything derives from ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd

from providers.catalog import PriceCatalog
from providers.model import (
    INSTANCE_LEVEL,
    Accelerators,
    Cloud,
    Gap,
    Group,
    InstanceTypeSpec,
    Metric,
    PricingModel,
    Resource,
    ResourceRef,
    ResourceState,
    Snapshot,
    Usage,
    Window,
    price_key,
)

ACCOUNT = "111122223333"
#: The end of the training window: a Monday 10:00 UTC, as in the project's other benchmarks and tests.
AS_OF = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
PERIOD = timedelta(minutes=5)
MEMORY_PERIOD = timedelta(hours=1)
#: Minutes a new group member needs before it serves (boot, container pull, model load).
GROUP_WARMUP_MIN = 10
#: Restart cost: minutes from starting a stopped instance until its work runs again. Boot, driver and
#: container start plus loading a model or a notebook's state: 10 min; a training box also re-stages its
#: data set onto local NVMe, re-initializes the collective and reloads the last checkpoint: 30 min.
RESTART_MIN = 10
TRAINING_RESTART_MIN = 30
#: Work a stop destroys when it interrupts a job or a session: half an hourly checkpoint or save.
LOST_WORK_MIN = 30

TRAINING = "training"
INFERENCE = "inference"
LIGHT = "light-inference"
NOTEBOOK = "notebook"
FORGOTTEN = "forgotten"
OVERSIZED = "oversized"
ONE_BUSY = "one-gpu-busy"
BATCH = "batch"
NIGHTLY = "nightly-batch"
MEMBER = "group-member"
#: Behaviours whose work is serving requests (a stop loses no work beyond the outage).
SERVING = (INFERENCE, "light-inference", "oversized", MEMBER)

#: Share of the standalone instances per behaviour.
MIX = {
    TRAINING: 0.15, INFERENCE: 0.08, LIGHT: 0.07, NOTEBOOK: 0.25, FORGOTTEN: 0.11,
    OVERSIZED: 0.06, ONE_BUSY: 0.07, BATCH: 0.13, NIGHTLY: 0.08,
}
REGIONS = ("us-east-1", "us-west-2", "eu-central-1")
REGION_P = (0.60, 0.28, 0.12)
#: Candidate types per behaviour (drawn uniformly).
TYPES = {
    TRAINING: ("p4d.24xlarge", "p4de.24xlarge", "p5.48xlarge", "g5.48xlarge", "g6e.48xlarge", "p3.16xlarge",
               "g5.12xlarge", "g6.12xlarge", "g6e.12xlarge", "p3.8xlarge", "g4dn.12xlarge",
               "g5.2xlarge", "g6e.xlarge", "p3.2xlarge"),
    INFERENCE: ("g5.xlarge", "g5.2xlarge", "g6.xlarge", "g6.2xlarge", "g6e.xlarge", "g4dn.xlarge", "g5.12xlarge"),
    LIGHT: ("g4dn.xlarge", "g5.xlarge", "g6.xlarge", "g5.xlarge", "g6.xlarge"),
    NOTEBOOK: ("g4dn.xlarge", "g4dn.2xlarge", "g5.xlarge", "g5.2xlarge", "g6.xlarge", "g6.2xlarge", "g6e.xlarge",
               "p3.2xlarge"),
    OVERSIZED: ("p5.4xlarge", "g6e.xlarge", "g6e.2xlarge", "p3.2xlarge", "g5.8xlarge", "g5.16xlarge", "g6.8xlarge",
                "g6.16xlarge", "g6e.4xlarge"),
    ONE_BUSY: ("g5.12xlarge", "g6.12xlarge", "g4dn.12xlarge", "g5.48xlarge", "g6e.12xlarge", "p3.8xlarge"),
    BATCH: ("g5.xlarge", "g5.2xlarge", "g6.2xlarge", "g4dn.2xlarge", "g5.12xlarge", "g6e.xlarge"),
    NIGHTLY: ("g5.2xlarge", "g6.xlarge", "g4dn.xlarge", "g6e.xlarge", "g5.12xlarge"),
}
#: Notebook users' session start (UTC hours, range) per time zone, and the zones' weights.
ZONES = {"us-east": (13.0, 15.0), "us-west": (16.0, 18.0), "europe": (7.0, 9.5), "asia": (0.0, 2.0)}
ZONE_P = (0.50, 0.20, 0.25, 0.05)
US_HOLIDAYS = (date(2026, 11, 26),)  # Thanksgiving; the Friday after is off for half the US users
US_BRIDGE = date(2026, 11, 27)


@dataclass(frozen=True)
class Machine:
    """One simulated instance: what the inventory shows plus its behaviour (the ground truth)."""

    index: int
    id: str
    name: str
    region: str
    instance_type: str
    gpu_model: str
    gpus: int
    gpu_memory_mib: float
    vcpu: int
    memory_gib: float
    behaviour: str
    pricing: PricingModel
    hourly_usd: float
    first_gpu: int  # row of its GPU 0 in the per-GPU arrays
    group: str | None = None
    variant: str = ""  # forgotten: what it was used as (training or notebook); one-gpu-busy: serving or experiment
    #: Minutes from a start until work runs again (boot, driver, container, model or data): the restart cost.
    restart_min: int = 10
    #: Minutes of work a stop destroys when it hits the instance busy (since the last checkpoint, save or
    #: notebook state); 0 for serving, where the outage (``restart_min``) is the whole loss.
    lost_work_min: int = 30
    agent: bool = True  # publishes GPU metrics at all
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> ResourceRef:
        return ResourceRef(Cloud.AWS, ACCOUNT, self.region, self.id)

    @property
    def key(self) -> str:
        return self.ref.key


@dataclass(frozen=True)
class SimGroup:
    """An Auto Scaling group with a fixed ``desired`` and a per-minute demand (``SimFleet.demand``)."""

    index: int
    name: str
    region: str
    instance_type: str
    gpus_per_member: int
    members: tuple[int, ...]  # machine indices
    desired: int
    min_size: int
    max_size: int
    warmup_min: int
    hourly_usd: float
    pattern: str

    @property
    def ref(self) -> ResourceRef:
        return ResourceRef(Cloud.AWS, ACCOUNT, self.region, self.name)


@dataclass(frozen=True)
class SimFleet:
    """The fleet and its per-minute ground truth over ``[start, start + minutes)``; test starts at ``train_minutes``."""

    seed: int
    machines: tuple[Machine, ...]
    groups: tuple[SimGroup, ...]
    start: datetime
    as_of: datetime
    train_minutes: int
    test_minutes: int
    gpu_owner: np.ndarray  # (G,) machine index of each GPU row
    gpu_util: np.ndarray  # (G, T) float32 %
    gpu_mem: np.ndarray  # (G, T) float32 MiB used
    cpu: np.ndarray  # (N, T) float32 %
    net_in: np.ndarray  # (N, T) float32 bytes/s
    net_out: np.ndarray  # (N, T) float32 bytes/s
    busy: np.ndarray  # (N, T) bool: a stop would interrupt work
    agent_up: np.ndarray  # (N, T) bool: GPU metrics were published
    demand: np.ndarray  # (K, T) float32 replicas the group's demand needs (fractional)

    @property
    def minutes(self) -> int:
        return self.train_minutes + self.test_minutes

    @property
    def window(self) -> Window:
        """The training window: what the recommenders see."""
        return Window(self.as_of - timedelta(minutes=self.train_minutes), self.as_of)

    def minute_index(self) -> pd.DatetimeIndex:
        return pd.date_range(self.start, periods=self.minutes, freq="min")


# --------------------------------------------------------------------------- building blocks


def _intervals(n: int, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """(n,) bool: True inside any ``[start, end)`` (clipped to the grid)."""
    starts = np.clip(np.asarray(starts, dtype=np.int64), 0, n)
    ends = np.clip(np.asarray(ends, dtype=np.int64), 0, n)
    keep = ends > starts
    d = np.zeros(n + 1, dtype=np.int32)
    np.add.at(d, starts[keep], 1)
    np.add.at(d, ends[keep], -1)
    return np.cumsum(d[:-1]) > 0


def _alternating(rng: np.random.Generator, n: int, mean_on: float, mean_off: float) -> np.ndarray:
    """(n,) bool alternating renewal process (exponential on and off minutes), random phase."""
    pairs = int(2 * n / (mean_on + mean_off)) + 16
    on = np.maximum(1, rng.exponential(mean_on, pairs)).astype(np.int64)
    off = np.maximum(1, rng.exponential(mean_off, pairs)).astype(np.int64)
    starts = rng.integers(0, int(mean_off) + 1) + np.concatenate([[0], np.cumsum(on + off)[:-1]])
    while starts[-1] < n:  # extend (rarely needed)
        more_on = np.maximum(1, rng.exponential(mean_on, pairs)).astype(np.int64)
        more_off = np.maximum(1, rng.exponential(mean_off, pairs)).astype(np.int64)
        more = starts[-1] + on[-1] + off[-1] + np.concatenate([[0], np.cumsum(more_on + more_off)[:-1]])
        starts, on, off = np.concatenate([starts, more]), np.concatenate([on, more_on]), np.concatenate([off, more_off])
    return _intervals(n, starts, starts + on)


@dataclass
class _Clock:
    """Calendar features of the minute grid."""

    n: int
    start: pd.Timestamp
    minute_of_day: np.ndarray
    dow: np.ndarray  # 0 = Monday
    day0_offset: int  # minutes from the first midnight at or before ``start`` to ``start``
    n_days: int
    dates: list[date]  # calendar date of each day index
    train: int  # minutes of the training window (the grid's first part)

    @classmethod
    def of(cls, start: pd.Timestamp, n: int, train: int) -> _Clock:
        idx = pd.date_range(start, periods=n, freq="min")
        midnight = start.floor("D")
        offset = int((start - midnight) / pd.Timedelta(minutes=1))
        n_days = (offset + n) // 1440 + 2
        dates = [(midnight + pd.Timedelta(days=d)).date() for d in range(n_days)]
        return cls(n, start, np.asarray(idx.hour * 60 + idx.minute, dtype=np.int32),
                   np.asarray(idx.day_of_week, dtype=np.int8), offset, n_days, dates, train)

    def day_start(self, d: np.ndarray | int) -> np.ndarray:
        """Grid minute of midnight of day index ``d`` (may be negative)."""
        return np.asarray(d) * 1440 - self.day0_offset


@dataclass
class _Work:
    """One machine's per-minute truth, filled by a behaviour."""

    util: np.ndarray  # (g, T)
    mem: np.ndarray  # (g, T)
    cpu: np.ndarray
    net_in: np.ndarray
    net_out: np.ndarray
    busy: np.ndarray


def _idle_work(rng: np.random.Generator, gpus: int, n: int) -> _Work:
    """An instance doing nothing: 0 % GPU (probes now and then), no memory, agent chatter on the network."""
    util = np.where(rng.random((gpus, n)) < 0.03, rng.uniform(1, 2, (gpus, n)), 0.0).astype(np.float32)
    mem = np.zeros((gpus, n), dtype=np.float32)
    cpu = rng.uniform(0.3, 2.0, n).astype(np.float32)
    base_in = float(np.exp(rng.normal(np.log(70), 0.6)))
    base_out = float(np.exp(rng.normal(np.log(45), 0.6)))
    net_in = (base_in * rng.uniform(0.5, 1.5, n)).astype(np.float32)
    net_out = (base_out * rng.uniform(0.5, 1.5, n)).astype(np.float32)
    return _Work(util, mem, cpu, net_in, net_out, np.zeros(n, dtype=bool))


def _gang_size(rng: np.random.Generator, gpus: int) -> int:
    if gpus >= 8:
        return int(rng.choice([8, 4, 2, 1], p=[0.6, 0.25, 0.1, 0.05]))
    if gpus >= 4:
        return int(rng.choice([4, 2, 1], p=[0.6, 0.3, 0.1]))
    return gpus


def _training(rng: np.random.Generator, m: Machine, clock: _Clock) -> _Work:
    n = clock.n
    w = _idle_work(rng, m.gpus, n)
    big_host = m.vcpu >= 96
    streams = rng.random() < 0.4
    ckpt_every = rng.uniform(30, 120)
    gap_mean = rng.uniform(60, 480)
    t = -rng.uniform(0, 24 * 60)  # a job may be running when the grid starts
    while t < n:
        dur = float(np.clip(np.exp(rng.normal(np.log(8 * 60), 0.9)), 30, 5 * 1440))
        s, e = int(max(t, 0)), int(min(t + dur, n))
        if e > s:
            _job(rng, m, w, s, e, int(t), _gang_size(rng, m.gpus), big_host, streams, ckpt_every)
        gap = rng.uniform(1440, 3 * 1440) if rng.random() < 0.1 else rng.exponential(gap_mean)
        t += dur + max(gap, 5)
    return w


def _job(rng: np.random.Generator, m: Machine, w: _Work, s: int, e: int, t0: int, gang: int, big_host: bool,
         streams: bool, ckpt_every: float) -> None:
    """One training job on GPUs ``0..gang-1`` over ``[s, e)`` (it started at ``t0``, maybe before the grid)."""
    n = e - s
    rel = np.arange(s, e) - t0  # minutes since the job started
    load = int(rng.uniform(5, 60))
    loading = rel < load
    ckpt_len = rng.uniform(2, 6)
    phase = (rel - load) % ckpt_every
    dip = ~loading & (rel >= load + ckpt_every - 1) & (phase < ckpt_len)
    eval_every, eval_len = rng.uniform(180, 360), rng.uniform(10, 20)
    evaluating = ~loading & ~dip & (((rel - load) % eval_every) > eval_every - eval_len)
    crashed = np.zeros(n, dtype=bool)
    if rng.random() < 0.15:  # the job crashes once and is retried (reloading data) after 5-30 min
        at = int(rng.uniform(load, max(load + 1, e - t0)))
        down = int(rng.uniform(5, 30))
        crashed = (rel >= at) & (rel < at + down)
        loading |= (rel >= at + down) & (rel < at + down + int(rng.uniform(3, 10)))
    level = rng.uniform(80, 97)
    util = np.clip(rng.normal(level, 3, (gang, n)), 0, 100)
    util = np.where(evaluating, rng.uniform(25, 60, (gang, n)), util)
    util = np.where(loading | dip | crashed, rng.uniform(0, 2, (gang, n)), util)
    mem_frac = rng.uniform(0.6, 0.95)
    mem = m.gpu_memory_mib * np.where(loading, rng.uniform(0.03, 0.1), mem_frac + rng.normal(0, 0.01, (gang, n)))
    mem = np.where(crashed, 0.0, np.clip(mem, 0, m.gpu_memory_mib))
    w.util[:gang, s:e] = util
    w.mem[:gang, s:e] = mem
    gpu_bound = big_host and rng.random() < 0.6
    cpu = rng.uniform(3, 9, n) if gpu_bound else rng.uniform(15, 45, n)
    cpu = np.where(loading, rng.uniform(40, 90, n), cpu)
    cpu = np.where(dip, rng.uniform(10, 25, n), cpu)
    w.cpu[s:e] = np.where(crashed, rng.uniform(0.5, 3, n), cpu)
    net_in = rng.uniform(20e6, 150e6, n) if streams else rng.uniform(5e4, 8e5, n)
    w.net_in[s:e] = np.where(loading, rng.uniform(50e6, 300e6, n), np.where(crashed, 1e3, net_in))
    w.net_out[s:e] = np.where(dip, rng.uniform(100e6, 500e6, n), rng.uniform(2e4, 3e5, n))
    w.busy[s:e] = True


def _notebook(rng: np.random.Generator, m: Machine, clock: _Clock) -> _Work:
    n = clock.n
    w = _idle_work(rng, m.gpus, n)
    zone = str(rng.choice(list(ZONES), p=ZONE_P))
    start_h = rng.uniform(*ZONES[zone])
    length_h = rng.uniform(6, 10)
    days = np.arange(clock.n_days)
    dates = clock.dates
    weekday = np.array([d.weekday() < 5 for d in dates])
    off = np.zeros(clock.n_days, dtype=bool)
    if zone.startswith("us"):
        off |= np.array([d in US_HOLIDAYS for d in dates])
        if rng.random() < 0.5:
            off |= np.array([d == US_BRIDGE for d in dates])
    if rng.random() < 0.15:  # a vacation of 3-8 workdays
        workdays = np.flatnonzero(weekday)
        first = int(rng.integers(0, len(workdays)))
        off[workdays[first : first + int(rng.integers(3, 9))]] = True
    off |= rng.random(clock.n_days) < 0.05  # sick, travel, all-day meetings
    works = weekday & ~off
    begin = clock.day_start(days) + ((start_h + rng.normal(0, 0.5, clock.n_days)) * 60).astype(np.int64)
    length = (np.clip(length_h + rng.normal(0, 1.0, clock.n_days), 3, 12) * 60).astype(np.int64)
    starts, ends = [begin[works]], [(begin + length)[works]]
    late = works & (rng.random(clock.n_days) < 0.08)  # back in the evening
    late_start = begin + length + (rng.uniform(2, 3, clock.n_days) * 60).astype(np.int64)
    starts.append(late_start[late])
    ends.append((late_start + (rng.uniform(1.5, 3, clock.n_days) * 60).astype(np.int64))[late])
    weekend = ~weekday & (rng.random(clock.n_days) < 0.04)
    wk_start = clock.day_start(days) + ((start_h + rng.uniform(0, 3, clock.n_days)) * 60).astype(np.int64)
    starts.append(wk_start[weekend])
    ends.append((wk_start + (rng.uniform(2, 4, clock.n_days) * 60).astype(np.int64))[weekend])
    session = _intervals(n, np.concatenate(starts), np.concatenate(ends))
    lunch_at = begin + (length * rng.uniform(0.35, 0.55, clock.n_days)).astype(np.int64)
    lunch = _intervals(n, lunch_at[works], (lunch_at + rng.uniform(45, 90, clock.n_days).astype(np.int64))[works])
    running = session & ~lunch & _alternating(rng, n, 10, 20)
    w.util[0] = np.where(running, rng.uniform(20, 90, n), w.util[0])
    mem_frac = rng.uniform(0.3, 0.8)
    if rng.random() < 0.5:  # the kernel stays alive overnight, holding its memory
        first = int(np.argmax(session)) if session.any() else n
        alive = np.arange(n) >= first
    else:
        alive = session
    w.mem[0] = np.where(alive, m.gpu_memory_mib * (mem_frac + rng.normal(0, 0.02, n)), 0.0)
    w.cpu[:] = np.where(session, rng.uniform(2, 8, n) + 15 * running, w.cpu)
    w.net_in[:] = np.where(session, rng.uniform(5e3, 5e4, n) + running * rng.uniform(0, 2e6, n), w.net_in)
    w.net_out[:] = np.where(session, rng.uniform(5e3, 3e4, n), w.net_out)
    w.busy[:] = session
    return w


def _profile(clock: _Clock, peak_hour: float, floor: float, weekend: float) -> np.ndarray:
    """A diurnal demand profile in (0, 1]: ``floor`` at night, 1 at ``peak_hour`` UTC, lower at weekends."""
    h = clock.minute_of_day / 60.0
    p = floor + (1 - floor) * ((1 + np.cos(2 * np.pi * (h - peak_hour) / 24)) / 2) ** 1.5
    return p * np.where(clock.dow >= 5, weekend, 1.0)


def _serving(rng: np.random.Generator, m: Machine, clock: _Clock, w: _Work, gpus: range, req_peak: float,
             util_peak: float, mem_frac: float, floor: float) -> None:
    """Requests per minute (Poisson, diurnal) on each GPU in ``gpus``; utilization is their duty cycle."""
    n = clock.n
    prof = _profile(clock, rng.choice([14.0, 18.0, 12.0]) + rng.normal(0, 1), floor, rng.uniform(0.5, 0.85))
    per_req = util_peak / req_peak
    any_req = np.zeros(n, dtype=bool)
    total = np.zeros(n)
    for g in gpus:
        reqs = rng.poisson(req_peak * prof)
        w.util[g] = np.minimum(100, reqs * per_req * rng.uniform(0.8, 1.2, n))
        w.mem[g] = m.gpu_memory_mib * np.clip(mem_frac + 0.08 * prof * util_peak / 100 + rng.normal(0, 0.005, n), 0, 1)
        any_req |= reqs > 0
        total += reqs
    load = total / max(1, len(gpus)) / req_peak
    w.cpu[:] = np.clip(1.5 + 12 * load * rng.uniform(0.8, 1.2, n), 0, 100)
    w.net_in[:] += total * rng.uniform(5e3, 5e4) / 60
    w.net_out[:] += total * rng.uniform(2e4, 5e5) / 60
    w.busy[:] = any_req


def _behave(rng: np.random.Generator, m: Machine, clock: _Clock) -> _Work:
    n, b = clock.n, m.behaviour
    if b == TRAINING:
        return _training(rng, m, clock)
    if b == NOTEBOOK:
        return _notebook(rng, m, clock)
    if b == FORGOTTEN:  # used as a training box or a notebook until ``cut``, then never again
        w = _training(rng, m, clock) if m.variant == TRAINING else _notebook(rng, m, clock)
        cut = 0 if rng.random() < 0.2 else int(rng.integers(0, clock.train))
        rest = _idle_work(rng, m.gpus, n - cut)
        w.util[:, cut:], w.cpu[cut:], w.net_in[cut:], w.net_out[cut:] = rest.util, rest.cpu, rest.net_in, rest.net_out
        w.mem[:, cut:] = 0.0
        if rng.random() < 0.5:  # a kernel or server left running keeps its memory on GPU 0
            w.mem[0, cut:] = m.gpu_memory_mib * rng.uniform(0.2, 0.6)
        w.busy[cut:] = False
        return w
    w = _idle_work(rng, m.gpus, n)
    if b == INFERENCE:
        _serving(rng, m, clock, w, range(m.gpus), rng.uniform(8, 40), rng.uniform(50, 90), rng.uniform(0.35, 0.85),
                 rng.uniform(0.03, 0.15))
    elif b == LIGHT:
        _serving(rng, m, clock, w, range(m.gpus), rng.uniform(0.5, 3), rng.uniform(5, 25), rng.uniform(0.1, 0.3),
                 rng.uniform(0.05, 0.2))
    elif b == OVERSIZED:
        small_gpu = 18_000 / m.gpu_memory_mib  # a 7B-class model: ~8-14 GiB whatever the GPU
        _serving(rng, m, clock, w, range(1), rng.uniform(10, 40), rng.uniform(8, 25),
                 min(0.6, small_gpu * rng.uniform(0.45, 0.75)), rng.uniform(0.05, 0.2))
        if m.gpu_model in ("A10G", "L4"):  # a big host around a small GPU: the GPU is the busy part
            w.util[0] = np.minimum(100, w.util[0] * 2.5)
    elif b == ONE_BUSY:
        if m.variant == "serving":
            _serving(rng, m, clock, w, range(1), rng.uniform(10, 40), rng.uniform(40, 85), rng.uniform(0.4, 0.8),
                     rng.uniform(0.1, 0.3))
        else:  # one single-GPU experiment after another
            w.util[0] = np.clip(rng.normal(rng.uniform(70, 95), 4, n), 0, 100)
            w.mem[0] = m.gpu_memory_mib * rng.uniform(0.5, 0.9)
            w.cpu[:] = rng.uniform(2, 6, n)
            w.net_in[:] = rng.uniform(5e4, 5e5, n)
            w.busy[:] = True
    elif b in (BATCH, NIGHTLY):
        if b == BATCH:
            gaps = rng.uniform(180, 900)
            k = int(n / gaps) * 2 + 8
            starts = np.cumsum(rng.exponential(gaps, k) + rng.uniform(20, 180, k)) - rng.uniform(0, gaps)
            ends = starts + rng.uniform(20, 180, k)
        else:
            days = np.arange(clock.n_days)
            at = rng.uniform(0, 24) * 60
            run = np.ones(clock.n_days, dtype=bool)
            if rng.random() < 0.5:
                run = np.array([d.weekday() < 5 for d in clock.dates])
            starts = (clock.day_start(days) + at + rng.uniform(0, 10, clock.n_days))[run]
            ends = starts + rng.uniform(40, 150, run.sum())
        job = _intervals(n, starts.astype(np.int64), ends.astype(np.int64))
        gang = m.gpus if rng.random() < 0.7 else 1
        w.util[:gang] = np.where(job, np.clip(rng.normal(rng.uniform(60, 95), 8, (gang, n)), 0, 100), w.util[:gang])
        w.mem[:gang] = np.where(job, m.gpu_memory_mib * rng.uniform(0.4, 0.9), 0.0)
        w.cpu[:] = np.where(job, rng.uniform(20, 60, n), w.cpu)
        w.net_in[:] = np.where(job, rng.uniform(5e6, 8e7, n), w.net_in)
        w.net_out[:] = np.where(job, rng.uniform(1e5, 5e6, n), w.net_out)
        w.busy[:] = job
    else:
        raise ValueError(f"unknown behaviour {b!r}")
    return w


# --------------------------------------------------------------------------- groups

#: (name, region, type, pattern, peak replicas, desired members)
GROUPS = (
    ("chat-inference", "us-east-1", "g5.2xlarge", "diurnal-us", 8.0, 10),
    ("embeddings", "us-west-2", "g6.xlarge", "diurnal-us", 3.0, 8),
    ("internal-tools", "us-east-1", "g4dn.xlarge", "office-hours", 3.0, 4),
    ("vision-api", "eu-central-1", "g6e.xlarge", "diurnal-eu", 5.0, 6),
)


def _demand(rng: np.random.Generator, clock: _Clock, pattern: str, peak: float) -> np.ndarray:
    n = clock.n
    if pattern == "office-hours":
        on = (clock.dow < 5) & (clock.minute_of_day >= 13 * 60) & (clock.minute_of_day < 23 * 60)
        shape = _profile(clock, 18.0, 0.3, 1.0) * on
    else:
        shape = _profile(clock, 18.0 if pattern == "diurnal-us" else 12.0, 0.15, 0.6)
    # hour-long correlated multiplicative noise plus minute jitter
    drift = np.convolve(rng.normal(0, 0.02, n), np.ones(60) / 60 ** 0.5, mode="same")
    return (peak * shape * np.exp(np.clip(drift, -0.3, 0.3)) * rng.uniform(0.95, 1.05, n)).astype(np.float32)


def _member_work(rng: np.random.Generator, m: Machine, demand: np.ndarray, desired: int, n: int) -> _Work:
    w = _idle_work(rng, m.gpus, n)
    share = demand / desired
    w.util[0] = np.where(share > 0, np.minimum(100, 85 * share * rng.uniform(0.85, 1.15, n)), w.util[0])
    w.mem[0] = m.gpu_memory_mib * rng.uniform(0.5, 0.7)
    w.cpu[:] = np.where(share > 0, 2 + 15 * share, w.cpu)
    w.net_in[:] += share * rng.uniform(2e5, 2e6)
    w.net_out[:] += share * rng.uniform(1e6, 1e7)
    w.busy[:] = share > 0
    return w


# --------------------------------------------------------------------------- the fleet


def _counts(n: int) -> dict[str, int]:
    raw = {b: n * p for b, p in MIX.items()}
    counts = {b: int(v) for b, v in raw.items()}
    for b in sorted(raw, key=lambda b: raw[b] - counts[b], reverse=True)[: n - sum(counts.values())]:
        counts[b] += 1
    return counts


def _type_facts(catalog: PriceCatalog) -> dict[str, tuple[str, int, float, int, float]]:
    """instance type -> (GPU model, GPUs, GPU memory MiB, vCPUs, host memory GiB)."""
    return {e.instance_type: (e.gpu_model, e.gpu_count, e.gpu_memory_gib * 1024, e.vcpu, e.memory_gib)
            for e in catalog.entries(Cloud.AWS)}


def _price(catalog: PriceCatalog, region: str, itype: str, pricing: PricingModel) -> float:
    quotes = {q.pricing_model: q for q in catalog.quotes(Cloud.AWS, region, itype)}
    quote = quotes.get(pricing) or quotes[PricingModel.ON_DEMAND]
    return float(quote.hourly_usd)


def simulate(n_instances: int = 300, seed: int = 0, train_days: int = 14, test_days: int = 14,
             as_of: datetime = AS_OF, groups: bool = True) -> SimFleet:
    """Simulate ``n_instances`` standalone GPU instances (and, with ``groups``, four ASGs) minute by minute."""
    rng = np.random.default_rng(seed)
    catalog = PriceCatalog.shipped(Cloud.AWS)
    facts = _type_facts(catalog)
    offered = {r: {e.instance_type for e in catalog.offered(Cloud.AWS, r)} for r in REGIONS}
    train, test = train_days * 1440, test_days * 1440
    n = train + test
    start = pd.Timestamp(as_of) - pd.Timedelta(minutes=train)
    clock = _Clock.of(start, n, train)

    plan: list[tuple[str, str, str, PricingModel, str | None, str]] = []  # behaviour, region, type, pricing, group, variant
    for behaviour, count in _counts(n_instances).items():
        for _ in range(count):
            variant = str(rng.choice([TRAINING, NOTEBOOK])) if behaviour == FORGOTTEN else \
                str(rng.choice(["serving", "experiment"])) if behaviour == ONE_BUSY else ""
            itype = str(rng.choice(TYPES[variant if behaviour == FORGOTTEN else behaviour]))
            region = str(rng.choice(REGIONS, p=REGION_P))
            if itype not in offered[region]:
                region = "us-east-1"
            spot = behaviour == TRAINING and rng.random() < 0.1 and itype != "p5.4xlarge"
            plan.append((behaviour, region, itype, PricingModel.SPOT if spot else PricingModel.ON_DEMAND, None, variant))
    order = rng.permutation(len(plan))
    plan = [plan[i] for i in order]
    no_agent = next((i for i, p in enumerate(plan) if p[0] == NOTEBOOK), None)
    if groups:
        for name, region, itype, _, _, desired in GROUPS:
            plan += [(MEMBER, region, itype, PricingModel.ON_DEMAND, name, "")] * desired

    machines: list[Machine] = []
    gpu_row = 0
    counters: dict[str, int] = {}
    for i, (behaviour, region, itype, pricing, group, variant) in enumerate(plan):
        model, gpus, mem_mib, vcpu, host_gib = facts[itype]
        label = group or behaviour
        counters[label] = counters.get(label, 0) + 1
        name = f"{label}-{counters[label]:03d}"
        tags = {"Name": name, "team": str(rng.choice(["llm", "vision", "speech", "research", "platform"]))}
        if group:
            tags["aws:autoscaling:groupName"] = group
        machines.append(Machine(i, f"i-{rng.integers(0, 16 ** 12):012x}{i:05x}", name, region, itype, model, gpus,
                                mem_mib, vcpu, host_gib, behaviour, pricing, _price(catalog, region, itype, pricing),
                                gpu_row, group, variant,
                                TRAINING_RESTART_MIN if TRAINING in (behaviour, variant) else RESTART_MIN,
                                0 if behaviour in SERVING or variant == "serving" else LOST_WORK_MIN,
                                agent=i != no_agent, tags=tags))
        gpu_row += gpus

    n_gpus, n_inst = gpu_row, len(machines)
    gpu_owner = np.repeat(np.arange(n_inst), [m.gpus for m in machines])
    gpu_util = np.zeros((n_gpus, n), dtype=np.float32)
    gpu_mem = np.zeros((n_gpus, n), dtype=np.float32)
    cpu = np.zeros((n_inst, n), dtype=np.float32)
    net_in = np.zeros((n_inst, n), dtype=np.float32)
    net_out = np.zeros((n_inst, n), dtype=np.float32)
    busy = np.zeros((n_inst, n), dtype=bool)
    agent_up = np.ones((n_inst, n), dtype=bool)

    sim_groups: list[SimGroup] = []
    demand = np.zeros((len(GROUPS) if groups else 0, n), dtype=np.float32)
    children = np.random.SeedSequence(seed).spawn(n_inst + len(GROUPS) + 1)
    if groups:
        for k, (name, region, itype, pattern, peak, desired) in enumerate(GROUPS):
            demand[k] = _demand(np.random.default_rng(children[n_inst + k]), clock, pattern, peak)
            members = tuple(m.index for m in machines if m.group == name)
            price = _price(catalog, region, itype, PricingModel.ON_DEMAND)
            sim_groups.append(SimGroup(k, name, region, itype, facts[itype][1], members, desired, desired, desired,
                                       GROUP_WARMUP_MIN, price, pattern))
    group_of = {g.name: g for g in sim_groups}

    for m in machines:
        r = np.random.default_rng(children[m.index])
        if m.group:
            g = group_of[m.group]
            w = _member_work(r, m, demand[g.index], g.desired, n)
        else:
            w = _behave(r, m, clock)
        rows = slice(m.first_gpu, m.first_gpu + m.gpus)
        gpu_util[rows], gpu_mem[rows] = w.util, w.mem
        cpu[m.index], net_in[m.index], net_out[m.index], busy[m.index] = w.cpu, w.net_in, w.net_out, w.busy
        if not m.agent:
            agent_up[m.index] = False
        elif r.random() < 0.10:  # the agent is down for a while, 1-3 times
            k = int(r.integers(1, 4))
            s = r.integers(0, n, k)
            agent_up[m.index] = ~_intervals(n, s, s + (r.uniform(2, 30, k) * 60).astype(np.int64))

    return SimFleet(seed, tuple(machines), tuple(sim_groups), start.to_pydatetime(), as_of, train, test, gpu_owner,
                    gpu_util, gpu_mem, cpu, net_in, net_out, busy, agent_up, demand)


# --------------------------------------------------------------------------- what an audit would collect


def _period_reduce(values: np.ndarray, up: np.ndarray, width: int, how: str) -> tuple[np.ndarray, np.ndarray]:
    """Reduce (rows, T) minutes to (rows, T // width) periods over the minutes where ``up``; returns (values, present)."""
    rows, t = values.shape
    p = t // width
    v = values[:, : p * width].reshape(rows, p, width)
    u = up[:, : p * width].reshape(rows, p, width)
    present = u.any(axis=2)
    if how == "max":
        out = np.where(u, v, -np.inf).max(axis=2)
    else:
        cnt = np.maximum(u.sum(axis=2), 1)
        out = np.where(u, v, 0).sum(axis=2) / cnt
    return out.astype(np.float64), present


def resources(fleet: SimFleet) -> list[Resource]:
    launched = fleet.start - timedelta(days=30)
    return [
        Resource(ref=m.ref, instance_type=m.instance_type, state=ResourceState.RUNNING, pricing_model=m.pricing,
                 accelerators=Accelerators(m.gpu_model, m.gpus, round(m.gpu_memory_mib / 1024, 2)), tags=m.tags,
                 launched_at=launched, zone=f"{m.region}a", vcpu=m.vcpu, memory_gib=m.memory_gib, group=m.group)
        for m in fleet.machines
    ]


def snapshot(fleet: SimFleet) -> Snapshot:
    """The Snapshot an audit at ``fleet.as_of`` would collect: the training window only."""
    catalog = PriceCatalog.shipped(Cloud.AWS)
    window = fleet.window
    train = fleet.train_minutes
    n_inst = len(fleet.machines)
    step = int(PERIOD / timedelta(minutes=1))
    mem_step = int(MEMORY_PERIOD / timedelta(minutes=1))
    owner = fleet.gpu_owner
    gpu_index = np.concatenate([np.arange(m.gpus) for m in fleet.machines]).astype(np.int16)
    up_gpu = fleet.agent_up[owner, :train]
    always = np.ones((n_inst, train), dtype=bool)

    parts: list[tuple[np.ndarray, np.ndarray, int, np.ndarray, np.ndarray]] = []  # rows, gpu, metric, period idx, value
    metrics = [m.value for m in Metric]

    def add(values: np.ndarray, present: np.ndarray, row_res: np.ndarray, row_gpu: np.ndarray, metric: Metric,
            width: int) -> None:
        r, p = np.nonzero(present)
        parts.append((row_res[r], row_gpu[r], metrics.index(metric.value), p * width, values[r, p]))

    util, present = _period_reduce(fleet.gpu_util[:, :train], up_gpu, step, "max")
    add(util, present, owner, gpu_index, Metric.GPU_UTIL, step)
    mem, present = _period_reduce(fleet.gpu_mem[:, :train], up_gpu, mem_step, "max")
    add(mem, present, owner, gpu_index, Metric.GPU_MEM_USED, mem_step)
    total = np.repeat(np.array([m.gpu_memory_mib for m in fleet.machines], dtype=np.float64), [m.gpus for m in fleet.machines])
    _, present = _period_reduce(fleet.gpu_mem[:, :train], up_gpu, 1440, "max")
    add(np.broadcast_to(total[:, None], present.shape), present, owner, gpu_index, Metric.GPU_MEM_TOTAL, 1440)
    inst = np.arange(n_inst)
    level = np.full(n_inst, INSTANCE_LEVEL, dtype=np.int16)
    for metric, values in ((Metric.CPU_UTIL, fleet.cpu), (Metric.NET_IN, fleet.net_in), (Metric.NET_OUT, fleet.net_out)):
        v, present = _period_reduce(values[:, :train], always, step, "mean")
        add(v, present, inst, level, metric, step)

    res_codes = np.concatenate([p[0] for p in parts]).astype(np.int32)
    gpu_col = np.concatenate([p[1] for p in parts]).astype(np.int16)
    metric_codes = np.concatenate([np.full(len(p[0]), p[2], dtype=np.int8) for p in parts])
    minutes = np.concatenate([p[3] for p in parts]).astype(np.int64)
    values = np.concatenate([p[4] for p in parts]).astype(np.float64)
    keys = [m.key for m in fleet.machines]
    start_ns = pd.Timestamp(window.start).value
    frame = pd.DataFrame({
        "resource": pd.Categorical.from_codes(res_codes, categories=keys),
        "gpu": gpu_col,
        "metric": pd.Categorical.from_codes(metric_codes, categories=metrics),
        "ts": pd.DatetimeIndex(start_ns + minutes * 60_000_000_000, tz="UTC").as_unit("ns"),
        "value": values,
    })

    res = resources(fleet)
    regions = sorted({m.region for m in fleet.machines})
    prices = {}
    offerings: dict[tuple[str, str], frozenset[str]] = {}
    specs: dict[tuple[str, str], InstanceTypeSpec] = {}
    for r in res:
        specs.setdefault((Cloud.AWS.value, r.instance_type), InstanceTypeSpec(r.instance_type, r.vcpu or 0,
                                                                              r.memory_gib or 0.0, r.accelerators))
    for region in regions:
        types = {m.instance_type for m in fleet.machines if m.region == region}
        listed = {e.instance_type for e in catalog.offered(Cloud.AWS, region) if e.gpu_count}
        offerings[(Cloud.AWS.value, region)] = frozenset(listed)
        for itype in sorted(types | listed):
            for q in catalog.quotes(Cloud.AWS, region, itype):
                prices[price_key(q)] = q
        for itype in listed:
            spec = catalog.spec(Cloud.AWS, itype)
            if spec is not None:
                specs.setdefault((Cloud.AWS.value, itype), spec)
    groups = tuple(
        Group(ref=g.ref, kind="aws-asg", instance_type=g.instance_type, min_size=g.min_size, max_size=g.max_size,
              desired=g.desired, members=tuple(fleet.machines[i].id for i in g.members),
              warmup_seconds=g.warmup_min * 60, tags={"Name": g.name})
        for g in fleet.groups
    )
    gaps = tuple(
        Gap(Cloud.AWS, "gpu-telemetry", "no CloudWatch agent GPU metrics for this instance", m.region, m.id, ACCOUNT,
            "install the CloudWatch agent with the nvidia_gpu section")
        for m in fleet.machines if not m.agent
    )
    return Snapshot(as_of=fleet.as_of, window=window, resources=tuple(res), usage=Usage(frame, PERIOD), prices=prices,
                    gaps=gaps, groups=groups, offerings=offerings, specs=specs)


def realism(fleet: SimFleet, part: str = "train") -> dict[str, float]:
    """Duty-cycle figures of the fleet's GPUs per minute, comparable to the Alibaba GenAI pod trace."""
    cols = slice(0, fleet.train_minutes) if part == "train" else slice(fleet.train_minutes, fleet.minutes)
    util = fleet.gpu_util[:, cols]
    per_gpu_zero = (util == 0).mean(axis=1)
    per_gpu_mean = util.mean(axis=1)
    owner = fleet.gpu_owner
    n_inst = len(fleet.machines)
    gpus = np.bincount(owner, minlength=n_inst)
    inst_mean = np.bincount(owner, weights=per_gpu_mean, minlength=n_inst) / np.maximum(gpus, 1)
    return {
        "samples": float(util.size),
        "zero_fraction": float(per_gpu_zero.mean()),
        "mean_util_pct": float(per_gpu_mean.mean()),
        "median_instance_mean_util_pct": float(np.median(inst_mean)),
        "instances_mean_below_5pct": float((inst_mean < 5).mean()),
    }


#: The Alibaba GenAI pod GPU duty-cycle figures (../shared/corpus/INDEX.md, line 4; median pod mean computed
#: from the same file): the realism targets.
ALIBABA = {"samples": 157_417, "zero_fraction": 0.6685, "mean_util_pct": 7.0252, "median_instance_mean_util_pct": 5.78,
           "instances_mean_below_5pct": 28 / 143}

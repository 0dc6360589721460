"""Simulated scaling groups with ground truth, cloud-neutral: demand over time and each member's telemetry.

A ``SimGroup`` has a demand pattern: ``needed(group, times)`` is the ground truth, the whole members
the group's work needs in each period (integers). ``simulate_group`` turns it into one
``fleet.Series`` per member (member ``i`` is the group's ``i``-th instance):

- **packed** (``spread=False``, job workers, queue consumers): the first ``needed`` members are busy
  (GPU 75-100 %), the others idle (GPU 0-1 %, CPU and network low);
- **spread** (``spread=True``, a load-balanced inference fleet): every member carries the same share,
  GPU ``SPREAD_TARGET_PCT x needed / members x U(0.85, 0.97)`` %, so the sum over members of
  ``util / SPREAD_TARGET_PCT`` lies in ``(needed - 1, needed]`` for ``needed <= 6``: exactly
  ``needed`` members' worth of work at the target; with ``needed == 0`` every member idles.

``expect`` is the verdict a correct audit reaches for the group ("autoscale" or None).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pandas as pd

from providers.sandbox.fleet import SIM_PERIOD, Series

OFFICE_INFERENCE = "office-inference"  # weekdays 08-20 UTC `peak` members needed; nights and weekends none
STEADY = "steady"  # every member busy around the clock
OVERPROVISIONED = "overprovisioned"  # `peak` members needed around the clock, far fewer than run
DIURNAL = "diurnal"  # daily wave between 1 and `peak` members (highest 14-18 UTC), every day
PATTERNS = (OFFICE_INFERENCE, STEADY, OVERPROVISIONED, DIURNAL)

#: GPU utilization at which a member of a spread group carries a full member's worth of work:
#: the recommender's default target (``AutoscaleSettings.target_util_pct``).
SPREAD_TARGET_PCT = 70.0


@dataclass(frozen=True)
class SimGroup:
    name: str
    region: str
    instance_type: str
    gpus: int  # per member
    gpu_memory_mib: float  # per GPU
    min_size: int
    max_size: int
    desired: int  # the members that run (the simulation's members)
    pattern: str
    peak: int = 0  # members needed at the pattern's height (STEADY: all of them)
    spread: bool = False  # load-balanced: the work spread evenly over every member
    warmup_seconds: int | None = None  # the group's declared warm-up (None: not declared)
    tags: dict[str, str] = field(default_factory=dict)
    expect: str | None = None  # "autoscale" | None: the verdict a correct audit reaches

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise ValueError(f"unknown pattern {self.pattern!r}")
        if not self.min_size <= self.desired <= self.max_size:
            raise ValueError(f"{self.name}: desired {self.desired} outside {self.min_size}..{self.max_size}")


@dataclass(frozen=True)
class GroupSeries:
    times: pd.DatetimeIndex
    needed: np.ndarray  # (T,) int ground truth: members the work needs
    members: tuple[Series, ...]  # one per member, in member order


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def needed(group: SimGroup, times: pd.DatetimeIndex) -> np.ndarray:
    """Ground truth: members needed per period (int), never more than the members that run."""
    p = group.pattern
    hours = np.asarray(times.hour + times.minute / 60)
    if p == STEADY:
        out = np.full(len(times), group.desired)
    elif p == OVERPROVISIONED:
        out = np.full(len(times), group.peak)
    elif p == OFFICE_INFERENCE:
        office = np.asarray((times.day_of_week < 5) & (times.hour >= 8) & (times.hour < 20))
        out = np.where(office, group.peak, 0)
    elif p == DIURNAL:
        wave = 0.5 + 0.5 * np.cos((np.floor(hours) - 16) / 24 * 2 * np.pi)  # 1 at 16 UTC, 0 at 04 UTC
        out = np.ceil(1 + (group.peak - 1) * wave - 1e-9)
    else:  # pragma: no cover - refused in __post_init__
        raise ValueError(p)
    return np.clip(out, 0, group.desired).astype(np.int64)


def simulate_group(group: SimGroup, times: pd.DatetimeIndex) -> GroupSeries:
    rng = _rng(group.name)
    need = needed(group, times)
    n, g = len(times), group.gpus
    members = []
    for i in range(group.desired):
        if group.spread:
            share = SPREAD_TARGET_PCT * need / group.desired
            util = np.where(need[None, :] > 0, share[None, :] * rng.uniform(0.85, 0.97, (g, n)),
                            rng.choice([0.0, 0.0, 0.0, 1.0], (g, n)))
            busy = need > 0
        else:
            busy = need > i
            util = np.where(busy[None, :], rng.uniform(75, 100, (g, n)), rng.choice([0.0, 0.0, 0.0, 1.0], (g, n)))
        mem = group.gpu_memory_mib * np.where(busy[None, :], rng.uniform(0.6, 0.9, (g, n)), 0.3)  # model stays loaded
        cpu = np.where(busy, rng.uniform(20, 60, n), rng.uniform(0.3, 2.5, n))
        net_in = np.where(busy, rng.uniform(5e6, 5e7, n), rng.uniform(2e3, 2e4, n))
        net_out = np.where(busy, rng.uniform(1e6, 1e7, n), rng.uniform(1e3, 1e4, n))
        members.append(Series(times, np.round(util, 3), mem, cpu, net_in, net_out, np.ones(n, dtype=bool), busy))
    return GroupSeries(times, need, tuple(members))


def oracle_capacity(group: SimGroup, times: pd.DatetimeIndex, startup: timedelta, period: timedelta = SIM_PERIOD) -> np.ndarray:
    """The hindsight oracle: members that meet the demand one cold start ahead (max need over [t, t + startup])."""
    need = needed(group, times)
    lead = int(np.ceil(startup / period))
    padded = np.concatenate([need, np.full(lead, need[-1] if len(need) else 0)])
    return np.lib.stride_tricks.sliding_window_view(padded, lead + 1).max(axis=1)[: len(need)]


def _g(name: str, region: str, itype: str, gpus: int, mem_gib: float, size: tuple[int, int, int], pattern: str,
       **kw: object) -> SimGroup:
    team = {"llm": "llm", "vision": "vision", "search": "search"}.get(name.split("-")[0], "platform")
    tags = {"Name": name, "team": team, "owner": f"{team}@example.com"}
    low, high, desired = size
    return SimGroup(name, region, itype, gpus, mem_gib * 1024, low, high, desired, pattern, tags=tags, **kw)  # type: ignore[arg-type]


def demo_groups() -> list[SimGroup]:
    """Scaling groups for the demo cloud, each a case a user meets (three expected findings, two not).

    Spread over seven regions, the demo fleet's five and two of their own: moto answers GetMetricData
    in time that grows with the points stored in the region, so a spread keeps the demo fast.
    """
    east, west, eu, fra, tokyo = "us-east-2", "eu-west-1", "ap-southeast-1", "ap-northeast-1", "us-east-1"
    return [
        _g("llm-chat-office", east, "g5.xlarge", 1, 22.35, (4, 4, 4), OFFICE_INFERENCE, peak=3, spread=True,
           expect="autoscale"),
        _g("vision-train-workers", west, "g6.12xlarge", 4, 22.35, (2, 2, 2), STEADY),
        _g("search-embed-overprovisioned", eu, "g5.xlarge", 1, 22.35, (6, 6, 6), OVERPROVISIONED, peak=1,
           expect="autoscale"),
        _g("llm-api-steady", fra, "g6.xlarge", 1, 22.35, (4, 4, 4), STEADY, spread=True),
        _g("batch-diurnal-workers", tokyo, "g6.xlarge", 1, 22.35, (4, 4, 4), DIURNAL, peak=4, spread=False,
           expect="autoscale"),
    ]

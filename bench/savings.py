"""Savings vs hindsight oracle: the quality benchmark of the recommenders.

    .venv/bin/python bench/savings.py [--seed 0] [--instances 300] [--test-days 14] [--json] [--no-money]

A simulated fleet (``providers/sandbox/workloads.py``: per-minute ground truth for a few hundred AWS GPU
instances and four Auto Scaling groups) is split into a training window (14 days) and the test window
that follows (14 days). The recommenders see only the Snapshot of the training window (5-minute
periods, as an audit collects it) and ``recommenders.analyze(snapshot, Settings())`` runs unchanged.
Every recommendation is then played forward, minute by minute, on the test window it did not see, and
compared with a hindsight oracle per kind and with the rules a user would otherwise apply.

Scoring model (all money in $ per month: test-window dollars x 730 h / test hours):

- **Restart cost** ``R`` (the simulator's ``Machine.restart_min``): 10 minutes of the instance's price
  (boot, driver, container, model or notebook state), 30 for training boxes (data re-staged on local
  NVMe, checkpoint reload). Every restart costs it, planned (a schedule's start fires R minutes early) or
  not (work arrives while the instance is off and waits R minutes for it).
- **Busy stop**: a stop (a stop recommendation at the start of the test window, each off transition of a
  schedule, each stop of a baseline) at a minute when the instance is busy or becomes busy within 15
  minutes. A stop while busy also destroys the work since the last checkpoint or save, valued at
  ``W`` (``Machine.lost_work_min``) = 30 minutes of the instance's price for jobs and sessions, 0 for
  serving (the outage, ``R``, is the whole loss).
- **Lost GPU-hours**: GPU-hours of work that could not run when it was wanted: ``R`` (and ``W`` for a busy
  stop) x the GPUs with work at that minute, the excess of a right-sized or consolidated workload over its
  GPU, the replicas a group lacked x their GPUs. Lost work is valued at the price of the GPUs it needed.
- **stop**: the instance stops at the start of the test window and stays stopped until its next busy
  minute, then restarts (``R``). Realized = price x minutes off - restart and lost-work costs.
- **schedule**: the instance is off outside the ``on`` windows (UTC, minute of week). Work arriving in an
  off window starts it (``R``); it then stays on until the next scheduled stop. With a stop guard
  (``stop_when_idle_for_minutes`` in the params) each scheduled stop waits, inside the off period, until
  the instance has had no busy minute for that long (it is stopped then; never, if the off period never
  gets that quiet): the extra running minutes are paid, and the busy-stop test applies at the actual stop.
- **rightsize**: the instance runs on ``to_type`` at its price (same pricing model) from the start of the
  test window (one migration restart). A minute is *short* where the true load does not fit: more GPUs
  with work than the new type has, or a GPU's memory above the new GPU's (hard: the workload cannot
  run, it is moved back at the first such minute, another restart, and saves nothing after), or a GPU's
  utilization x the slowdown between the GPU models (``providers.hardware``) above 100 % or the CPU
  demand above the new vCPUs (soft: the excess is lost GPU time). Workloads are not packed onto fewer
  GPUs by a right-size; host memory is not simulated.
- **consolidate**: the emptied instance's price is saved from the start (one migration restart); its
  workload shares the host's GPU (``move_onto``'s ``gpu``, else the host GPU least used in the training
  window). Short where the combined memory exceeds the GPU (hard, moved back as above) or the combined
  utilization (the mover's x the slowdown) exceeds 100 % or the CPU the host's vCPUs (soft).
- **autoscale**: the group's capacity follows the recommended scheduled actions (5-field cron, UTC; each
  sets min/max/desired, unspecified ones stay; desired clamped to [min, max]; the state at the start of
  the window comes from the actions' last firing in the week before, else the action's base values).
  New members serve after the group's warm-up (10 min); a scale-in is immediate. Capacity-short minutes:
  serving replicas < the replicas the demand needs. Dynamic scaling policies are not modelled.
  Realized = the current fixed ``desired``'s cost - the recommended capacity's cost - lost work.
- A stop or schedule on a group member saves nothing (the group replaces a stopped member) but its
  busy stops and lost work count. Where one instance has several recommendations, a stop wins, then a
  consolidation; a schedule and a right-size compose (off minutes save the new price).

Oracles (hindsight on the test window, one per kind; the overall oracle takes, per instance, the best
of them, so kinds do not double count; each kind's row shows the oracle dollars of the instances whose
best action is that kind, ties going stop > schedule > consolidate > rightsize):

- stop: stop at the start of the test window iff the idle gap there is longer than ``R``;
- schedule: the best hour-of-week schedule: every hour-of-week slot without a busy minute in any test
  week is off (blocks longer than ``R``), no interruption by construction;
- rightsize: the cheapest type offered in the region (catalog) that fits the test window's true peak
  active-GPU count, per-GPU memory, per-GPU throughput (x slowdown) and CPU; also combined with the
  schedule oracle;
- consolidate: single-GPU instances moved, most expensive first, onto the first GPU in the region that
  holds the combined load at every minute (greedy: a lower bound of the best packing); hosts are
  instances the oracle leaves as they are (no stop, no right-size, a schedule saving under 25 %); a donor
  must save more this way than by any other action;
- autoscale: capacity(t) = the most replicas needed in ``[t, t + warm-up]`` (launched one cold start ahead).

Baselines (standalone instances only): a 60-minute idle timeout (stops after 60 minutes with every GPU
<= 5 %, restarts when work arrives, counter restarting at each wake); the Trusted Advisor rule (daily
mean CPU <= 10 % and daily network <= 5 MB on >= 4 of the 14 training days: stop now); a CPU-only rule
(daily mean CPU <= 10 % on >= 4 of 14 days: stop now). The stop-now rules are scored like our stop.

Context line: the "idle ceiling" is what a clairvoyant stopper would save stopping every idle gap longer
than ``R`` in the test window: no recommendation made once, in advance, can get all of it.

Table columns: ``oracle`` (the kind's share of the overall oracle), ``realized`` (net of restart, lost-work
and shortfall costs), ``%orcl`` (realized / oracle), ``%acted`` (realized / the overall oracle of the
instances or groups the kind acted on: how good the actions taken were, whatever was missed),
``predicted`` (the recommendations' own ``monthly_savings_usd``), ``stops`` and ``busy/100`` (busy stops
per 100 stops), ``lostGPUh``, ``shortmin`` (capacity-short minutes: rightsize, consolidate, autoscale).
The baselines' ``recs`` is the number of instances they acted on. When the ratio target fails, the line
says what each busy stop would have to cost, on top of ``W``, for it to pass.

Targets: >= 90 % of the oracle overall, 0 busy stops, >= 1.5x the best baseline. Exit code 0 always.
Per-minute scoring is numpy over (instances x minutes) grids; Python loops run over recommendations,
groups and the timeout baseline's stop events, never over minutes.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from providers.catalog import PriceCatalog
from providers.hardware import gpu_model
from providers.model import Cloud, PricingModel
from providers.sandbox import workloads as sim

RESTART_MIN = 10
LOST_WORK_MIN = 30
BUSY_WINDOW_MIN = 15
TIMEOUT_MIN = 60
TIMEOUT_GPU_PCT = 5.0
TA_CPU_PCT = 10.0
TA_NET_BYTES_PER_DAY = 5e6
RULE_MIN_DAYS = 4
#: A GPU with more memory in use than this, or utilization above ``ACTIVE_UTIL_PCT``, has work on it.
ACTIVE_MEM_MIB = 256.0
ACTIVE_UTIL_PCT = 3.0
KINDS = ("stop", "schedule", "rightsize", "autoscale", "consolidate")
ORACLE_PRIORITY = ("stop", "schedule", "consolidate", "rightsize")
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MINUTES_PER_WEEK = 7 * 1440
TARGET_ORACLE_SHARE = 0.90
TARGET_BASELINE_RATIO = 1.5


# --------------------------------------------------------------------------- off/on policies


@dataclass
class PolicyResult:
    """Per instance (rows of the intent grid): what an off policy did on the test window."""

    off_min: np.ndarray
    stops: np.ndarray
    busy_stops: np.ndarray
    hits: np.ndarray  # stops while busy: the work since the last checkpoint is lost
    wakes: np.ndarray  # unplanned restarts: work arrived while off
    planned: np.ndarray  # planned restarts (a schedule's on window)
    lost_gpu_h: np.ndarray
    off: np.ndarray | None = None  # (n, T) bool, when asked for

    def usd(self, price_min: np.ndarray, restart: np.ndarray | int,
            lost: np.ndarray | int = LOST_WORK_MIN) -> tuple[np.ndarray, np.ndarray]:
        """(saved, cost) in $ over the test window at ``price_min`` $/minute and ``restart`` minutes per row."""
        saved = self.off_min * price_min
        cost = ((self.wakes + self.planned) * restart + self.hits * lost) * price_min
        return saved, cost


def score_off(intent: np.ndarray, busy: np.ndarray, active: np.ndarray, restart: np.ndarray | int = RESTART_MIN,
              lost: np.ndarray | int = LOST_WORK_MIN, window: int = BUSY_WINDOW_MIN, keep_off: bool = False) -> PolicyResult:
    """Play an off policy forward: where ``intent`` wants the instance off it is off, from each run's start
    (a stop) until the first busy minute of the run (a wake: the work restarts it); the run's end is a
    planned restart unless the run reaches the window's end or the instance was woken.

    ``intent``, ``busy``: (n, T) bool; ``active``: (n, T) GPUs with work (for lost GPU-hours).
    """
    n, t_len = intent.shape
    if n == 0:
        z = np.zeros(0)
        return PolicyResult(z, z, z, z, z, z, z, np.zeros((0, t_len), dtype=bool) if keep_off else None)
    prev = np.zeros_like(intent)
    prev[:, 1:] = intent[:, :-1]
    start = intent & ~prev
    nxt = np.zeros_like(intent)
    nxt[:, :-1] = intent[:, 1:]
    end = intent & ~nxt
    end[:, -1] = False  # a run reaching the window's end needs no restart inside it
    bi = busy & intent
    c = np.cumsum(bi, axis=1, dtype=np.int32)
    base = np.where(start, c - bi, 0).astype(np.int32)
    idx = np.where(start, np.arange(t_len, dtype=np.int32)[None, :], np.int32(0))
    np.maximum.accumulate(idx, axis=1, out=idx)
    seen = c - np.take_along_axis(base, idx, axis=1)
    off = intent & (seen == 0)
    wake = bi & (seen == 1)
    planned = end & (seen == 0)
    cb = np.zeros((n, t_len + 1), dtype=np.int32)
    np.cumsum(busy, axis=1, out=cb[:, 1:])
    hi = np.minimum(np.arange(t_len) + window, t_len)
    ahead = (cb[:, hi] - cb[:, :t_len]) > 0
    busy_stop = start & ahead
    hit = start & busy
    act = np.maximum(active, 1)
    restart = np.broadcast_to(np.asarray(restart, dtype=float), (n,))
    lost = np.broadcast_to(np.asarray(lost, dtype=float), (n,))
    lost_gpu_h = ((wake * act).sum(axis=1) * restart + (hit * act).sum(axis=1) * lost) / 60.0
    return PolicyResult(off.sum(axis=1).astype(float), start.sum(axis=1).astype(float), busy_stop.sum(axis=1).astype(float),
                        hit.sum(axis=1).astype(float), wake.sum(axis=1).astype(float), planned.sum(axis=1).astype(float),
                        lost_gpu_h.astype(float), off if keep_off else None)


def idle_for(busy: np.ndarray, prior: np.ndarray | int = 0) -> np.ndarray:
    """(n, T) minutes the instance has been idle (no busy minute) just before each minute: the length of the
    run of non-busy minutes ending at the minute before. ``prior``: (n,) idle minutes just before the window."""
    n, t_len = busy.shape
    c = np.cumsum(~busy, axis=1, dtype=np.int64)
    last = np.where(busy, c, 0)  # the idle count as of each row's last busy minute
    np.maximum.accumulate(last, axis=1, out=last)
    run = c - last  # idle minutes ending at each minute, inclusive
    prior = np.broadcast_to(np.asarray(prior, dtype=np.int64), (n,))
    run = np.where(run == np.arange(1, t_len + 1)[None, :], run + prior[:, None], run)  # no busy minute yet
    out = np.empty_like(run)
    out[:, 0] = prior
    out[:, 1:] = run[:, :-1]
    return out


def guarded_intent(intent: np.ndarray, busy: np.ndarray, idle_min: np.ndarray | int,
                   prior: np.ndarray | int = 0) -> np.ndarray:
    """A schedule's off intent with a stop guard (``stop_when_idle_for_minutes``): each scheduled stop (the
    start of an off run) is postponed to the first minute of the run at which the instance has been idle for
    ``idle_min`` minutes (per row; 0: no guard); from there the run is off as before, and a run that never
    gets that quiet has no stop. ``prior``: (n,) idle minutes just before the window."""
    n, t_len = intent.shape
    if n == 0:
        return intent
    guard = np.broadcast_to(np.asarray(idle_min, dtype=np.int64), (n,))
    ready = intent & (idle_for(busy, prior) >= guard[:, None])
    prev = np.zeros_like(intent)
    prev[:, 1:] = intent[:, :-1]
    start = intent & ~prev
    c = np.cumsum(ready, axis=1, dtype=np.int32)
    base = np.where(start, c - ready, 0).astype(np.int32)
    idx = np.where(start, np.arange(t_len, dtype=np.int32)[None, :], np.int32(0))
    np.maximum.accumulate(idx, axis=1, out=idx)
    return intent & (c - np.take_along_axis(base, idx, axis=1) > 0)


def next_true(mask: np.ndarray) -> np.ndarray:
    """(n, T) index of the first True at or after each minute (T where none)."""
    t_len = mask.shape[1]
    idx = np.where(mask, np.arange(t_len)[None, :], t_len)
    return np.minimum.accumulate(idx[:, ::-1], axis=1)[:, ::-1]


def timeout_policy(gidle: np.ndarray, busy: np.ndarray, active: np.ndarray, prior_idle: np.ndarray,
                   timeout: int = TIMEOUT_MIN, restart: np.ndarray | int = RESTART_MIN, lost: np.ndarray | int = LOST_WORK_MIN,
                   window: int = BUSY_WINDOW_MIN) -> PolicyResult:
    """A fixed idle timeout: stop after ``timeout`` minutes with every GPU idle (``gidle``); the next busy
    minute restarts the instance and the count starts again. ``prior_idle``: idle minutes just before the
    window (an instance idle for long already is stopped at the window's start)."""
    n, t_len = gidle.shape
    restart = np.broadcast_to(np.asarray(restart, dtype=float), (n,))
    lost = np.broadcast_to(np.asarray(lost, dtype=float), (n,))
    nb = next_true(busy)
    out = {k: np.zeros(n) for k in ("off", "stops", "busy", "hits", "wakes", "lost")}
    for i in range(n):
        d = np.diff(np.r_[0, gidle[i].astype(np.int8), 0])
        rs, re = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
        if len(rs) and rs[0] == 0:
            rs = rs.copy()
            rs[0] = -int(prior_idle[i])
        long = (re - rs) >= timeout
        free = -(10**9)
        for s, e in zip(rs[long], re[long], strict=True):
            cs = max(int(s), free)
            while e - cs >= timeout:
                stop = max(cs + timeout, 0)
                if stop >= t_len:
                    break
                w = int(nb[i, stop])
                out["stops"][i] += 1
                out["off"][i] += w - stop
                out["busy"][i] += w - stop < window
                if w >= t_len:
                    free = t_len
                    break
                a = max(1, int(active[i, w]))
                out["wakes"][i] += 1
                out["lost"][i] += a * restart[i] / 60
                if w == stop:
                    out["hits"][i] += 1
                    out["lost"][i] += a * lost[i] / 60
                cs = free = w
    return PolicyResult(out["off"], out["stops"], out["busy"], out["hits"], out["wakes"], np.zeros(n), out["lost"])


def _minute_of(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def week_on(windows: Sequence[Mapping[str, str]]) -> np.ndarray:
    """(10080,) bool: minute of week (Monday 00:00 UTC = 0) inside any ``on`` window."""
    on = np.zeros(MINUTES_PER_WEEK, dtype=bool)
    for w in windows:
        base = DAYS.index(str(w["day"])[:3].title()) * 1440
        on[base + _minute_of(w["start"]) : base + _minute_of(w["end"])] = True
    return on


# --------------------------------------------------------------------------- cron (autoscale)

_CRON_NAMES = {
    "dow": {d: i for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))},
    "month": {m: i + 1 for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT",
                                                "NOV", "DEC"))},
}
_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("dom", 1, 31), ("month", 1, 12), ("dow", 0, 7))


def _cron_values(spec: str, name: str, lo: int, hi: int) -> set[int]:
    names = _CRON_NAMES.get(name, {})

    def num(text: str) -> int:
        return names[text.upper()] if text.upper() in names else int(text)

    out: set[int] = set()
    for part in spec.split(","):
        rng_part, _, step = part.partition("/")
        if rng_part == "*":
            a, b = lo, hi
        elif "-" in rng_part:
            a, b = (num(x) for x in rng_part.split("-", 1))
        else:
            a = b = num(rng_part)
            if step:
                b = hi
        out |= set(range(a, b + 1, int(step) if step else 1))
    return out


def cron_matches(expr: str, feats: Mapping[str, np.ndarray]) -> np.ndarray:
    """Minutes (given as ``feats``: minute, hour, dom, month, dow with Sunday = 0) where a 5-field cron fires."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"not a 5-field cron expression: {expr!r}")
    masks = {}
    for spec, (name, lo, hi) in zip(fields, _CRON_FIELDS, strict=True):
        values = _cron_values(spec, name, lo, hi)
        if name == "dow":
            values = {v % 7 for v in values}
        masks[name] = np.isin(feats[name], sorted(values))
    if fields[2] != "*" and fields[4] != "*":
        day = masks["dom"] | masks["dow"]
    else:
        day = masks["dom"] & masks["dow"]
    return masks["minute"] & masks["hour"] & masks["month"] & day


def _ffill(values: np.ndarray, default: float) -> np.ndarray:
    idx = np.where(~np.isnan(values), np.arange(len(values)), -1)
    np.maximum.accumulate(idx, out=idx)
    return np.where(idx >= 0, values[np.maximum(idx, 0)], default)


def scheduled_capacity(params: Mapping[str, Any], feats: Mapping[str, np.ndarray], current: int) -> np.ndarray:
    """Desired capacity per minute of ``feats``' timeline under an autoscale recommendation's params."""
    n = len(feats["minute"])
    base = {"min_size": params.get("min_size"), "max_size": params.get("max_size"),
            "desired_capacity": params.get("desired_capacity", current)}
    state = {}
    for attr in base:
        setter = np.full(n, np.nan)
        for action in params.get("scheduled_actions") or ():
            value = action.get(attr)
            if value is None and attr == "desired_capacity":
                value = action.get("desired")
            if value is None:
                continue
            setter[cron_matches(str(action["recurrence"]), feats)] = float(value)
        default = base[attr] if base[attr] is not None else (0 if attr == "min_size" else 10**6 if attr == "max_size"
                                                              else current)
        state[attr] = _ffill(setter, float(default))
    return np.clip(state["desired_capacity"], state["min_size"], state["max_size"])


def sliding(values: np.ndarray, width: int, how: str, forward: bool) -> np.ndarray:
    """min/max over ``[t - width, t]`` (``forward=False``) or ``[t, t + width]``, edges padded with the edge value."""
    pad = np.r_[np.repeat(values[:1], width), values] if not forward else np.r_[values, np.repeat(values[-1:], width)]
    view = np.lib.stride_tricks.sliding_window_view(pad, width + 1)
    return view.min(axis=1) if how == "min" else view.max(axis=1)


# --------------------------------------------------------------------------- the test window, as arrays


@dataclass
class View:
    """The test window's truth as (instances x minutes) grids, plus prices and shapes."""

    fleet: sim.SimFleet
    t: int
    busy: np.ndarray
    active: np.ndarray  # GPUs with work
    gidle: np.ndarray  # every GPU <= TIMEOUT_GPU_PCT
    util_max: np.ndarray  # the busiest GPU's utilization
    mem_max: np.ndarray  # the fullest GPU's memory (MiB)
    cpu_vcpu: np.ndarray  # vCPUs in use
    price_min: np.ndarray  # $ per minute paid
    restart: np.ndarray  # (N,) restart cost in minutes
    lost_work: np.ndarray  # (N,) minutes of work a stop destroys when it hits the instance busy
    standalone: np.ndarray  # (N,) bool: not a group member
    minute_of_week: np.ndarray  # (T,)
    prior_idle: np.ndarray  # (N,) GPU-idle minutes just before the test window

    @classmethod
    def of(cls, fleet: sim.SimFleet) -> View:
        cols = slice(fleet.train_minutes, fleet.minutes)
        firsts = np.array([m.first_gpu for m in fleet.machines])
        util = fleet.gpu_util[:, cols]
        mem = fleet.gpu_mem[:, cols]
        active = np.add.reduceat(((util > ACTIVE_UTIL_PCT) | (mem > ACTIVE_MEM_MIB)).astype(np.int16), firsts, axis=0)
        util_max = np.maximum.reduceat(util, firsts, axis=0)
        gidle = util_max <= TIMEOUT_GPU_PCT
        tail = np.maximum.reduceat(fleet.gpu_util[:, fleet.train_minutes - TIMEOUT_MIN : fleet.train_minutes], firsts,
                                   axis=0) <= TIMEOUT_GPU_PCT
        prior = np.where(tail.all(axis=1), TIMEOUT_MIN, np.argmax(~tail[:, ::-1], axis=1))  # trailing idle minutes
        vcpu = np.array([m.vcpu for m in fleet.machines], dtype=np.float32)
        start = fleet.as_of
        mow0 = start.weekday() * 1440 + start.hour * 60 + start.minute
        return cls(
            fleet=fleet, t=fleet.test_minutes, busy=fleet.busy[:, cols], active=active, gidle=gidle, util_max=util_max,
            mem_max=np.maximum.reduceat(mem, firsts, axis=0), cpu_vcpu=fleet.cpu[:, cols] * vcpu[:, None] / 100.0,
            price_min=np.array([m.hourly_usd for m in fleet.machines]) / 60.0,
            restart=np.array([m.restart_min for m in fleet.machines], dtype=float),
            lost_work=np.array([m.lost_work_min for m in fleet.machines], dtype=float),
            standalone=np.array([m.group is None for m in fleet.machines]),
            minute_of_week=(mow0 + np.arange(fleet.test_minutes)) % MINUTES_PER_WEEK,
            prior_idle=prior.astype(float),
        )

    def month(self, usd: float | np.ndarray) -> Any:
        """Test-window dollars as dollars per month (730 h)."""
        return usd * (730 * 60 / self.t)

    def gpu_rows(self, i: int) -> slice:
        m = self.fleet.machines[i]
        return slice(m.first_gpu, m.first_gpu + m.gpus)

    def gpu_series(self, i: int, gpu: int = 0) -> tuple[np.ndarray, np.ndarray]:
        row = self.fleet.machines[i].first_gpu + gpu
        cols = slice(self.fleet.train_minutes, self.fleet.minutes)
        return self.fleet.gpu_util[row, cols], self.fleet.gpu_mem[row, cols]


# --------------------------------------------------------------------------- type facts


@dataclass(frozen=True)
class TypeFacts:
    gpu_model: str
    gpus: int
    gpu_mem_mib: float
    vcpu: int


class Types:
    """Catalog shapes and prices, and GPU slowdowns between models."""

    def __init__(self) -> None:
        self.catalog = PriceCatalog.shipped(Cloud.AWS)
        self.facts = {e.instance_type: TypeFacts(e.gpu_model, e.gpu_count, e.gpu_memory_gib * 1024, e.vcpu)
                      for e in self.catalog.entries(Cloud.AWS)}
        self._offered = {}

    def offered(self, region: str) -> list[str]:
        if region not in self._offered:
            self._offered[region] = sorted(e.instance_type for e in self.catalog.offered(Cloud.AWS, region) if e.gpu_count)
        return self._offered[region]

    def price(self, region: str, itype: str, pricing: PricingModel) -> float | None:
        quotes = {q.pricing_model: q for q in self.catalog.quotes(Cloud.AWS, region, itype)}
        quote = quotes.get(pricing) or quotes.get(PricingModel.ON_DEMAND)
        return float(quote.hourly_usd) if quote else None

    @staticmethod
    def slowdown(src: str, dst: str) -> float:
        a, b = gpu_model(src), gpu_model(dst)
        return 1.0 if a is None or b is None or a is b else a.slowdown_on(b)


def fit(view: View, i: int, new: TypeFacts, slow: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per minute: (hard misfit, soft misfit, lost GPU-hours per minute) of instance ``i``'s load on type ``new``."""
    need = view.util_max[i] * slow
    hard = (view.active[i] > new.gpus) | (view.mem_max[i] > new.gpu_mem_mib)
    soft = (need > 100.0) | (view.cpu_vcpu[i] > new.vcpu)
    lost = np.maximum(0.0, need - 100.0) / 100.0 / 60.0
    return hard, soft, lost


# --------------------------------------------------------------------------- oracles


@dataclass
class Oracle:
    stop: np.ndarray  # $ over the test window, per instance
    schedule: np.ndarray
    schedule_off_net: np.ndarray  # minutes off minus restart minutes
    schedule_off_slots: np.ndarray  # (N, 168) hour-of-week slots the oracle schedule switches off
    rightsize: np.ndarray
    rightsize_to: list[str | None]
    rightsize_schedule: np.ndarray
    rightsize_schedule_split: np.ndarray  # the schedule part of the combination
    consolidate: np.ndarray
    consolidate_onto: dict[int, tuple[int, int]]
    autoscale: np.ndarray  # per group
    best: np.ndarray  # per instance
    by_kind: dict[str, np.ndarray]  # per instance, the best's attribution to each kind
    ceiling: np.ndarray  # clairvoyant stopper: every idle gap > R
    choice: list[str | None]  # per instance, the best action's name (None: nothing saves)


def stop_oracle(busy: np.ndarray, price_min: np.ndarray, restart: np.ndarray | int = RESTART_MIN) -> np.ndarray:
    """Stop at the window's start iff the idle gap there is longer than ``restart``."""
    t_len = busy.shape[1]
    gap = np.where(busy.any(axis=1), np.argmax(busy, axis=1), t_len)
    restart = np.broadcast_to(np.asarray(restart, dtype=float), gap.shape)
    value = np.where(gap < t_len, gap - restart, gap)
    return np.where(gap > restart, value, 0) * price_min


def schedule_oracle(busy: np.ndarray, active: np.ndarray, minute_of_week: np.ndarray, price_min: np.ndarray,
                    restart: np.ndarray | int = RESTART_MIN) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The best zero-interruption hour-of-week schedule: off in every slot with no busy minute in any week.

    Returns ($ saved net, off minutes net of restarts, the (n, 168) off hour-of-week slots)."""
    slot = minute_of_week // 60
    busy_slot = np.zeros((busy.shape[0], 168), dtype=bool)
    for s in np.unique(slot):
        busy_slot[:, s] = busy[:, slot == s].any(axis=1)
    off_slot = ~busy_slot
    off_slot &= _blocks_longer_than(off_slot, float(np.max(restart)) / 60)
    intent = off_slot[:, slot]
    res = score_off(intent, busy, active, restart)
    net = res.off_min - (res.wakes + res.planned) * restart
    return np.maximum(net, 0) * price_min, np.maximum(net, 0), off_slot


def _blocks_longer_than(off: np.ndarray, hours: float) -> np.ndarray:
    """Keep runs of True (circular over the week) longer than ``hours`` slots."""
    keep = np.zeros_like(off)
    for i in range(off.shape[0]):
        row = off[i]
        if row.all() or not row.any():
            keep[i] = row
            continue
        shift = int(np.flatnonzero(~row)[0])
        rot = np.roll(row, -shift)
        d = np.diff(np.r_[0, rot.astype(np.int8), 0])
        k = np.zeros_like(rot)
        for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True):
            if b - a > hours:
                k[a:b] = True
        keep[i] = np.roll(k, shift)
    return keep


def ceiling(busy: np.ndarray, price_min: np.ndarray, restart: np.ndarray | int = RESTART_MIN) -> np.ndarray:
    """A clairvoyant stopper: every idle gap longer than ``restart`` off (a restart where it ends inside)."""
    n, t_len = busy.shape
    idle = ~busy
    d = np.diff(np.c_[np.zeros(n, np.int8), idle.astype(np.int8), np.zeros(n, np.int8)], axis=1)
    r, s = np.nonzero(d == 1)
    _, e = np.nonzero(d == -1)
    length = e - s
    r_min = np.broadcast_to(np.asarray(restart, dtype=float), (n,))[r]
    value = np.where(e < t_len, length - r_min, length)
    value = np.where(length > r_min, value, 0)
    return np.bincount(r, weights=value, minlength=n) * price_min


def rightsize_oracle(view: View, types: Types) -> tuple[np.ndarray, list[str | None], np.ndarray]:
    """Cheapest offered type that fits the true peaks; returns ($ saved, target type, target $/minute)."""
    n = len(view.fleet.machines)
    value, target, new_price = np.zeros(n), [None] * n, np.zeros(n)
    peak_k = view.active.max(axis=1)
    peak_u = view.util_max.max(axis=1)
    peak_m = view.mem_max.max(axis=1)
    peak_c = view.cpu_vcpu.max(axis=1)
    for m in view.fleet.machines:
        i = m.index
        if not view.standalone[i]:
            continue
        best = None
        for itype in types.offered(m.region):
            f = types.facts[itype]
            price = types.price(m.region, itype, m.pricing)
            if price is None or price >= m.hourly_usd:
                continue
            slow = types.slowdown(m.gpu_model, f.gpu_model)
            fits = peak_k[i] <= f.gpus and peak_u[i] * slow <= 100 and peak_m[i] <= f.gpu_mem_mib and peak_c[i] <= f.vcpu
            if fits and (best is None or price < best[1]):
                best = (itype, price)
        if best is not None:
            saved = (m.hourly_usd - best[1]) / 60 * view.t - m.restart_min * m.hourly_usd / 60
            if saved > 0:
                value[i], target[i], new_price[i] = saved, best[0], best[1] / 60
    return value, target, new_price


def consolidation_oracle(view: View, types: Types, donors_ok: np.ndarray, hosts_ok: np.ndarray,
                         candidates_per_donor: int = 24) -> tuple[np.ndarray, dict[int, tuple[int, int]]]:
    """Greedy: single-GPU donors, most expensive first, onto the first host GPU that holds the combined load."""
    fleet = view.fleet
    n = len(fleet.machines)
    value = np.zeros(n)
    onto: dict[int, tuple[int, int]] = {}  # donor -> (host, host GPU)
    machines = fleet.machines
    for region in sorted({m.region for m in machines}):
        donors = [m for m in machines if m.region == region and donors_ok[m.index] and m.gpus == 1]
        hosts = [m for m in machines if m.region == region and hosts_ok[m.index]]
        if not donors or not hosts:
            continue
        rows = [(h.index, g) for h in hosts for g in range(h.gpus)]
        load_u = np.stack([view.gpu_series(h, g)[0] for h, g in rows]).astype(np.float32)
        load_m = np.stack([view.gpu_series(h, g)[1] for h, g in rows]).astype(np.float32)
        cap_m = np.array([machines[h].gpu_memory_mib for h, _ in rows])
        host_of = np.array([h for h, _ in rows])
        gpu_of = np.array([g for _, g in rows])
        cpu_host = {h.index: view.cpu_vcpu[h.index].copy() for h in hosts}
        emptied: set[int] = set()
        received: set[int] = set()
        for d in sorted(donors, key=lambda m: -m.hourly_usd):
            if d.index in received:
                continue  # an instance that already took in a workload stays
            u_d, m_d = view.gpu_series(d.index)
            order = np.argsort(load_u.mean(axis=1))
            tried = 0
            for r in order:
                h = int(host_of[r])
                if h == d.index or h in emptied:
                    continue
                slow = types.slowdown(d.gpu_model, machines[h].gpu_model)
                if (m_d.max() + load_m[r].max() > cap_m[r]) and np.any(m_d + load_m[r] > cap_m[r]):
                    continue
                tried += 1
                if tried > candidates_per_donor:
                    break
                u = u_d * slow + load_u[r]
                if u.max() > 100 or np.any(m_d + load_m[r] > cap_m[r]):
                    continue
                cpu = cpu_host[h] + view.cpu_vcpu[d.index]
                if cpu.max() > machines[h].vcpu:
                    continue
                load_u[r], load_m[r], cpu_host[h] = u, load_m[r] + m_d, cpu
                value[d.index] = d.hourly_usd / 60 * (view.t - d.restart_min)
                onto[d.index] = (h, int(gpu_of[r]))
                emptied.add(d.index)
                received.add(h)
                break
    return value, onto


def autoscale_oracle(view: View) -> np.ndarray:
    fleet = view.fleet
    out = np.zeros(len(fleet.groups))
    for g in fleet.groups:
        need = np.ceil(fleet.demand[g.index, fleet.train_minutes :] - 1e-6)
        cap = sliding(need, g.warmup_min, "max", forward=True)
        out[g.index] = (g.desired * view.t - cap.sum()) * g.hourly_usd / 60
    return out


def oracles(view: View, types: Types) -> Oracle:
    price = view.price_min
    sa = view.standalone
    stop = stop_oracle(view.busy, price, view.restart) * sa
    sched, off_net, off_slots = schedule_oracle(view.busy, view.active, view.minute_of_week, price, view.restart)
    sched = sched * sa
    rs, rs_to, new_price = rightsize_oracle(view, types)
    rs_sched_part = new_price * off_net  # the schedule's part: off minutes at the new price
    rs_sched = np.where(rs > 0, rs + rs_sched_part, 0.0)
    full = price * view.t
    other = np.maximum.reduce([stop, sched, rs, rs_sched])
    donors_ok = sa & (other < full - view.restart * price - 1e-9)
    hosts_ok = sa & (stop == 0) & (sched < 0.25 * full) & (rs == 0)  # instances the oracle leaves as they are
    cons, onto = consolidation_oracle(view, types, donors_ok, hosts_ok)
    n = len(view.fleet.machines)
    candidates = {"stop": stop, "schedule": sched, "consolidate": cons, "rightsize": rs, "rightsize+schedule": rs_sched}
    names = ["stop", "schedule", "consolidate", "rightsize", "rightsize+schedule"]
    stack = np.stack([candidates[k] for k in names])
    choice = np.argmax(stack, axis=0)  # ties go to the first: the priority order
    best = stack.max(axis=0)
    by_kind = {k: np.zeros(n) for k in KINDS}
    for j, name in enumerate(names):
        sel = (choice == j) & (best > 0)
        if name == "rightsize+schedule":
            by_kind["schedule"][sel] += rs_sched_part[sel]
            by_kind["rightsize"][sel] += (rs_sched - rs_sched_part)[sel]
        else:
            by_kind[name][sel] += best[sel]
    chosen = [names[c] if b > 0 else None for c, b in zip(choice, best, strict=True)]
    return Oracle(stop, sched, off_net, off_slots, rs, rs_to, rs_sched, rs_sched_part, cons, onto, autoscale_oracle(view),
                  best, by_kind, ceiling(view.busy, price, view.restart) * sa, chosen)


def oracle_plan(view: View, oracle: Oracle) -> list[Any]:
    """The oracle's own per-instance choices as recommendations (no autoscale: per-minute capacity is no
    cron schedule): scored by ``score_ours`` they must come back at about the oracle's dollars."""
    from decimal import Decimal

    from providers.model import Action
    from recommenders.model import Kind, Recommendation, Risk

    recs = []
    fleet = view.fleet

    def rec(kind: Kind, m: sim.Machine, value: float, action: Action | None, evidence: dict[str, Any]) -> Recommendation:
        return Recommendation("oracle", kind, m.ref, m.instance_type, Decimal(str(round(max(0.0, view.month(value)), 2))),
                              1.0, Risk.LOW, f"oracle {kind.value}", evidence, action, m.name)

    for m in fleet.machines:
        i, choice = m.index, oracle.choice[m.index]
        if choice == "stop":
            recs.append(rec(Kind.STOP, m, oracle.stop[i], Action("stop", m.ref, {}), {}))
        if choice in ("schedule", "rightsize+schedule"):
            on = ~oracle.schedule_off_slots[i]
            windows = [{"day": DAYS[d], "start": f"{a:02d}:00", "end": f"{b:02d}:00" if b < 24 else "24:00"}
                       for d in range(7) for a, b in _runs(on[d * 24 : (d + 1) * 24])]
            recs.append(rec(Kind.SCHEDULE, m, oracle.schedule[i], Action("schedule", m.ref, {"timezone": "UTC", "on": windows}), {}))
        if choice in ("rightsize", "rightsize+schedule"):
            params = {"from_type": m.instance_type, "to_type": oracle.rightsize_to[i]}
            recs.append(rec(Kind.RIGHTSIZE, m, oracle.rightsize[i], Action("rightsize", m.ref, params), {}))
        if choice == "consolidate":
            h, g = oracle.consolidate_onto[i]
            recs.append(rec(Kind.CONSOLIDATE, m, oracle.consolidate[i], None,
                            {"move_onto": {"resource_id": fleet.machines[h].id, "gpu": g}}))
    return recs


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


# --------------------------------------------------------------------------- baselines


def _daily(values: np.ndarray, minutes: int, how: str) -> np.ndarray:
    days = minutes // 1440
    v = values[:, -days * 1440 :].reshape(values.shape[0], days, 1440)
    return v.mean(axis=2) if how == "mean" else v.sum(axis=2)


def rule_flags(fleet: sim.SimFleet) -> dict[str, np.ndarray]:
    """Which instances the stop-now rules flag from the training window (standalone instances only)."""
    train = slice(0, fleet.train_minutes)
    cpu_day = _daily(fleet.cpu[:, train], fleet.train_minutes, "mean")
    net_day = _daily((fleet.net_in[:, train] + fleet.net_out[:, train]).astype(np.float64) * 60, fleet.train_minutes, "sum")
    standalone = np.array([m.group is None for m in fleet.machines])
    low_cpu = cpu_day <= TA_CPU_PCT
    return {
        "trusted-advisor": standalone & ((low_cpu & (net_day <= TA_NET_BYTES_PER_DAY)).sum(axis=1) >= RULE_MIN_DAYS),
        "cpu-only": standalone & (low_cpu.sum(axis=1) >= RULE_MIN_DAYS),
    }


# --------------------------------------------------------------------------- scoring our recommendations


@dataclass
class KindTotals:
    recs: int = 0
    predicted: float = 0.0  # $/month the recommendations claim
    saved: float = 0.0  # test-window $
    cost: float = 0.0
    stops: float = 0.0
    busy_stops: float = 0.0
    lost_gpu_h: float = 0.0
    short_min: float = 0.0

    @property
    def net(self) -> float:
        return self.saved - self.cost


@dataclass
class Scored:
    kinds: dict[str, KindTotals]
    per_instance: np.ndarray  # net test-window $ per instance (ours)
    per_group: np.ndarray
    findings: list[str] = field(default_factory=list)
    acted: dict[str, set[int]] = field(default_factory=dict)  # kind -> instances (groups for autoscale) scored
    busy_by_behaviour: dict[tuple[str, str], float] = field(default_factory=dict)


def _ref_index(fleet: sim.SimFleet) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    by_key = {m.key: m.index for m in fleet.machines}
    by_id = {m.id: m.index for m in fleet.machines}
    groups = {g.name: g.index for g in fleet.groups}
    return by_key, by_id, groups


def _prior_idle_busy(fleet: sim.SimFleet, rows: Sequence[int]) -> np.ndarray:
    """(len(rows),) minutes without a busy minute just before the test window (the training window's tail)."""
    tail = fleet.busy[list(rows), : fleet.train_minutes]
    return np.where(tail.any(axis=1), np.argmax(tail[:, ::-1], axis=1), tail.shape[1]).astype(np.int64)


def _describe(m: sim.Machine) -> str:
    return f"{m.name} ({m.behaviour}{'/' + m.variant if m.variant else ''}, {m.instance_type}, {m.region})"


def score_ours(view: View, types: Types, recs: Sequence[Any]) -> Scored:
    fleet = view.fleet
    n = len(fleet.machines)
    by_key, by_id, group_ix = _ref_index(fleet)
    kinds = {k: KindTotals() for k in KINDS}
    per_instance = np.zeros(n)
    per_group = np.zeros(len(fleet.groups))
    findings: list[str] = []
    mine: dict[int, dict[str, Any]] = defaultdict(dict)
    group_recs = []
    for rec in recs:
        kind = rec.kind.value
        if kind not in kinds:
            kinds[kind] = KindTotals()
        kinds[kind].recs += 1
        kinds[kind].predicted += float(rec.monthly_savings_usd)
        if kind == "autoscale":
            if rec.ref.id in group_ix:
                group_recs.append(rec)
            else:
                findings.append(f"autoscale on unknown group {rec.ref.id}: not scored")
            continue
        i = by_key.get(rec.ref.key)
        if i is None:
            findings.append(f"{kind} on unknown resource {rec.ref.key}: not scored")
            continue
        if kind in mine[i]:
            findings.append(f"two {kind} recommendations on {_describe(fleet.machines[i])}: the second is not scored")
            continue
        mine[i][kind] = rec
    # precedence: stop, then consolidate; schedule and rightsize compose
    for i, got in mine.items():
        for loser in [k for k in got if k != "stop"] if "stop" in got else \
                ([k for k in got if k != "consolidate"] if "consolidate" in got else []):
            findings.append(f"{loser} on {_describe(fleet.machines[i])} superseded by "
                            f"{'stop' if 'stop' in got else 'consolidate'}: scored 0")
            del got[loser]

    busy_by: dict[tuple[str, str], float] = defaultdict(float)

    def add(kind: str, rows: Sequence[int], res: PolicyResult, saved: np.ndarray, cost: np.ndarray) -> None:
        t = kinds[kind]
        for j, i in enumerate(rows):
            if res.busy_stops[j]:
                busy_by[(kind, fleet.machines[i].behaviour)] += float(res.busy_stops[j])
        members = ~view.standalone[list(rows)] if len(rows) else np.zeros(0, dtype=bool)
        saved = np.where(members, 0.0, saved)
        t.saved += float(saved.sum())
        t.cost += float(cost.sum())
        t.stops += float(res.stops.sum())
        t.busy_stops += float(res.busy_stops.sum())
        t.lost_gpu_h += float(res.lost_gpu_h.sum())
        np.add.at(per_instance, list(rows), saved - cost)

    # stop
    rows = [i for i, got in mine.items() if "stop" in got]
    if rows:
        res = score_off(np.ones((len(rows), view.t), dtype=bool), view.busy[rows], view.active[rows], view.restart[rows],
                        view.lost_work[rows])
        saved, cost = res.usd(view.price_min[rows], view.restart[rows], view.lost_work[rows])
        add("stop", rows, res, saved, cost)
        for j, i in enumerate(rows):
            m = fleet.machines[i]
            if res.busy_stops[j] or res.wakes[j]:
                off_h = res.off_min[j] / 60
                findings.append(f"stop on {_describe(m)}: {'BUSY STOP, ' if res.busy_stops[j] else ''}"
                                f"work came back after {off_h:.1f} h of the {view.t / 60:.0f} h test window")
            if not view.standalone[i]:
                findings.append(f"stop on group member {_describe(m)}: the group replaces it, saves nothing")

    # schedule (keep the off grid for a composed right-size)
    rows = [i for i, got in mine.items() if "schedule" in got]
    sched_off: dict[int, np.ndarray] = {}
    if rows:
        intent = np.stack([~week_on(mine[i]["schedule"].action.params["on"])[view.minute_of_week] for i in rows])
        # a stop guard postpones each scheduled stop until the instance has been idle that long (per instance:
        # the guard is a recommendation's parameter); the postponed minutes are paid, not saved
        guard = np.array([int(mine[i]["schedule"].action.params.get("stop_when_idle_for_minutes") or 0) for i in rows])
        if guard.any():
            intent = guarded_intent(intent, view.busy[rows], guard, _prior_idle_busy(fleet, rows))
        res = score_off(intent, view.busy[rows], view.active[rows], view.restart[rows], view.lost_work[rows], keep_off=True)
        price = view.price_min[rows].copy()
        for j, i in enumerate(rows):
            sched_off[i] = res.off[j]
        saved, cost = res.usd(price, view.restart[rows], view.lost_work[rows])
        # a composed right-size makes off minutes save the new price: corrected in the right-size part
        add("schedule", rows, res, saved, cost)
        for j, i in enumerate(rows):
            m = fleet.machines[i]
            if res.busy_stops[j] or res.wakes[j] > 1:
                findings.append(f"schedule on {_describe(m)}: {int(res.busy_stops[j])} busy stops of "
                                f"{int(res.stops[j])}, {int(res.wakes[j])} unplanned restarts")
            if not view.standalone[i]:
                findings.append(f"schedule on group member {_describe(m)}: the group replaces a stopped member, "
                                "saves nothing")

    # rightsize
    for i, got in mine.items():
        if "rightsize" not in got:
            continue
        rec, m, t = got["rightsize"], fleet.machines[i], kinds["rightsize"]
        params = rec.action.params if rec.action else {}
        to_type = params.get("to_type")
        new = types.facts.get(str(to_type))
        new_price = types.price(m.region, str(to_type), m.pricing) if new else None
        if new is None or new_price is None:
            findings.append(f"rightsize on {_describe(m)} to unknown or unpriced type {to_type}: not scored")
            continue
        hard, soft, lost = fit(view, i, new, types.slowdown(m.gpu_model, new.gpu_model))
        first_hard = int(np.argmax(hard)) if hard.any() else view.t
        kept = np.arange(view.t) < first_hard
        on = ~sched_off[i] if i in sched_off else np.ones(view.t, dtype=bool)
        old_p, new_p = m.hourly_usd / 60, new_price / 60
        # attribution as the oracle's: the right-size saves (old - new) on every minute it is kept; a composed
        # schedule's off minutes then save the new price only (its part was scored at the old one above)
        saved = float((old_p - new_p) * kept.sum())
        if i in sched_off:
            overlap = float((old_p - new_p) * (~on & kept).sum())
            kinds["schedule"].saved -= overlap
            per_instance[i] -= overlap
        slow_gpu_h = float((lost * (soft & kept & on)).sum())
        moved_back = first_hard < view.t
        cost = (1 + moved_back) * m.restart_min * old_p + slow_gpu_h * new_price / max(1, new.gpus)
        lost_gpu_h = slow_gpu_h + moved_back * m.restart_min / 60 * max(1, int(view.active[i, min(first_hard, view.t - 1)]))
        if not view.standalone[i]:
            saved = 0.0
        t.saved += saved
        t.cost += cost
        t.lost_gpu_h += lost_gpu_h
        t.short_min += float((hard | soft).sum())
        per_instance[i] += saved - cost
        if hard.any() or soft.any():
            findings.append(f"rightsize {m.instance_type} -> {to_type} on {_describe(m)}: short {int((hard | soft).sum())} "
                            f"min ({'moved back after ' + format(first_hard / 60, '.1f') + ' h' if hard.any() else 'too slow'})")

    # consolidate
    bins: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, got in mine.items():
        if "consolidate" not in got:
            continue
        rec, m = got["consolidate"], fleet.machines[i]
        onto = dict(rec.evidence.get("move_onto") or {})
        h = by_id.get(str(onto.get("resource_id") or onto.get("id") or ""))
        if h is None:
            h = by_key.get(str(onto.get("key") or ""))
        if h is None:
            findings.append(f"consolidate on {_describe(m)}: host {onto} not found, not scored")
            continue
        if "gpu" in onto:
            gpu = int(onto["gpu"])
        else:
            rows_h = view.gpu_rows(h)
            gpu = int(np.argmin(fleet.gpu_util[rows_h, : fleet.train_minutes].mean(axis=1)))
        bins[(h, gpu)].append(i)
    for (h, gpu), donors in bins.items():
        host = fleet.machines[h]
        t = kinds["consolidate"]
        u_h, m_h = view.gpu_series(h, gpu)
        u, mem = u_h.astype(np.float64).copy(), m_h.astype(np.float64).copy()
        cpu = view.cpu_vcpu[h].astype(np.float64).copy()
        for d in donors:
            u_d, m_d = view.gpu_series(d)
            u += u_d * types.slowdown(fleet.machines[d].gpu_model, host.gpu_model)
            mem += m_d
            cpu += view.cpu_vcpu[d]
        if any(k in mine.get(h, {}) for k in ("stop", "consolidate")):
            findings.append(f"consolidate onto {_describe(host)}, which is itself recommended to "
                            f"{'stop' if 'stop' in mine[h] else 'consolidate'}")
        hard = mem > host.gpu_memory_mib
        soft = (u > 100) | (cpu > host.vcpu)
        first_hard = int(np.argmax(hard)) if hard.any() else view.t
        kept = first_hard
        lost_gpu_h = float((np.maximum(0, u - 100) / 100 / 60)[:kept].sum())
        t.short_min += float((hard | soft).sum())
        t.lost_gpu_h += lost_gpu_h
        for d in donors:
            p = fleet.machines[d].hourly_usd / 60
            saved = p * kept if view.standalone[d] else 0.0
            cost = fleet.machines[d].restart_min * p * (1 + (first_hard < view.t)) + \
                lost_gpu_h / len(donors) * host.hourly_usd / max(1, host.gpus)
            t.saved += saved
            t.cost += cost
            per_instance[d] += saved - cost
        if hard.any() or soft.any():
            findings.append(f"consolidate {len(donors)} onto {_describe(host)} GPU {gpu}: short {int((hard | soft).sum())} min"
                            f"{' (memory: moved back after ' + format(first_hard / 60, '.1f') + ' h)' if hard.any() else ''}")

    # autoscale
    feats = _cron_feats(fleet)
    before = 7 * 1440
    for rec in group_recs:
        g = fleet.groups[group_ix[rec.ref.id]]
        t = kinds["autoscale"]
        try:
            cap_ext = scheduled_capacity(rec.action.params if rec.action else {}, feats, g.desired)
        except (ValueError, KeyError, TypeError) as exc:
            findings.append(f"autoscale on {g.name}: params not understood ({exc}), not scored")
            continue
        serving = sliding(cap_ext, g.warmup_min, "min", forward=False)[before:]
        cap = cap_ext[before:]
        need = np.ceil(fleet.demand[g.index, fleet.train_minutes :] - 1e-6)
        short = serving < need
        lost_gpu_h = float(np.maximum(0, need - serving).sum() * g.gpus_per_member / 60)
        saved = (g.desired * view.t - cap.sum()) * g.hourly_usd / 60
        cost = lost_gpu_h * g.hourly_usd / max(1, g.gpus_per_member)
        t.saved += saved
        t.cost += cost
        t.short_min += float(short.sum())
        t.lost_gpu_h += lost_gpu_h
        per_group[g.index] += saved - cost
        if short.any():
            findings.append(f"autoscale on {g.name} ({g.pattern}): {int(short.sum())} capacity-short minutes, "
                            f"{lost_gpu_h:.1f} GPU-h lost")
    acted = {k: {i for i, got in mine.items() if k in got} for k in kinds}
    acted["autoscale"] = {group_ix[r.ref.id] for r in group_recs}
    return Scored(kinds, per_instance, per_group, findings, acted, dict(busy_by))


def _cron_feats(fleet: sim.SimFleet) -> dict[str, np.ndarray]:
    """Calendar fields of the week before the test window plus the test window (cron's dow: Sunday = 0)."""
    import pandas as pd

    idx = pd.date_range(pd.Timestamp(fleet.as_of) - pd.Timedelta(days=7), periods=7 * 1440 + fleet.test_minutes, freq="min")
    return {"minute": np.asarray(idx.minute), "hour": np.asarray(idx.hour), "dom": np.asarray(idx.day),
            "month": np.asarray(idx.month), "dow": (np.asarray(idx.day_of_week) + 1) % 7}


# --------------------------------------------------------------------------- baselines, scored


def score_baselines(view: View, fleet: sim.SimFleet) -> dict[str, dict[str, Any]]:
    sa = np.flatnonzero(view.standalone)
    out = {}
    res = timeout_policy(view.gidle[sa], view.busy[sa], view.active[sa], view.prior_idle[sa], restart=view.restart[sa],
                         lost=view.lost_work[sa])
    saved, cost = res.usd(view.price_min[sa], view.restart[sa], view.lost_work[sa])
    out["timeout-60min"] = _baseline_row(view, sa, res, saved, cost, predicted=None)
    for name, flags in rule_flags(fleet).items():
        rows = np.flatnonzero(flags)
        res = score_off(np.ones((len(rows), view.t), dtype=bool), view.busy[rows], view.active[rows], view.restart[rows],
                        view.lost_work[rows])
        saved, cost = res.usd(view.price_min[rows], view.restart[rows], view.lost_work[rows])
        predicted = float(view.price_min[rows].sum() * 60 * 730)
        out[name] = _baseline_row(view, rows, res, saved, cost, predicted)
    return out


def _baseline_row(view: View, rows: np.ndarray, res: PolicyResult, saved: np.ndarray, cost: np.ndarray,
                  predicted: float | None) -> dict[str, Any]:
    per = np.zeros(len(view.fleet.machines))
    np.add.at(per, rows, saved - cost)
    return {"acted_on": int((res.stops > 0).sum()), "predicted": predicted, "net": float((saved - cost).sum()),
            "stops": float(res.stops.sum()), "busy_stops": float(res.busy_stops.sum()),
            "lost_gpu_h": float(res.lost_gpu_h.sum()), "per_instance": per}


# --------------------------------------------------------------------------- the run


def run(seed: int, instances: int, train_days: int, test_days: int, oracle_check: bool = False) -> dict[str, Any]:
    from recommenders import Settings, analyze

    timings = {}
    t0 = time.perf_counter()
    fleet = sim.simulate(instances, seed, train_days=train_days, test_days=test_days)
    timings["simulate_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    snapshot = sim.snapshot(fleet)
    timings["snapshot_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    analysis = analyze(snapshot, Settings())
    timings["analyze_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    view = View.of(fleet)
    types = Types()
    oracle = oracles(view, types)
    ours = score_ours(view, types, analysis.recommendations)
    baselines = score_baselines(view, fleet)
    timings["score_s"] = time.perf_counter() - t0
    summary = _summary(fleet, view, oracle, ours, baselines, analysis, timings, seed, instances, train_days, test_days)
    if oracle_check:
        check = score_ours(view, types, oracle_plan(view, oracle))
        summary["oracle_check"] = {k: {"oracle": summary["kinds"][k]["oracle"], "scored": view.month(t.net),
                                       "busy_stops": t.busy_stops}
                                   for k, t in check.kinds.items() if k != "autoscale"}
    return summary


def _row(view: View, t: KindTotals, oracle_usd: float, acted_oracle_usd: float) -> dict[str, Any]:
    mo = view.month
    return {"recs": t.recs, "oracle": mo(oracle_usd), "realized": mo(t.net),
            "share": t.net / oracle_usd if oracle_usd > 0 else None,
            "acted_share": t.net / acted_oracle_usd if acted_oracle_usd > 0 else None,
            "predicted": t.predicted, "stops": t.stops, "busy_stops": t.busy_stops,
            "busy_per_100": 100 * t.busy_stops / t.stops if t.stops else None,
            "lost_gpu_h": t.lost_gpu_h, "short_min": t.short_min}


def _summary(fleet: sim.SimFleet, view: View, oracle: Oracle, ours: Scored, baselines: dict[str, dict[str, Any]],
             analysis: Any, timings: dict[str, float], seed: int, instances: int, train_days: int,
             test_days: int) -> dict[str, Any]:
    mo = view.month
    oracle_kind = {k: float(oracle.by_kind[k].sum()) for k in KINDS}
    oracle_kind["autoscale"] = float(np.maximum(oracle.autoscale, 0).sum())

    def acted_oracle(kind: str, idx: set[int]) -> float:
        if kind == "autoscale":
            return float(np.maximum(oracle.autoscale[sorted(idx)], 0).sum()) if idx else 0.0
        return float(oracle.best[sorted(idx)].sum()) if idx else 0.0

    kinds = {k: _row(view, t, oracle_kind.get(k, 0.0), acted_oracle(k, ours.acted.get(k, set())))
             for k, t in ours.kinds.items()}
    total = KindTotals(recs=sum(t.recs for t in ours.kinds.values()),
                       predicted=sum(t.predicted for t in ours.kinds.values()),
                       saved=sum(t.saved for t in ours.kinds.values()), cost=sum(t.cost for t in ours.kinds.values()),
                       stops=sum(t.stops for t in ours.kinds.values()),
                       busy_stops=sum(t.busy_stops for t in ours.kinds.values()),
                       lost_gpu_h=sum(t.lost_gpu_h for t in ours.kinds.values()),
                       short_min=sum(t.short_min for t in ours.kinds.values()))
    acted_all = set().union(*(v for k, v in ours.acted.items() if k != "autoscale")) if ours.acted else set()
    total_oracle = sum(oracle_kind.values())
    kinds["total"] = _row(view, total, total_oracle,
                          acted_oracle("stop", acted_all) + acted_oracle("autoscale", ours.acted.get("autoscale", set())))
    base = {}
    for name, b in baselines.items():
        t = KindTotals(recs=b["acted_on"], predicted=b["predicted"] or 0.0, saved=b["net"], stops=b["stops"],
                       busy_stops=b["busy_stops"], lost_gpu_h=b["lost_gpu_h"])
        row = _row(view, t, total_oracle, 0.0)
        row["predicted"], row["short_min"] = b["predicted"], None
        base[name] = row
    best_name = max(baselines, key=lambda k: baselines[k]["net"])
    best = baselines[best_name]
    # what a busy stop would have to cost (on top of W) for ours to reach the ratio target against the best baseline
    gap = TARGET_BASELINE_RATIO * best["net"] - total.net
    denom = TARGET_BASELINE_RATIO * best["busy_stops"] - total.busy_stops
    break_even = gap / denom if gap > 0 and denom > 0 else None

    by_behaviour = {}
    for beh in sorted({m.behaviour for m in fleet.machines}):
        idx = np.array([m.index for m in fleet.machines if m.behaviour == beh])
        row = {"instances": len(idx), "cost": mo(float(view.price_min[idx].sum() * view.t)),
               "oracle": mo(float(oracle.best[idx].sum())), "ours": mo(float(ours.per_instance[idx].sum())),
               "ceiling": mo(float(oracle.ceiling[idx].sum())),
               "oracle_by_kind": {k: mo(float(oracle.by_kind[k][idx].sum())) for k in KINDS if oracle.by_kind[k][idx].any()}}
        for name, bl in baselines.items():
            row[name] = mo(float(bl["per_instance"][idx].sum()))
        by_behaviour[beh] = row
    for g in fleet.groups:
        by_behaviour[f"asg:{g.name}"] = {"instances": len(g.members), "cost": mo(g.desired * view.t * g.hourly_usd / 60),
                                         "oracle": mo(float(oracle.autoscale[g.index])),
                                         "ours": mo(float(ours.per_group[g.index])), "ceiling": None,
                                         **{name: 0.0 for name in baselines}}
    targets = {
        "oracle_share": {"target": TARGET_ORACLE_SHARE, "value": kinds["total"]["share"],
                         "pass": kinds["total"]["share"] is not None and kinds["total"]["share"] >= TARGET_ORACLE_SHARE},
        "busy_stops": {"target": 0, "value": total.busy_stops, "pass": total.busy_stops == 0},
        "vs_best_baseline": {"target": TARGET_BASELINE_RATIO, "baseline": best_name,
                             "value": total.net / best["net"] if best["net"] > 0 else None,
                             "pass": best["net"] <= 0 or total.net >= TARGET_BASELINE_RATIO * best["net"],
                             "break_even_usd_per_busy_stop": break_even},
    }
    return {
        "config": {"seed": seed, "instances": instances, "group_members": sum(len(g.members) for g in fleet.groups),
                   "groups": len(fleet.groups), "gpus": int(len(fleet.gpu_owner)), "train_days": train_days,
                   "test_days": test_days, "as_of": fleet.as_of.isoformat(),
                   "restart_min": {"training": sim.TRAINING_RESTART_MIN, "other": sim.RESTART_MIN},
                   "lost_work_min": {"jobs and sessions": sim.LOST_WORK_MIN, "serving": 0},
                   "busy_window_min": BUSY_WINDOW_MIN,
                   "fleet_cost_per_month": mo(float(view.price_min.sum() * view.t)),
                   "recommendation_kinds": sorted({r.kind.value for r in analysis.recommendations})},
        "kinds": kinds, "baselines": base, "by_behaviour": by_behaviour,
        "ceiling": mo(float(oracle.ceiling.sum())),
        "busy_stops_by_behaviour": ours.busy_by_behaviour,
        "realism": {"fleet": sim.realism(fleet, "train"), "alibaba": sim.ALIBABA},
        "targets": targets, "findings": ours.findings, "timings": timings,
        "analysis_gaps": len(analysis.gaps),
    }


# --------------------------------------------------------------------------- output


def _money(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


def _num(v: float | None, digits: int = 0) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def _line(name: str, r: dict[str, Any]) -> str:
    return (f"{name:<16}{r['recs']:>5}{_money(r['oracle']):>11}{_money(r['realized']):>11}{_pct(r['share']):>8}"
            f"{_pct(r.get('acted_share')):>8}{_money(r['predicted']):>11}{_num(r['stops']):>7}"
            f"{_num(r['busy_per_100'], 1):>9}{_num(r['lost_gpu_h'], 0):>9}{_num(r['short_min']):>9}")


def render(s: dict[str, Any], max_findings: int = 30) -> str:
    c = s["config"]
    r_min = c["restart_min"]
    lines = [
        f"Savings vs hindsight oracle: seed {c['seed']}, {c['instances']} standalone instances + {c['groups']} ASGs "
        f"({c['group_members']} members), {c['gpus']} GPUs, ${c['fleet_cost_per_month']:,.0f}/month; "
        f"train {c['train_days']} d -> test {c['test_days']} d from {c['as_of']}",
        f"restart R = {r_min['other']} min ({r_min['training']} for training boxes); busy stop = busy within "
        f"{c['busy_window_min']} min; a stop while busy loses W = {c['lost_work_min']['jobs and sessions']} min "
        "(0 for serving); money in $/month (730 h)",
        "",
    ]
    head = (f"{'':<16}{'recs':>5}{'oracle':>11}{'realized':>11}{'%orcl':>8}{'%acted':>8}{'predicted':>11}"
            f"{'stops':>7}{'busy/100':>9}{'lostGPUh':>9}{'shortmin':>9}")
    lines += [head, "-" * len(head)]
    order = [*KINDS, *[k for k in s["kinds"] if k not in KINDS and k != "total"]]
    lines += [_line(k, s["kinds"][k]) for k in order if k in s["kinds"]]
    lines += ["-" * len(head), _line("total", s["kinds"]["total"]), "",
              "baselines (oracle = all kinds; 'recs' = instances acted on; predicted = hourly price x 730 of those)",
              "-" * len(head)]
    lines += [_line(name, r) for name, r in s["baselines"].items()]
    lines.append(f"idle ceiling (a clairvoyant stop of every idle gap > R in the test window): ${s['ceiling']:,.0f}")
    names = list(s["baselines"])
    lines += ["", "by behaviour, net realized $/month",
              f"{'':<22}{'n':>4}{'cost':>10}{'oracle':>10}{'ceiling':>10}{'ours':>10}" + "".join(f"{n[:14]:>15}" for n in names)]
    for b, r in s["by_behaviour"].items():
        lines.append(f"{b:<22}{r['instances']:>4}{_money(r['cost']):>10}{_money(r['oracle']):>10}{_money(r['ceiling']):>10}"
                     f"{_money(r['ours']):>10}" + "".join(f"{_money(r[n]):>15}" for n in names))
    if s["busy_stops_by_behaviour"]:
        lines += ["", "our busy stops by kind and behaviour: " + ", ".join(
            f"{k} on {b}: {int(v)}" for (k, b), v in sorted(s["busy_stops_by_behaviour"].items(), key=lambda x: -x[1]))]
    f, a = s["realism"]["fleet"], s["realism"]["alibaba"]
    lines += ["", f"realism (training window, GPU-minutes): {f['zero_fraction']:.1%} at 0 % (Alibaba {a['zero_fraction']:.1%}); "
                  f"mean {f['mean_util_pct']:.1f} % ({a['mean_util_pct']:.1f} %); median instance mean "
                  f"{f['median_instance_mean_util_pct']:.1f} % ({a['median_instance_mean_util_pct']:.1f} %); instances with "
                  f"mean < 5 %: {f['instances_mean_below_5pct']:.0%} ({a['instances_mean_below_5pct']:.0%})"]
    if "oracle_check" in s:
        lines += ["", "oracle check (the oracle's own plan through the same scorer): " + ", ".join(
            f"{k} {_money(v['scored'])} of {_money(v['oracle'])}" for k, v in s["oracle_check"].items())]
    t = s["targets"]
    ratio, be = t["vs_best_baseline"]["value"], t["vs_best_baseline"]["break_even_usd_per_busy_stop"]
    lines += [
        "",
        f"target >= {t['oracle_share']['target']:.0%} of oracle overall: {_pct(t['oracle_share']['value'])}  "
        f"{'PASS' if t['oracle_share']['pass'] else 'FAIL'}",
        f"target 0 busy stops: {t['busy_stops']['value']:.0f}  {'PASS' if t['busy_stops']['pass'] else 'FAIL'}",
        f"target >= {t['vs_best_baseline']['target']}x the best baseline ({t['vs_best_baseline']['baseline']}): "
        f"{'-' if ratio is None else format(ratio, '.2f') + 'x'}  {'PASS' if t['vs_best_baseline']['pass'] else 'FAIL'}"
        + (f" (it would pass if each busy stop cost ${be:,.0f} more than W)" if be is not None else ""),
        f"recommendation kinds produced: {', '.join(c['recommendation_kinds']) or 'none'}",
    ]
    if s["findings"]:
        lines += ["", f"findings ({len(s['findings'])}, first {min(max_findings, len(s['findings']))}):"]
        lines += [f"  - {x}" for x in s["findings"][:max_findings]]
    lines += ["", "time: " + ", ".join(f"{k[:-2]} {v:.1f} s" for k, v in s["timings"].items())]
    return "\n".join(lines)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {(" on ".join(k) if isinstance(k, tuple) else k): _jsonable(v) for k, v in obj.items() if k != "per_instance"}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--instances", type=int, default=300, help="standalone instances (groups come on top)")
    parser.add_argument("--train-days", type=int, default=14)
    parser.add_argument("--test-days", type=int, default=14)
    parser.add_argument("--json", action="store_true", help="machine-readable output instead of the table")
    parser.add_argument("--oracle-check", action="store_true",
                        help="also score the oracle's own plan with the same scorer (should match the oracle)")
    parser.add_argument("--no-money", action="store_true", help="skip the spot and commitment rows (bench/money.py)")
    args = parser.parse_args(argv)
    summary = run(args.seed, args.instances, args.train_days, args.test_days, args.oracle_check)
    money = None if args.no_money else _money_bench()
    if money is not None:
        summary["money"] = money.run(args.seed)
    if args.json:
        json.dump(_jsonable(summary), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render(summary) + ("\n\n" + money.render(summary["money"]) if money is not None else ""))
    return 0


def _money_bench() -> Any:
    """``bench/money.py`` (spot and commitments vs their oracles), importable when this file runs as a script."""
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    from bench import money

    return money


if __name__ == "__main__":
    sys.exit(main())

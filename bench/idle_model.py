"""Benchmark of the vectorized idle model (``recommenders.idle.classify``) on a synthetic fleet.

    python bench/idle_model.py [--instances 1000 10000] [--days 14] [--period-minutes 5] [--seed 0]

For each fleet size a fresh child process (so that its max RSS is its own) builds a fleet of
GPU instances with 1, 4 or 8 GPUs, each with a behaviour (idle, busy, office hours, bursty),
turns it into the canonical long usage frame (one row per GPU per period for GPU utilization,
plus instance-level CPU, network-in and network-out rows; a few percent of samples missing at
random), then calls ``classify`` twice:

1. untraced, timed with ``time.perf_counter`` (frame construction excluded): rows/s, where a row
   is one row of the usage frame, and instance-periods/s;
2. under ``tracemalloc`` (numpy and pandas buffers are traced): peak MiB above the baseline taken
   just before the call. Tracing slows the call, so the timing comes from run 1 only.

It also reports the process RSS just before ``classify``, the peak RSS during the untraced call
(the kernel's RSS high-water mark is reset through ``/proc/self/clear_refs`` where Linux allows)
and the child process's lifetime max RSS from ``resource.getrusage`` (this includes building the
frame). A child that dies (e.g. killed for memory) is reported, not fatal.

Everything is generated with numpy over whole (instances x periods) grids: there is no Python
loop over samples.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource as rusage
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from providers.model import (
    INSTANCE_LEVEL,
    Accelerators,
    Cloud,
    Metric,
    PricingModel,
    Resource,
    ResourceRef,
    ResourceState,
    Usage,
    Window,
    usage_frame,
)
from recommenders.idle import BUSY, IDLE, UNKNOWN, IdleSettings, classify

#: A fixed Monday 10:00 UTC so that runs are reproducible.
END = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
GPU_COUNTS = np.array([1, 4, 8])
METRICS = [m.value for m in Metric]
GPU_MIX = np.array([0.60, 0.25, 0.15])
INSTANCE_TYPES = {1: ("g5.2xlarge", "A10G", 22.35), 4: ("g5.12xlarge", "A10G", 22.35), 8: ("p4d.24xlarge", "A100", 40.0)}
BEHAVIOURS = ("idle", "busy", "office-hours", "bursty")
BEHAVIOUR_MIX = np.array([0.20, 0.30, 0.25, 0.25])
REGIONS = np.array(["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1"], dtype=object)
ACCOUNT = "111122223333"
MIB = 1024 * 1024


@dataclass
class Fleet:
    resources: list[Resource]
    usage: Usage
    window: Window
    n_gpus: int
    n_steps: int
    behaviour: np.ndarray  # (R,) index into BEHAVIOURS


# --------------------------------------------------------------------------- synthetic fleet


def _alternating(rng: np.random.Generator, n_rows: int, n_steps: int, mean_busy: float, mean_idle: float) -> np.ndarray:
    """(n_rows, n_steps) bool: an alternating renewal process (bursty jobs), built without loops over time."""
    if n_rows == 0:
        return np.zeros((0, n_steps), dtype=bool)
    cycle = mean_busy + mean_idle
    k = 2 * int(np.ceil(2.0 * n_steps / cycle)) + 8  # enough alternations to cover the window, with margin
    lengths = np.empty((n_rows, k))
    lengths[:, 0::2] = rng.exponential(mean_idle, (n_rows, k // 2))
    lengths[:, 1::2] = rng.exponential(mean_busy, (n_rows, k - k // 2))
    lengths = np.maximum(1, np.rint(lengths)).astype(np.int64)
    lengths[:, 0] = rng.integers(0, int(mean_idle) + 1, n_rows)  # random phase at the window's start
    bounds = np.cumsum(lengths, axis=1)
    row = np.repeat(np.arange(n_rows), k)
    pos = bounds.ravel()
    inside = pos < n_steps
    toggles = np.bincount(row[inside] * n_steps + pos[inside], minlength=n_rows * n_steps).reshape(n_rows, n_steps)
    return (np.cumsum(toggles, axis=1, dtype=np.int32) & 1).astype(bool)  # odd number of toggles so far: busy


def _busy_grid(rng: np.random.Generator, behaviour: np.ndarray, times: pd.DatetimeIndex, steps_per_hour: int) -> np.ndarray:
    """(R, T) bool ground truth: the instance is running work in that period."""
    n_rows, n_steps = len(behaviour), len(times)
    step = np.arange(n_steps)
    busy = np.zeros((n_rows, n_steps), dtype=bool)

    # busy (and idle instances before they were forgotten): training with a 10-minute checkpoint
    # write every 2 hours, i.e. short idle dips the model must count as busy.
    cycle = 2 * steps_per_hour
    dip = max(1, steps_per_hour // 6)
    phase = rng.integers(0, cycle, n_rows)
    training = ((step[None, :] + phase[:, None]) % cycle) >= dip

    sel = behaviour == BEHAVIOURS.index("busy")
    busy[sel] = training[sel]

    # idle: half never used in the window, half trained and then were forgotten.
    sel = behaviour == BEHAVIOURS.index("idle")
    cut = np.where(rng.random(n_rows) < 0.5, 0, rng.integers(0, int(0.6 * n_steps) + 1, n_rows))
    busy[sel] = training[sel] & (step[None, :] < cut[sel, None])

    # office hours: weekdays, a 9-hour day starting 06-12 UTC (teams in different time zones).
    sel = behaviour == BEHAVIOURS.index("office-hours")
    hour = np.asarray(times.hour)
    weekday = np.asarray(times.day_of_week) < 5
    start = rng.integers(6, 13, n_rows)
    day = (hour[None, :] >= start[:, None]) & (hour[None, :] < start[:, None] + 9) & weekday[None, :]
    busy[sel] = day[sel]

    # bursty: batch jobs of ~1.5 h at random times, ~5 h apart on average.
    sel = behaviour == BEHAVIOURS.index("bursty")
    busy[sel] = _alternating(rng, int(sel.sum()), n_steps, 1.5 * steps_per_hour, 5.0 * steps_per_hour)
    return busy


def build_fleet(n_instances: int, days: float, period_minutes: int, seed: int, missing: float) -> Fleet:
    rng = np.random.default_rng(seed)
    period = timedelta(minutes=period_minutes)
    window = Window.ending(END, timedelta(days=days), align=period)
    n_steps = int(window.duration / period)
    times = pd.date_range(window.start, periods=n_steps, freq=period)
    steps_per_hour = max(1, int(timedelta(hours=1) / period))

    gpus = rng.choice(GPU_COUNTS, n_instances, p=GPU_MIX)
    behaviour = rng.choice(len(BEHAVIOURS), n_instances, p=BEHAVIOUR_MIX)
    regions = REGIONS[rng.integers(0, len(REGIONS), n_instances)]
    resources = []
    for i in range(n_instances):  # one object per instance (not per sample), as an inventory would
        itype, model, mem = INSTANCE_TYPES[int(gpus[i])]
        resources.append(Resource(
            ref=ResourceRef(Cloud.AWS, ACCOUNT, regions[i], f"i-{i:017x}"),
            instance_type=itype, state=ResourceState.RUNNING, pricing_model=PricingModel.ON_DEMAND,
            accelerators=Accelerators(model, int(gpus[i]), mem), tags={"Name": f"bench-{i}"}))
    keys = np.array([r.ref.key for r in resources], dtype=object)

    busy = _busy_grid(rng, behaviour, times, steps_per_hour)  # (R, T)

    # Per-GPU series: GPU g of instance i, series-major (instance, gpu), time ascending, as a collector
    # concatenates its metric queries. On 20 % of busy-ish multi-GPU boxes only GPU 0 works.
    owner = np.repeat(np.arange(n_instances), gpus)
    gpu_index = np.arange(len(owner)) - np.repeat(np.cumsum(gpus) - gpus, gpus)
    one_busy = (gpus > 1) & (rng.random(n_instances) < 0.2)
    gpu_busy = busy[owner] & ~(one_busy[owner] & (gpu_index > 0))[:, None]  # (G, T)

    # Sample counts per series first, so that each column is allocated once at full length.
    gpu_present = rng.random(gpu_busy.shape, dtype=np.float32) >= missing
    inst_present = [rng.random(busy.shape, dtype=np.float32) >= missing for _ in range(3)]  # cpu, net in, net out
    gpu_n = gpu_present.sum(axis=1)
    inst_n = [p.sum(axis=1) for p in inst_present]
    n_rows = int(gpu_n.sum() + sum(int(n.sum()) for n in inst_n))

    col_resource = np.empty(n_rows, dtype=np.int32)  # codes into keys: categories without string work
    col_gpu = np.empty(n_rows, dtype=np.int16)
    col_metric = np.empty(n_rows, dtype=np.int8)  # codes into METRICS
    col_ts = np.empty(n_rows, dtype="datetime64[ns]")
    col_value = np.empty(n_rows, dtype=np.float64)
    stamps = times.tz_localize(None).as_unit("ns").to_numpy()

    def fill(at: int, present: np.ndarray, counts: np.ndarray, owner_of_series: np.ndarray, gpu_col: np.ndarray | int,
             metric: Metric, values: np.ndarray) -> int:
        n = int(counts.sum())
        block = slice(at, at + n)
        col_resource[block] = np.repeat(owner_of_series, counts)
        col_gpu[block] = np.repeat(gpu_col, counts) if isinstance(gpu_col, np.ndarray) else gpu_col
        col_metric[block] = METRICS.index(metric.value)
        col_ts[block] = np.broadcast_to(stamps, present.shape)[present]
        col_value[block] = values[present]
        return at + n

    # GPU utilization (percent, the period's maximum): busy 40-100, idle mostly 0 with the odd 1-3 %.
    u = rng.random(gpu_busy.shape)
    gpu_util = np.where(gpu_busy, 40.0 + 60.0 * u, np.where(u < 0.75, 0.0, np.floor(1.0 + 3.0 * (u - 0.75) / 0.25)))
    del u
    at = fill(0, gpu_present, gpu_n, owner, gpu_index, Metric.GPU_UTIL, gpu_util)
    del gpu_util, gpu_busy, gpu_present

    for present, counts, metric, lo_hi in zip(
        inst_present, inst_n, (Metric.CPU_UTIL, Metric.NET_IN, Metric.NET_OUT),
        (((20.0, 60.0), (0.3, 2.5)), ((5e6, 5e7), (2e3, 2e4)), ((1e6, 1e7), (1e3, 1e4))), strict=True):
        (b_lo, b_hi), (i_lo, i_hi) = lo_hi
        u = rng.random(busy.shape)
        values = np.where(busy, b_lo + (b_hi - b_lo) * u, i_lo + (i_hi - i_lo) * u)
        del u
        at = fill(at, present, counts, np.arange(n_instances), INSTANCE_LEVEL, metric, values)
        del values
    assert at == n_rows
    del inst_present, busy
    gc.collect()

    frame = usage_frame(pd.Categorical.from_codes(col_resource, categories=pd.Index(keys)), col_gpu,
                        pd.Categorical.from_codes(col_metric, categories=METRICS),
                        pd.DatetimeIndex(col_ts).tz_localize("UTC"), col_value)
    del col_resource, col_gpu, col_metric, col_ts, col_value
    gc.collect()
    return Fleet(resources, Usage(frame, period), window, int(gpus.sum()), n_steps, behaviour)


# --------------------------------------------------------------------------- measurement


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_rss_peak() -> bool:
    """Reset the kernel's RSS high-water mark (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _maxrss_mib() -> float:
    kib = rusage.getrusage(rusage.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return kib / 1024 if sys.platform != "darwin" else kib / MIB


def measure(n_instances: int, args: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    fleet = build_fleet(n_instances, args.days, args.period_minutes, args.seed, args.missing)
    build_s = time.perf_counter() - t0
    usage, resources, window = fleet.usage, fleet.resources, fleet.window
    settings = IdleSettings()
    n_rows = len(usage.frame)
    frame_mib = usage.frame.memory_usage(index=True, deep=False).sum() / MIB

    gc.collect()
    rss_before = (_status_kib("VmRSS") or 0) / 1024
    reset = _reset_rss_peak()
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        report = classify(usage, resources, window, settings)
        times.append(time.perf_counter() - t0)
        if len(times) < args.repeat:
            del report
            gc.collect()
    classify_s = min(times)
    hwm = _status_kib("VmHWM")
    classify_rss = hwm / 1024 if (reset and hwm) else None

    state = report.state
    shares = {name: float(np.mean(state == code)) for name, code in (("idle", IDLE), ("busy", BUSY), ("unknown", UNKNOWN))}
    n_episodes = len(report.episodes)
    del report, state
    gc.collect()

    peak_mib = None
    if not args.no_trace:
        tracemalloc.start()
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        report = classify(usage, resources, window, settings)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        peak_mib = (peak - base) / MIB
        del report

    return {
        "instances": n_instances,
        "gpus": fleet.n_gpus,
        "periods": fleet.n_steps,
        "rows": n_rows,
        "frame_mib": frame_mib,
        "build_s": build_s,
        "classify_s": classify_s,
        "classify_runs_s": times,
        "rows_per_s": n_rows / classify_s,
        "instance_periods_per_s": n_instances * fleet.n_steps / classify_s,
        "peak_mib": peak_mib,
        "rss_before_mib": rss_before,
        "classify_rss_peak_mib": classify_rss,
        "max_rss_mib": _maxrss_mib(),
        "state_shares": shares,
        "episodes": n_episodes,
    }


# --------------------------------------------------------------------------- driver


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def table(results: list[dict]) -> str:
    head = ("instances", "GPUs", "periods", "usage rows", "frame MiB", "build s", "classify s", "rows/s",
            "inst-periods/s", "peak MiB (tracemalloc)", "RSS before MiB", "RSS peak in classify MiB", "max RSS MiB")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" for _ in head) + "|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['instances']:,} | " + " | ".join(["—"] * (len(head) - 2)) + f" | {r['error']} |")
            continue
        lines.append("| " + " | ".join([
            f"{r['instances']:,}", f"{r['gpus']:,}", f"{r['periods']:,}", f"{r['rows']:,}", f"{r['frame_mib']:,.0f}",
            f"{r['build_s']:.1f}", f"{r['classify_s']:.2f}", f"{r['rows_per_s'] / 1e6:.1f} M",
            f"{r['instance_periods_per_s'] / 1e6:.2f} M", _fmt(r["peak_mib"], ",.0f"), f"{r['rss_before_mib']:,.0f}",
            _fmt(r["classify_rss_peak_mib"], ",.0f"), f"{r['max_rss_mib']:,.0f}"]) + " |")
    return "\n".join(lines)


def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return (f"nproc {os.cpu_count()}, RAM {mem:.1f} GiB, Python {platform.python_version()}, "
            f"numpy {np.__version__}, pandas {pd.__version__}, {platform.system()} {platform.release()}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--instances", type=int, nargs="+", default=[1000, 10000], help="fleet sizes (default: 1000 10000)")
    p.add_argument("--days", type=float, default=14, help="window length in days (default 14)")
    p.add_argument("--period-minutes", type=int, default=5, help="usage period in minutes (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--missing", type=float, default=0.03, help="fraction of samples dropped at random (default 0.03)")
    p.add_argument("--repeat", type=int, default=1, help="untraced classify runs per size; the fastest is reported")
    p.add_argument("--no-trace", action="store_true", help="skip the tracemalloc run")
    p.add_argument("--in-process", action="store_true", help="measure in this process (max RSS then accumulates)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child is not None:
        print(json.dumps(measure(args.child, args)), flush=True)
        return 0

    print(machine(), flush=True)
    print(f"window {args.days:g} days x {args.period_minutes}-minute periods, seed {args.seed}, "
          f"{args.missing:.0%} of samples missing", flush=True)
    results = []
    for n in args.instances:
        if args.in_process:
            res = measure(n, args)
        else:
            child = [sys.executable, os.path.abspath(__file__), "--child", str(n), "--days", str(args.days),
                     "--period-minutes", str(args.period_minutes), "--seed", str(args.seed), "--missing",
                     str(args.missing), "--repeat", str(args.repeat)] + (["--no-trace"] if args.no_trace else [])
            proc = subprocess.run(child, stdout=subprocess.PIPE, text=True)
            if proc.returncode != 0:
                why = "killed (out of memory?)" if proc.returncode in (-9, 137) else f"exit status {proc.returncode}"
                res = {"instances": n, "error": why}
            else:
                res = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(res)
        if "error" in res:
            print(f"{n:,} instances: {res['error']}", flush=True)
        else:
            s = res["state_shares"]
            print(f"{n:,} instances: classify {res['classify_s']:.2f} s, {res['rows_per_s'] / 1e6:.1f} M rows/s, "
                  f"{res['instance_periods_per_s'] / 1e6:.2f} M instance-periods/s; periods idle {s['idle']:.1%}, "
                  f"busy {s['busy']:.1%}, unknown {s['unknown']:.1%}; {res['episodes']:,} idle episodes", flush=True)
    print()
    print(table(results))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": machine(), "args": {k: v for k, v in vars(args).items() if k != "child"},
                       "results": results}, fh, indent=2)
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

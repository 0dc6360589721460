"""The idle model: every period of every GPU instance is busy, idle or unknown — vectorized.

A period is **idle** when every GPU of the instance reported utilization at or below the
threshold (and CPU and network, where published, were low too). A period in which any GPU
said nothing is **unknown**, never idle. Idle stretches shorter than ``min_idle_minutes``
(checkpoint writes, evaluation, data-loader stalls) are counted as busy.

The whole fleet is handled as (instances x periods) numpy grids built from the long usage
frame; nothing loops over samples in Python. See docs/idle-model.md for every default and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd

from providers.model import INSTANCE_LEVEL, Metric, Resource, Usage, Window

UNKNOWN, BUSY, IDLE = 0, 1, 2
SLOTS_PER_WEEK = 168


@dataclass(frozen=True)
class IdleSettings:
    gpu_util_max_pct: float = 5.0
    cpu_util_max_pct: float = 10.0
    net_max_bytes_per_s: float = 1_000_000.0
    min_idle_minutes: int = 60
    min_data_hours: float = 30.0
    #: A sample from a series published less often than the period stands for at most this long.
    max_hold_minutes: int = 180
    #: Unknown stretches at most this long do not split an idle episode (they are not counted idle).
    bridge_minutes: int = 30
    #: An idle episode ending at most this long before the window's end is "idle now".
    now_tolerance_minutes: int = 60
    #: A running instance whose GPUs went silent longer than this before the end is a telemetry gap.
    stale_after_hours: float = 3.0


@dataclass(frozen=True)
class IdleReport:
    """Per-instance results (``per_resource``, indexed by resource key) and the grids behind them."""

    window: Window
    period: timedelta
    keys: list[str]
    times: pd.DatetimeIndex
    state: np.ndarray  # (R, T) int8: UNKNOWN / BUSY / IDLE
    per_resource: pd.DataFrame
    episodes: pd.DataFrame  # idle episodes: key, start, end, idle_hours
    week_busy: np.ndarray  # (R, W, 168) busy periods per week and hour-of-week slot (UTC); week 0 is the latest
    week_idle: np.ndarray  # (R, W, 168) idle periods
    steps_per_hour: float


def quiet_gpu_keys(frame: pd.DataFrame, threshold: float) -> set[str]:
    """Resources with at least one sample in which every reporting GPU was at or below ``threshold``.

    Only these can have an idle period, so only their CPU and network (which can only veto idle)
    are worth reading: the collect stage asks for no others.
    """
    util = frame[frame["metric"] == Metric.GPU_UTIL.value]
    if util.empty:
        return set()
    peak = util.groupby(["resource", "ts"], observed=True)["value"].max()
    return set(peak[peak <= threshold].index.get_level_values(0).astype(str))


@dataclass(frozen=True)
class _Grids:
    """(instances x periods) float32 grids, NaN where nothing stands for the period."""

    gpu_max: np.ndarray
    gpu_count: np.ndarray
    gpu_valid: np.ndarray
    per_gpu_rows: np.ndarray  # (R,) bool: the instance publishes per-GPU series (not only a rollup)
    hold: np.ndarray  # (R,) periods each GPU sample stands for
    cpu: np.ndarray
    net: np.ndarray
    invalid: np.ndarray  # (R,) GPU utilization samples outside 0-100 %, dropped (they stay unknown)


def _build_grids(frame: pd.DataFrame, keys: Sequence[str], window: Window, period: timedelta,
                 max_hold: int) -> _Grids:
    """Scatter the long frame onto grids. The per-row arrays live only in here (they are the big ones)."""
    n_rows, n_steps = len(keys), int(window.duration / period)
    size = n_rows * n_steps
    lookup = np.append(pd.Index(keys).get_indexer(frame["resource"].cat.categories), -1).astype(np.int64)
    rows = lookup[frame["resource"].cat.codes.to_numpy()]  # code -1 (NaN) maps to the -1 slot
    stamps = frame["ts"].dt.as_unit("ns").array.asi8
    t = (stamps - pd.Timestamp(window.start).value) // int(period.total_seconds() * 1_000_000_000)
    flat = rows * n_steps + t
    keep = (rows >= 0) & (t >= 0) & (t < n_steps)
    del stamps, t
    metric = frame["metric"].cat.codes.to_numpy()
    code = {m: i for i, m in enumerate(frame["metric"].cat.categories)}
    value = frame["value"].to_numpy()

    picked = {name: np.flatnonzero(keep & (metric == code.get(name.value, -99)))
              for name in (Metric.GPU_UTIL, Metric.CPU_UTIL, Metric.NET_IN, Metric.NET_OUT)}
    util = picked[Metric.GPU_UTIL]
    in_range = (value[util] >= 0) & (value[util] <= 100)  # a sentinel (-1 for N/A) or garbage is not a reading
    invalid = np.bincount(rows[util[~in_range]], minlength=n_rows)
    util = util[in_range]
    gpu_max = grid_max(flat[util], value[util], size).reshape(n_rows, n_steps)
    gpu_count = np.bincount(flat[util], minlength=size).astype(np.float32).reshape(n_rows, n_steps)
    per_gpu_rows = np.bincount(rows[util[frame["gpu"].to_numpy()[util] != INSTANCE_LEVEL]], minlength=n_rows) > 0
    aux = {}
    for name in (Metric.CPU_UTIL, Metric.NET_IN, Metric.NET_OUT):
        sel = picked[name]
        aux[name] = grid_max(flat[sel], value[sel], size).reshape(n_rows, n_steps)
    del rows, flat, keep, metric, value, util, picked

    gpu_obs = ~np.isnan(gpu_max)
    hold = np.clip(cadence(gpu_obs, max_hold), 1, max_hold).astype(np.int32)
    gpu_max, gpu_valid = hold_forward(gpu_max, gpu_obs, hold)
    gpu_count, _ = hold_forward(gpu_count, gpu_obs, hold)
    for name, grid in aux.items():
        obs = ~np.isnan(grid)
        aux[name], _ = hold_forward(grid, obs, np.clip(cadence(obs, max_hold), 1, max_hold).astype(np.int32))
    net_in, net_out = aux[Metric.NET_IN], aux[Metric.NET_OUT]
    net = np.where(np.isnan(net_in) & np.isnan(net_out), np.float32(np.nan), np.nan_to_num(net_in) + np.nan_to_num(net_out))
    return _Grids(gpu_max, gpu_count, gpu_valid, per_gpu_rows, hold, aux[Metric.CPU_UTIL], net, invalid)


def grid_max(flat: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    out = np.full(size, -np.inf, dtype=np.float32)
    np.maximum.at(out, flat, values.astype(np.float32))
    out[np.isneginf(out)] = np.nan
    return out


def hold_forward(values: np.ndarray, observed: np.ndarray, hold: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward-fill each row's observations for up to ``hold[row]`` periods; returns (values, valid)."""
    n_rows, n_steps = observed.shape
    idx = np.where(observed, np.arange(n_steps, dtype=np.int32)[None, :], np.int32(-1))
    np.maximum.accumulate(idx, axis=1, out=idx)
    age = np.arange(n_steps, dtype=np.int32)[None, :] - idx
    valid = (idx >= 0) & (age < hold[:, None])
    del age
    filled = np.take_along_axis(values, np.clip(idx, 0, None, out=idx), axis=1)
    return np.where(valid, filled, np.float32(np.nan)), valid


def cadence(observed: np.ndarray, cap: int) -> np.ndarray:
    """Median spacing in periods (the lower median, capped at ``cap``) between a row's observations; 1 if unknown.

    Capping first is exact for the capped result and lets a per-row histogram replace a sort.
    """
    n_rows, n_steps = observed.shape
    pos = np.flatnonzero(observed)
    if len(pos) < 2:
        return np.ones(n_rows, dtype=np.int64)
    rows, t = np.divmod(pos, n_steps)
    same = rows[1:] == rows[:-1]
    gaps = np.minimum(np.diff(t)[same], cap)
    width = cap + 1
    hist = np.bincount(rows[1:][same] * width + gaps, minlength=n_rows * width).reshape(n_rows, width)
    counts = hist.sum(axis=1)
    below = np.cumsum(hist, axis=1) < ((counts + 1) // 2)[:, None]
    return np.where(counts > 0, below.sum(axis=1), 1)


def _runs(state: np.ndarray) -> pd.DataFrame:
    """Run-length encoding of each row of ``state``."""
    n_rows, n_steps = state.shape
    flat = state.ravel()
    if flat.size == 0:
        return pd.DataFrame({"row": [], "start": [], "length": [], "state": []}, dtype=np.int64)
    change = np.empty(flat.shape, dtype=bool)
    change[0] = True
    change[1:] = flat[1:] != flat[:-1]
    change[::n_steps] = True
    starts = np.flatnonzero(change)
    lengths = np.diff(np.append(starts, flat.size))
    return pd.DataFrame({"row": starts // n_steps, "start": starts % n_steps, "length": lengths, "state": flat[starts]})


def classify(usage: Usage, resources: Sequence[Resource], window: Window, settings: IdleSettings) -> IdleReport:
    period = usage.period
    keys = [r.ref.key for r in resources]
    n_steps = int(window.duration / period)
    max_hold = max(1, int(timedelta(minutes=settings.max_hold_minutes) / period))
    g = _build_grids(usage.frame, keys, window, period, max_hold)
    gpu_max, gpu_count, gpu_valid, cpu, net = g.gpu_max, g.gpu_count, g.gpu_valid, g.cpu, g.net

    installed = np.array([r.accelerators.count if r.accelerators else 0 for r in resources], dtype=np.float32)
    reporting_max = np.nan_to_num(np.nanmax(np.where(gpu_valid, gpu_count, np.nan), axis=1, initial=0), nan=0)
    expected = np.where(g.per_gpu_rows, np.where(installed > 0, installed, reporting_max), 1).astype(np.float32)

    known = gpu_valid & (gpu_count >= expected[:, None])
    with np.errstate(invalid="ignore"):
        quiet = (gpu_max <= settings.gpu_util_max_pct) & ~(cpu > settings.cpu_util_max_pct) & ~(net > settings.net_max_bytes_per_s)
    state = np.where(known, np.where(quiet, IDLE, BUSY), UNKNOWN).astype(np.int8)

    state = _drop_short_idle(state, max(1, int(np.ceil(timedelta(minutes=settings.min_idle_minutes) / period))))
    times = pd.date_range(window.start, periods=n_steps, freq=period)
    episodes, per = _episodes(state, keys, times, period, settings)
    per["expected_gpus"] = expected
    per["reporting_gpus_max"] = reporting_max
    per["installed_gpus"] = installed
    per["invalid_gpu_samples"] = g.invalid
    per["cadence_s"] = g.hold * period.total_seconds()
    per["cpu_published"] = ~np.all(np.isnan(cpu), axis=1) if n_steps else False
    per["net_published"] = ~np.all(np.isnan(net), axis=1) if n_steps else False
    _streak_peaks(per, gpu_max, cpu, net, n_steps)
    week_busy, week_idle = _week_profile(state, times, period)
    return IdleReport(window, period, keys, times, state, per, episodes, week_busy, week_idle,
                      timedelta(hours=1) / period)


def _drop_short_idle(state: np.ndarray, min_steps: int) -> np.ndarray:
    runs = _runs(state)
    short = (runs["state"].to_numpy() == IDLE) & (runs["length"].to_numpy() < min_steps)
    if not short.any():
        return state
    new_state = np.where(short, BUSY, runs["state"].to_numpy()).astype(np.int8)
    return np.repeat(new_state, runs["length"].to_numpy()).reshape(state.shape)


def _episodes(state: np.ndarray, keys: list[str], times: pd.DatetimeIndex, period: timedelta,
              settings: IdleSettings) -> tuple[pd.DataFrame, pd.DataFrame]:
    n_rows, n_steps = state.shape
    step_h = period.total_seconds() / 3600
    runs = _runs(state)
    known = runs[runs["state"] != UNKNOWN].reset_index(drop=True)
    per = pd.DataFrame(index=pd.Index(keys, name="key"))
    per["known_hours"] = np.bincount(known["row"], weights=known["length"], minlength=n_rows) * step_h
    idle_runs = known["state"] == IDLE
    per["idle_hours"] = np.bincount(known["row"][idle_runs], weights=known["length"][idle_runs], minlength=n_rows) * step_h
    per["busy_hours"] = per["known_hours"] - per["idle_hours"]
    with np.errstate(invalid="ignore", divide="ignore"):
        per["idle_fraction"] = np.where(per["known_hours"] > 0, per["idle_hours"] / per["known_hours"], 0.0)
    first = known.groupby("row")["start"].min()
    last = (known["start"] + known["length"]).groupby(known["row"]).max()
    per["first_known"] = (times[0] + period * first).reindex(range(n_rows)).to_numpy()
    per["last_known_end"] = (times[0] + period * last).reindex(range(n_rows)).to_numpy()

    # Idle episodes: consecutive idle runs joined across short unknown stretches.
    bridge = int(timedelta(minutes=settings.bridge_minutes) / period)
    end = known["start"] + known["length"]
    prev_row, prev_state, prev_end = known["row"].shift(), known["state"].shift(), end.shift()
    joins = (known["state"] == IDLE) & (prev_row == known["row"]) & (prev_state == IDLE) & (known["start"] - prev_end <= bridge)
    known["episode"] = (~joins).cumsum()
    known["end"] = end
    eps = known.groupby("episode").agg(row=("row", "first"), state=("state", "first"), start=("start", "min"),
                                       end=("end", "max"), steps=("length", "sum"))
    eps["next_state"] = eps["state"].shift(-1).where(eps["row"].shift(-1) == eps["row"])
    idle_eps = eps[eps["state"] == IDLE]
    span_h = (idle_eps["end"] - idle_eps["start"]) * step_h
    completed = idle_eps[idle_eps["next_state"] == BUSY]
    per["prior_max_idle_hours"] = ((completed["end"] - completed["start"]) * step_h).groupby(completed["row"]).max() \
        .reindex(range(n_rows)).fillna(0.0).to_numpy()
    last_eps = eps.groupby("row").tail(1)
    tolerance = timedelta(minutes=settings.now_tolerance_minutes) / period
    current = last_eps[(last_eps["state"] == IDLE) & (n_steps - last_eps["end"] <= tolerance)]
    streak = pd.Series(0.0, index=range(n_rows))
    streak.loc[current["row"].to_numpy()] = ((current["end"] - current["start"]) * step_h).to_numpy()
    streak_start = pd.Series(pd.NaT, index=range(n_rows), dtype="datetime64[ns, UTC]")
    streak_start.loc[current["row"].to_numpy()] = times[current["start"].to_numpy()]
    per["streak_hours"] = streak.to_numpy()
    per["streak_start"] = streak_start.to_numpy()
    per["streak_start_step"] = pd.Series(current["start"].to_numpy(), index=current["row"].to_numpy()) \
        .reindex(range(n_rows)).fillna(-1).astype(int).to_numpy()
    episodes = pd.DataFrame({
        "key": np.asarray(keys, dtype=object)[idle_eps["row"].to_numpy()] if len(idle_eps) else [],
        "start": times[idle_eps["start"].to_numpy()] if len(idle_eps) else [],
        "end": (times[0] + pd.to_timedelta(idle_eps["end"].to_numpy() * int(period.total_seconds()), unit="s"))
        if len(idle_eps) else [],
        "span_hours": span_h.to_numpy(),
        "idle_hours": (idle_eps["steps"] * step_h).to_numpy(),
    })
    return episodes, per


def _streak_peaks(per: pd.DataFrame, gpu: np.ndarray, cpu: np.ndarray, net: np.ndarray, n_steps: int) -> None:
    """Highest GPU, CPU and network readings during each instance's current idle streak."""
    start = per["streak_start_step"].to_numpy()
    mask = (start[:, None] >= 0) & (np.arange(n_steps)[None, :] >= start[:, None])
    for name, grid in (("streak_gpu_max_pct", gpu), ("streak_cpu_max_pct", cpu), ("streak_net_max_bytes_per_s", net)):
        picked = np.where(mask, grid, np.nan)
        with np.errstate(invalid="ignore"):
            all_nan = np.all(np.isnan(picked), axis=1)
            peak = np.nanmax(np.where(all_nan[:, None], 0.0, picked), axis=1) if n_steps else np.zeros(len(per))
        per[name] = np.where(all_nan, np.nan, peak)


def _week_profile(state: np.ndarray, times: pd.DatetimeIndex, period: timedelta) -> tuple[np.ndarray, np.ndarray]:
    """Busy and idle periods per (instance, week, UTC hour-of-week), weeks counted back from the end."""
    n_rows, n_steps = state.shape
    if n_steps == 0:
        return np.zeros((n_rows, 0, SLOTS_PER_WEEK)), np.zeros((n_rows, 0, SLOTS_PER_WEEK))
    # Week 0 is the last 7 days before the window's end, counted in periods, so weeks are exact even
    # when the window does not start on the hour; a (week, hour-of-week) bucket may then be split in two.
    per_week = int(timedelta(days=7) / period)
    week = (n_steps - 1 - np.arange(n_steps)) // per_week
    slot = np.asarray(times.day_of_week * 24 + times.hour)
    key = week * SLOTS_PER_WEEK + slot
    bounds = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    n_weeks = int(week.max()) + 1
    busy = np.zeros((n_rows, n_weeks * SLOTS_PER_WEEK), dtype=np.float32)
    idle = np.zeros_like(busy)
    np.add.at(busy, (slice(None), key[bounds]), np.add.reduceat((state == BUSY).astype(np.float32), bounds, axis=1))
    np.add.at(idle, (slice(None), key[bounds]), np.add.reduceat((state == IDLE).astype(np.float32), bounds, axis=1))
    busy = busy.reshape(n_rows, n_weeks, SLOTS_PER_WEEK)
    idle = idle.reshape(n_rows, n_weeks, SLOTS_PER_WEEK)
    return busy, idle

"""Hourly usage per instance type, the input of commitment sizing (``recommenders/commitment_levels.py``).

Instances running per (cloud, region, type) and UTC hour over the snapshot window. From billing
(``Snapshot.billing.hourly``, per cloud where it has rows: it sees every instance-hour, terminated
instances included, and the hours existing commitments already covered), else from telemetry (an
instance runs in an hour when any usage row of it, any metric, falls in that hour; an hour without rows
is not running; terminated instances are invisible). Spot and non-GPU instances are never committed
to. ``exclude`` (instances other findings change) is left out of telemetry and subtracted from billing.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from providers.model import BillingData, Cloud, PricingModel, Snapshot

HOURLY_USAGE_COLUMNS = ("cloud", "region", "instance_type", "ts", "instances", "committed")
HOUR = pd.Timedelta(hours=1)
_HOUR_NS = 3_600_000_000_000

# ----------------------------------------------------------------------------------- hourly usage


def cloud_of_provider(name: object) -> str | None:
    """FOCUS ProviderName ("AWS", "Amazon Web Services", "Google Cloud", "Microsoft", ...) -> cloud."""
    text = str(name).lower()
    if "aws" in text or "amazon" in text:
        return Cloud.AWS.value
    if "google" in text or "gcp" in text:
        return Cloud.GCP.value
    if "microsoft" in text or "azure" in text:
        return Cloud.AZURE.value
    return None


def hour_grid(snapshot: Snapshot) -> pd.DatetimeIndex:
    """UTC hour starts of every hour the snapshot window touches."""
    start = pd.Timestamp(snapshot.window.start).floor("h")
    return pd.date_range(start, pd.Timestamp(snapshot.window.end), freq="h", inclusive="left")


def _billing_span(billing: BillingData, grid: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The window's hours the billing exports speak for (outside them billing says nothing, not zero)."""
    if billing.window is not None:
        lo, hi = pd.Timestamp(billing.window.start).floor("h"), pd.Timestamp(billing.window.end)
    else:
        ts = pd.to_datetime(billing.hourly["ts"], utc=True)
        lo, hi = ts.min().floor("h"), ts.max().floor("h") + HOUR
    return grid[(grid >= lo) & (grid < hi)]


def _telemetry_counts(snapshot: Snapshot, grid: pd.DatetimeIndex, keys: Collection[str]) -> pd.DataFrame:
    """(cloud, region, instance_type, ts, instances, committed) from usage rows of the given resources."""
    res = [r for r in snapshot.resources if r.ref.key in keys]
    frame = snapshot.usage.frame
    columns = list(HOURLY_USAGE_COLUMNS)
    if not res or frame.empty or grid.empty:
        return pd.DataFrame(columns=columns)
    column = frame["resource"] if isinstance(frame["resource"].dtype, pd.CategoricalDtype) \
        else frame["resource"].astype("category")
    lookup = {r.ref.key: i for i, r in enumerate(res)}
    cat_to_res = np.array([lookup.get(str(c), -1) for c in column.cat.categories] + [-1], dtype=np.int64)
    rid = cat_to_res[column.cat.codes.to_numpy()]  # code -1 (missing) hits the trailing -1
    stamps = pd.DatetimeIndex(frame["ts"]).as_unit("ns").asi8
    hour = (stamps - grid[0].as_unit("ns").value) // _HOUR_NS
    keep = (rid >= 0) & (hour >= 0) & (hour < len(grid))
    running = np.zeros((len(res), len(grid)), dtype=bool)
    running[rid[keep], hour[keep]] = True
    r, h = np.nonzero(running)
    rows = pd.DataFrame({
        "cloud": np.array([x.ref.cloud.value for x in res], dtype=object)[r],
        "region": np.array([x.ref.region for x in res], dtype=object)[r],
        "instance_type": np.array([x.instance_type for x in res], dtype=object)[r],
        "ts": grid[h],
        "instances": 1.0,
        "committed": np.array([float(x.pricing_model == PricingModel.COMMITTED) for x in res])[r],
    })
    return rows.groupby(["cloud", "region", "instance_type", "ts"], as_index=False)[["instances", "committed"]].sum()


def _billing_counts(billing: BillingData, grid: pd.DatetimeIndex) -> pd.DataFrame:
    hourly = billing.hourly
    cloud = hourly["provider"].map(cloud_of_provider)
    ts = pd.DatetimeIndex(pd.to_datetime(hourly["ts"], utc=True)).floor("h")
    keep = cloud.notna().to_numpy() & ts.isin(grid)
    rows = pd.DataFrame({
        "cloud": cloud[keep].to_numpy(dtype=object),
        "region": hourly["region"][keep].fillna("").astype(str).to_numpy(dtype=object),
        "instance_type": hourly["instance_type"][keep].to_numpy(dtype=object),
        "ts": ts[keep],
        "instances": hourly["hours"][keep].to_numpy(dtype=float),
        "committed": hourly["committed_hours"][keep].fillna(0.0).to_numpy(dtype=float),
    })
    rows = rows[rows["instance_type"].notna()]
    return rows.groupby(["cloud", "region", "instance_type", "ts"], as_index=False)[["instances", "committed"]].sum()


def _zero_filled(counts: pd.DataFrame, grids: dict[str, pd.DatetimeIndex]) -> pd.DataFrame:
    """Every (cloud, region, type) seen, at every hour of its cloud's grid (0 where nothing ran)."""
    parts = []
    for cloud, grid in grids.items():
        mine = counts[counts["cloud"] == cloud]
        if mine.empty or grid.empty:
            continue
        types = mine[["cloud", "region", "instance_type"]].drop_duplicates()
        full = types.merge(pd.DataFrame({"ts": grid}), how="cross")
        parts.append(full.merge(mine, on=["cloud", "region", "instance_type", "ts"], how="left"))
    if not parts:
        return pd.DataFrame(columns=list(HOURLY_USAGE_COLUMNS))
    out = pd.concat(parts, ignore_index=True)
    out[["instances", "committed"]] = out[["instances", "committed"]].fillna(0.0)
    return out.sort_values(["cloud", "region", "instance_type", "ts"], ignore_index=True)[list(HOURLY_USAGE_COLUMNS)]


def hourly_usage_by_source(snapshot: Snapshot, exclude: Collection[str] = ()) -> tuple[pd.DataFrame, dict[str, str], dict[str, int]]:
    """``hourly_usage``, the source per cloud (billing | telemetry) and the lookback hours per cloud."""
    grid = hour_grid(snapshot)
    excluded = set(exclude)
    committable = {r.ref.key for r in snapshot.resources
                   if r.has_gpu and r.pricing_model != PricingModel.SPOT and r.ref.key not in excluded}
    billing = snapshot.billing
    billed = pd.DataFrame(columns=list(HOURLY_USAGE_COLUMNS))
    grids: dict[str, pd.DatetimeIndex] = {}
    sources: dict[str, str] = {}
    if billing is not None and not billing.hourly.empty:
        span = _billing_span(billing, grid)
        billed = _billing_counts(billing, span)
        gpu_types = _gpu_types(snapshot)
        gpu_rows = np.array([(c, t) in gpu_types for c, t in zip(billed["cloud"], billed["instance_type"], strict=True)],
                            dtype=bool)
        billed = billed.loc[gpu_rows]  # a boolean array: an empty list would select columns, not rows
        for cloud in billed["cloud"].unique():
            grids[cloud], sources[cloud] = span, "billing"
        on_demand = {r.ref.key for r in snapshot.resources if r.pricing_model != PricingModel.SPOT}
        gone = _telemetry_counts(snapshot, span, excluded & on_demand)  # stopped instances: off the bill
        if not gone.empty:
            billed = billed.merge(gone, on=["cloud", "region", "instance_type", "ts"], how="left", suffixes=("", "_x"))
            billed["instances"] = (billed["instances"] - billed["instances_x"].fillna(0.0)).clip(lower=0.0)
            billed = billed[list(HOURLY_USAGE_COLUMNS)]
    seen = _telemetry_counts(snapshot, grid, committable)
    seen = seen[~seen["cloud"].isin(list(sources))]
    for cloud in seen["cloud"].unique():
        grids[cloud], sources[cloud] = grid, "telemetry"
    frame = _zero_filled(pd.concat([x for x in (billed, seen) if not x.empty] or [seen], ignore_index=True), grids)
    return frame, sources, {c: len(g) for c, g in grids.items()}


def hourly_usage(snapshot: Snapshot, exclude: Collection[str] = ()) -> pd.DataFrame:
    """Instances running per (cloud, region, instance_type) and UTC hour over the snapshot window.

    Columns ``HOURLY_USAGE_COLUMNS``; ``instances`` may be fractional from billing (instance-hours in the
    hour); ``committed`` are the instance-hours existing commitments covered (billing's committed hours;
    from telemetry, running instances whose pricing model is ``committed``). Every hour of the window is
    present for every type seen (zeros filled); a cloud read from billing covers the window's hours the
    billing exports span. ``exclude``: resource keys whose hours are not to be committed to (the
    instances the stop recommender is stopping): left out of telemetry, subtracted from billing.
    """
    return hourly_usage_by_source(snapshot, exclude)[0]


def _gpu_types(snapshot: Snapshot) -> set[tuple[str, str]]:
    """(cloud, type) known to carry GPUs: from the fleet, the specs or the commitment rates (a GPU catalog)."""
    types = {(r.ref.cloud.value, r.instance_type) for r in snapshot.resources if r.has_gpu}
    types |= {k for k, spec in snapshot.specs.items() if spec.accelerators and spec.accelerators.count}
    types |= {(r.cloud.value, r.instance_type) for r in snapshot.commitment_rates}
    return types

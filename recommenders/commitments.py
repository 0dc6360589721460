"""``commitment``: how much of a pool's steady GPU usage to commit to, and with which instrument (advice only).

1. **Hourly usage** (``hourly_usage``, in ``recommenders.commitment_levels``): instances running per
   (cloud, region, type) and UTC hour, from billing where it has hourly rows, else from telemetry; the
   instances the stop findings stop (``exclude``) are not committed to.
2. **Pools** (``pool_of``): AWS family in a region (``p4d``), GCP machine series in a region (``a2``; N1
   with attached GPUs by GPU type), Azure VM size in a region. Usage is normalized to on-demand dollars
   per hour, ``u_t = sum over types of (instances - already committed)_t x on-demand hourly``: existing
   coverage is taken off before a new commitment is sized.
3. **Sizing** (``commitment_levels``): per instrument and term with a rate for every type in use,
   ``q* = argmax_q sum_t (min(u_t, q) - d q)`` with ``d`` the usage-weighted rate ratio.
4. **Choice**: the highest monthly saving among ``CommitmentSettings.term_years`` (1 year by default:
   GPU generations turn over fast); every other instrument and term is shown as an alternative.
5. **Billing** (``billing_commitment_summary``): current coverage, utilization and effective savings rate.

See docs/commitments.md for the formulas, the defaults and what this does not do.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from providers.model import (
    BillingData,
    Cloud,
    CommitmentRate,
    Gap,
    Instrument,
    PriceQuote,
    PricingModel,
    ResourceRef,
    Snapshot,
)
from recommenders import commitment_levels as levels
from recommenders.commitment_levels import FIT, NAMES, UNIT_INSTRUMENTS, Option, choose, size
from recommenders.commitment_usage import HOUR, HOURLY_USAGE_COLUMNS, hour_grid, hourly_usage, hourly_usage_by_source
from recommenders.model import Kind, Recommendation, Risk

NAME = "commitment"
PAYBACK_DEFINITION = ("months an all-upfront purchase of the term (hourly commitment x 8,760 h x years) takes to "
                      "repay from the on-demand charges it avoids (730 x mean covered on-demand $/h)")


@dataclass(frozen=True)
class CommitmentSettings:
    #: Terms the recommendation may pick; the other terms are shown as alternatives.
    term_years: tuple[int, ...] = (1,)
    #: Below this much hourly history (per cloud) no finding, a gap instead.
    min_lookback_days: float = 7.0
    min_monthly_savings_usd: Decimal = Decimal(50)
    #: Lookback at which the length adds its full share of confidence.
    full_confidence_days: float = 30.0
    #: Instruments considered (None: all with rates).
    instruments: tuple[Instrument, ...] | None = None


# ------------------------------------------------------------------------------------------ pools

_N1_GPU = re.compile(r"\+(\d+)x(.+)$")


def pool_of(cloud: Cloud | str, instance_type: str) -> str:
    """The commitment pool of a type: AWS family, GCP series (N1 + GPUs: the GPU type), Azure VM size."""
    cloud = str(cloud)
    if cloud == Cloud.AWS.value:
        return instance_type.split(".", 1)[0]
    if cloud == Cloud.GCP.value:
        attached = _N1_GPU.search(instance_type)
        return attached.group(2) if attached else instance_type.split("-", 1)[0]
    return instance_type


def _gpus_per_instance(snapshot: Snapshot, cloud: str, itype: str) -> int | None:
    spec = snapshot.spec_for(cloud, itype)
    if spec is not None and spec.accelerators is not None:
        return spec.accelerators.count
    owned = next((r.accelerators.count for r in snapshot.resources
                  if r.ref.cloud.value == cloud and r.instance_type == itype and r.accelerators), None)
    if owned is not None:
        return owned
    attached = _N1_GPU.search(itype)
    return int(attached.group(1)) if attached else None


@dataclass(frozen=True)
class Pool:
    """One pool's hourly usage in on-demand $/h, existing commitments already taken off."""

    cloud: str
    region: str
    name: str
    account: str
    source: str  # billing | telemetry
    ts: pd.DatetimeIndex
    types: tuple[str, ...]  # types with usage, by net usage (largest first)
    on_demand: tuple[PriceQuote, ...]  # one per type
    type_usage: np.ndarray  # (types,) mean net on-demand $/h per type: the weights of the rate ratio
    usage: np.ndarray  # (T,) u_t net of existing commitments
    gross: np.ndarray  # (T,) before existing commitments
    committed_hours: float  # instance-hours existing commitments covered in the lookback
    gpus: int | None  # GPUs per instance (single-type pools)

    @property
    def single_type(self) -> str | None:
        return self.types[0] if len(self.types) == 1 else None


def pools(snapshot: Snapshot, exclude: Collection[str] = ()) -> tuple[list[Pool], list[Gap], dict[str, int]]:
    """Pools with usage, the gaps met (types without an on-demand price) and the lookback hours per cloud."""
    frame, sources, hours = hourly_usage_by_source(snapshot, exclude)
    gaps: list[Gap] = []
    if frame.empty:
        return [], gaps, hours
    quotes = {(c, r, t): snapshot.quote(c, r, t, PricingModel.ON_DEMAND)
              for c, r, t in frame[["cloud", "region", "instance_type"]].drop_duplicates().itertuples(index=False)}
    used = frame.groupby(["cloud", "region", "instance_type"])["instances"].sum()
    for (cloud, region, itype), quote in quotes.items():
        if quote is None and used[(cloud, region, itype)] > 0:
            gaps.append(Gap(Cloud(cloud), "prices", f"no on-demand price for {itype} in {region}: its hours are left "
                            "out of commitment sizing", region, None, None, "refresh the price catalog"))
    price = np.array([float(q.hourly_usd) if (q := quotes[k]) else np.nan
                      for k in zip(frame["cloud"], frame["region"], frame["instance_type"], strict=True)])
    frame = frame.assign(pool=[pool_of(c, t) for c, t in zip(frame["cloud"], frame["instance_type"], strict=True)],
                         net=(frame["instances"] - frame["committed"]).clip(lower=0.0) * price,
                         gross=frame["instances"] * price)
    frame = frame[~np.isnan(price)]
    accounts = _accounts(snapshot)
    out = []
    for (cloud, region, name), part in frame.groupby(["cloud", "region", "pool"], sort=True):
        per_type = part.groupby("instance_type")["net"].mean().sort_values(ascending=False, kind="stable")
        per_type = per_type[per_type > 0]
        if per_type.empty:
            continue
        hourly = part.groupby("ts")[["net", "gross"]].sum().sort_index()
        types = tuple(per_type.index)
        out.append(Pool(
            cloud=cloud, region=region, name=name,
            account=accounts.get((cloud, region, name)) or accounts.get((cloud, "", "")) or "unknown",
            source=sources[cloud], ts=pd.DatetimeIndex(hourly.index), types=types,
            on_demand=tuple(quotes[(cloud, region, t)] for t in types), type_usage=per_type.to_numpy(dtype=float),
            usage=hourly["net"].to_numpy(dtype=float), gross=hourly["gross"].to_numpy(dtype=float),
            committed_hours=float(np.minimum(part["committed"], part["instances"]).sum()),
            gpus=_gpus_per_instance(snapshot, cloud, types[0]) if len(types) == 1 else None,
        ))
    return out, gaps, hours


def _accounts(snapshot: Snapshot) -> dict[tuple[str, str, str], str]:
    """The most common account per (cloud, region, pool), and per cloud as ``(cloud, "", "")``."""
    per_pool: dict[tuple[str, str, str], Counter[str]] = {}
    for r in snapshot.resources:
        cloud = r.ref.cloud.value
        for key in ((cloud, r.ref.region, pool_of(cloud, r.instance_type)), (cloud, "", "")):
            per_pool.setdefault(key, Counter())[r.ref.account] += 1
    return {k: c.most_common(1)[0][0] for k, c in per_pool.items()}


# --------------------------------------------------------------------------------------- sizing


def options(pool: Pool, rates: Sequence[CommitmentRate], instruments: Collection[Instrument] | None = None,
            follow_trend: bool = True) -> list[Option]:
    """Every (instrument, term) with a rate for each of the pool's types in use, sized at its optimum.

    ``follow_trend=False`` sizes on the usage as it is (a hindsight optimum), without the decline cap.

    An instrument missing a rate for one of the types is not offered: it would not cover that type.
    """
    index = {(r.cloud.value, r.region, r.instance_type, r.instrument, r.term_years): r for r in rates}
    pairs = sorted({(r.instrument, r.term_years) for r in rates
                    if r.cloud.value == pool.cloud and r.region == pool.region and r.instance_type in pool.types})
    out = []
    for instrument, term in pairs:
        mine = [index.get((pool.cloud, pool.region, t, instrument, term)) for t in pool.types]
        if (instruments is None or instrument in instruments) and all(r is not None for r in mine):
            out.append(size(pool.usage, pool.type_usage, [float(q.hourly_usd) for q in pool.on_demand],
                            [r for r in mine if r is not None], pool.gpus, follow_trend))
    return out


# --------------------------------------------------------------------------------- recommendation


def recommend(snapshot: Snapshot, settings: CommitmentSettings | None = None,
              exclude: Collection[str] = ()) -> tuple[list[Recommendation], list[Gap]]:
    """Commitment advice per pool (``action=None``), and the gaps (too short a lookback, missing prices).

    ``exclude``: keys of instances other findings stop; their hours are not committed to.
    """
    settings = settings or CommitmentSettings()
    found, gaps, hours = pools(snapshot, exclude)
    short = {c for c, h in hours.items() if h < settings.min_lookback_days * 24}
    for cloud in sorted(short):
        gaps.append(Gap(Cloud(cloud), "analysis",
                        f"commitment sizing needs {settings.min_lookback_days:g} days of hourly usage; only "
                        f"{hours[cloud] / 24:.1f} days were read, so no commitment is recommended", None, None, None,
                        "audit with a longer --lookback, or give hourly billing exports (--billing)"))
    recs: list[Recommendation] = []
    unpriced: set[tuple[str, str, str]] = set()
    for pool in found:
        if pool.cloud in short:
            continue
        sized = options(pool, snapshot.commitment_rates, settings.instruments)
        if not sized:
            unpriced.add((pool.cloud, pool.region, pool.name))
            continue
        best = choose(sized, settings.term_years)
        if best is None or Decimal(str(round(best.result.monthly_savings, 2))) < settings.min_monthly_savings_usd:
            continue
        recs.append(_recommendation(pool, best, sized, settings, _excluded_in(snapshot, pool, exclude)))
    for cloud in sorted({c for c, _, _ in unpriced}):  # one gap per cloud: a catalog without rates is one cause
        names = ", ".join(f"{name} in {region}" for c, region, name in sorted(unpriced) if c == cloud)
        gaps.append(Gap(Cloud(cloud), "prices", f"no commitment rates for these pools, so they are not sized: {names}",
                        None, None, None, "refresh the price catalog (commitment rates)"))
    return recs, gaps


def _confidence(pool: Pool, best: Option, settings: CommitmentSettings) -> tuple[float, float, float, float]:
    """0.5 + up to 0.25 for the lookback's length + up to 0.15 for steady covered usage + 0.05 from billing."""
    days = pool.usage.size / 24
    span = max(settings.full_confidence_days - settings.min_lookback_days, 1e-9)
    length = min(1.0, max(0.0, (days - settings.min_lookback_days) / span))
    first, second = levels.half_means(pool.usage, best.result.level)
    moved = levels.drift(first, second)
    steady = 1.0 - min(1.0, moved / 0.25)
    score = 0.5 + 0.25 * length + 0.15 * steady + (0.05 if pool.source == "billing" else 0.0)
    return round(min(score, 0.95), 3), first, second, moved


def _risk(best: Option, second_half_covered: float, moved: float) -> Risk:
    res = best.result
    if res.level > 0 and second_half_covered / res.level < res.rate_ratio:
        return Risk.HIGH  # on the recent half of the lookback the commitment would have lost money
    utilization = res.expected_utilization or 0.0
    if best.term_years >= 3 or moved > 0.1 or utilization < 0.9 or best.uncapped_level is not None:
        # (a level capped by a decline in the latest week: usage is trending down)
        return Risk.MEDIUM
    return Risk.LOW


def _summary(pool: Pool, best: Option) -> str:
    res, term = best.result, best.term_years
    where = f"{pool.name} in {pool.region}"
    unit = float(pool.on_demand[0].hourly_usd) if pool.single_type else None
    count = res.level / unit if unit else None
    covers = (f"covers {count:.4g} {pool.single_type} instance{'s' if count != 1 else ''}" if count is not None
              else f"covers ${res.level:,.2f}/h of on-demand usage")
    if best.instrument in UNIT_INSTRUMENTS and count is not None:
        head = (f"Buy {count:.4g} x {pool.single_type} {term}-year {NAMES[best.instrument]} for {where} "
                f"at ${res.hourly_commitment:,.2f}/h effective")
    else:
        head = f"Buy a {term}-year {NAMES[best.instrument]} for {where}: ${res.hourly_commitment:,.2f}/h commitment {covers}"
    return (f"{head} ({(res.expected_utilization or 0) * 100:.0f}% utilized, {(res.coverage or 0) * 100:.0f}% of usage "
            f"covered), saves ${res.monthly_savings:,.0f}/month")


def _excluded_in(snapshot: Snapshot, pool: Pool, exclude: Collection[str]) -> list[str]:
    keys = set(exclude)
    return sorted(r.ref.key for r in snapshot.resources if r.ref.key in keys and r.ref.cloud.value == pool.cloud
                  and r.ref.region == pool.region and pool_of(pool.cloud, r.instance_type) == pool.name)


def _recommendation(pool: Pool, best: Option, sized: Sequence[Option], settings: CommitmentSettings,
                    excluded: list[str]) -> Recommendation:
    confidence, first, second, moved = _confidence(pool, best, settings)
    unit = float(pool.on_demand[0].hourly_usd) if pool.single_type else None
    gross_mean = float(pool.gross.mean())
    existing = float((pool.gross - pool.usage).mean())
    evidence: dict[str, Any] = {
        "pool": pool.name,
        "instance_types": list(pool.types),
        "usage_source": pool.source,
        "lookback_start": pool.ts[0].isoformat().replace("+00:00", "Z"),
        "lookback_end": (pool.ts[-1] + HOUR).isoformat().replace("+00:00", "Z"),
        "lookback_hours": int(pool.usage.size),
        "lookback_days": round(pool.usage.size / 24, 2),
        "usage_unit": "on-demand USD per hour, existing commitments taken off",
        "usage_percentiles_usd_per_hour": levels.percentiles(pool.usage),
        "usage_percentiles_instances": levels.percentiles(pool.usage, unit) if unit else None,
        "covered_usage_first_half_usd_per_hour": round(first, 4),
        "covered_usage_second_half_usd_per_hour": round(second, 4),
        "usage_drift": round(moved, 4),
        **best.figures(),
        "instrument_fit": FIT[best.instrument],
        "payback_definition": PAYBACK_DEFINITION,
        "sizing": "q* = argmax_q sum_t (min(u_t, q) - d q) over the distinct hourly usage values (the level where "
                  "P(u >= q) = d)" + ("; whole instances" if unit and best.instrument in UNIT_INSTRUMENTS else ""),
        "existing_coverage": {
            "committed_instance_hours": round(pool.committed_hours, 2),
            "covered_on_demand_usd_per_hour": round(existing, 4),
            "coverage": round(existing / gross_mean, 4) if gross_mean > 0 else None,
            "note": "hours existing commitments already cover are taken off before sizing the new one",
        },
        "excluded_instances": excluded,  # keys of this pool's instances the stop findings stop
        "exclusion_note": "sized on the usage no other finding changes: instances being stopped, scheduled, resized, consolidated or moved to spot are not committed to",
        "alternatives": [o.figures() for o in sorted(sized, key=lambda o: -o.result.monthly_savings)
                         if o is not best],
        "on_demand_prices": [_quote_evidence(q) for q in pool.on_demand],
        "rates": [_rate_evidence(r) for r in best.rates],
        "confidence_basis": "0.5 + 0.25 x lookback length (full at "
                            f"{settings.full_confidence_days:g} days) + 0.15 x steadiness of covered usage between "
                            "the halves + 0.05 when read from billing, at most 0.95",
        "notes": _notes(pool),
    }
    return Recommendation(
        recommender=NAME,
        kind=Kind.COMMITMENT,
        ref=ResourceRef(Cloud(pool.cloud), pool.account, pool.region, f"commitment:{pool.name}"),
        instance_type=pool.single_type,
        monthly_savings_usd=Decimal(str(round(best.result.monthly_savings, 2))),
        confidence=confidence,
        risk=_risk(best, second, moved),
        summary=_summary(pool, best),
        evidence=evidence,
        action=None,
    )


def _notes(pool: Pool) -> list[str]:
    notes = ["advice only: a commitment is bought by a person, never applied by the agent"]
    if pool.source == "telemetry":
        notes.append("usage read from telemetry: terminated instances are invisible; billing exports (--billing) "
                     "see every instance-hour and the coverage existing commitments already give")
    if pool.cloud == Cloud.AWS.value:
        notes.append("a Compute Savings Plan sized here covers this pool only; usage in other families or "
                     "regions could absorb more of it")
    return notes


def _quote_evidence(quote: PriceQuote) -> dict[str, Any]:
    return {"instance_type": quote.instance_type, "hourly_usd": float(quote.hourly_usd), "source": quote.source,
            "as_of": quote.as_of.date().isoformat()}


def _rate_evidence(rate: CommitmentRate) -> dict[str, Any]:
    return {"instance_type": rate.instance_type, "instrument": rate.instrument.value, "term_years": rate.term_years,
            "hourly_usd": float(rate.hourly_usd), "source": rate.source, "as_of": rate.as_of.date().isoformat()}


# ---------------------------------------------------------------------------------------- billing


def billing_commitment_summary(billing: BillingData | None) -> dict[str, Any] | None:
    """Current coverage, commitment utilization and effective savings rate, from billing (plain JSON values).

    - ``coverage``: committed hours / usage hours over compute rows (resources with an instance type);
    - ``utilization``: used / (used + unused) commitment cost over ``billing.commitments``;
    - ``effective_savings_rate``: 1 - effective cost / list cost over usage rows whose list cost is known.
    Each is None where billing holds nothing to compute it from.
    """
    if billing is None:
        return None
    compute = [r for r in billing.resources if r.instance_type]
    usage_hours = sum(r.usage_hours for r in compute)
    committed_hours = sum(min(r.committed_hours, r.usage_hours) for r in compute)
    used = sum((c.used_cost for c in billing.commitments), Decimal(0))
    unused = sum((c.unused_cost for c in billing.commitments), Decimal(0))
    listed = [r for r in billing.resources if r.list_cost is not None and r.list_cost > 0]
    list_cost = sum((r.list_cost for r in listed if r.list_cost is not None), Decimal(0))
    effective = sum((r.effective_cost for r in listed), Decimal(0))
    return {
        "usage_hours": round(usage_hours, 4),
        "committed_hours": round(committed_hours, 4),
        "coverage": round(committed_hours / usage_hours, 4) if usage_hours > 0 else None,
        "commitment_used_usd": float(used),
        "commitment_unused_usd": float(unused),
        "utilization": round(float(used / (used + unused)), 4) if used + unused > 0 else None,
        "list_cost_usd": float(list_cost),
        "effective_cost_usd": float(effective),
        "effective_savings_rate": round(1.0 - float(effective / list_cost), 4) if list_cost > 0 else None,
        "commitments": [{"commitment_id": c.commitment_id, "provider": c.provider, "type": c.commitment_type,
                         "used_usd": float(c.used_cost), "unused_usd": float(c.unused_cost),
                         "utilization": None if c.utilization is None else round(c.utilization, 4)} for c in billing.commitments],
    }


__all__ = ["HOURLY_USAGE_COLUMNS", "NAME", "CommitmentSettings", "Option", "Pool", "billing_commitment_summary", "choose", "hour_grid",
           "hourly_usage", "options", "pool_of", "pools", "recommend"]

"""Commitment levels: the math of sizing a commitment on hourly usage (``recommenders/commitment_usage.py``).

**Sizing.** Usage ``u_t`` is in on-demand dollars per hour (instances running in hour ``t`` x their
on-demand hourly price, summed over a pool's types). A commitment of level ``q`` (on-demand $/h it covers)
bought at the rate ratio ``d`` (commitment hourly / on-demand hourly) costs ``d q`` every hour, used or
not, and removes ``min(u_t, q)`` of on-demand charges. Saving per hour, on average over the lookback::

    s(q) = mean_t(min(u_t, q)) - d q

``s`` is concave and piecewise linear with kinks at the distinct usage values, so its maximum lies on
one of them (or at 0). Its right slope at ``q`` is ``P(u > q) - d``: the optimum is the smallest level
where ``P(u > q) <= d`` — the newsvendor quantile, "commit the level q where P(u >= q) = d".
``optimal_level`` finds it exactly by evaluating ``s`` at every candidate (sorted prefix sums, O(T log T));
``quantile_level`` reads it off the empirical distribution; the tests check they agree. ``size`` applies
it to one instrument and term (the rate ratio usage-weighted over a pool's types, whole instances for
instruments bought as a count) and ``choose`` picks among the results.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from providers.model import (
    CommitmentRate,
    Instrument,
)

# ---------------------------------------------------------------------------------------- sizing

HOURS_PER_MONTH = 730.0
MONTHS_PER_YEAR = 12.0
PERCENTILES = (10, 25, 50, 75, 90)


def _series(usage: np.ndarray) -> np.ndarray:
    u = np.asarray(usage, dtype=float).ravel()
    if u.size == 0:
        raise ValueError("an empty usage series cannot size a commitment")
    if np.isnan(u).any() or (u < 0).any():
        raise ValueError("usage must be finite and non-negative (missing hours are 0: not running)")
    return u


def savings_per_hour(usage: np.ndarray, rate_ratio: float, levels: np.ndarray | float) -> np.ndarray:
    """``s(q) = mean(min(u, q)) - d q`` for each level (vectorized over levels)."""
    u = _series(usage)
    q = np.atleast_1d(np.asarray(levels, dtype=float))
    covered = np.minimum(u[None, :], q[:, None]).mean(axis=1)
    return covered - rate_ratio * q


def optimal_level(usage: np.ndarray, rate_ratio: float) -> float:
    """``argmax_q s(q)`` over the candidates ``{0} | distinct usage values``; the smallest on ties.

    With the usage sorted ascending (``v_0 <= ... <= v_{T-1}``), at ``q = v_k``:
    ``sum_t min(u_t, q) = (v_0 + ... + v_{k-1}) + q (T - k)`` — one prefix sum per candidate.
    """
    u = np.sort(_series(usage))
    n = u.size
    below = np.concatenate(([0.0], np.cumsum(u)[:-1]))  # sum of the k smallest values
    gain = (below + u * (n - np.arange(n))) / n - rate_ratio * u
    tolerance = 1e-9 * max(1.0, float(u[-1]))  # equal savings up to rounding: the smallest level wins
    best = int(np.flatnonzero(gain >= gain.max() - tolerance)[0])
    return float(u[best]) if gain[best] > tolerance else 0.0


def quantile_level(usage: np.ndarray, rate_ratio: float) -> float:
    """The smallest candidate level ``q`` with ``P(u > q) <= d`` (``{0} | distinct usage values``).

    Where the distribution has no atom at the optimum this is the ``q`` with ``P(u >= q) = d``.
    """
    u = _series(usage)
    candidates = np.unique(np.concatenate(([0.0], u)))
    exceed = 1.0 - np.searchsorted(np.sort(u), candidates, side="right") / u.size  # P(u > q)
    return float(candidates[np.argmax(exceed <= rate_ratio + 1e-12)])


def whole_units_level(usage: np.ndarray, rate_ratio: float, unit: float) -> float:
    """The best level in whole ``unit`` steps (whole instances for an RI or a reservation).

    ``s`` is concave, so the best multiple of ``unit`` is the floor or the ceiling of the free optimum.
    """
    q = optimal_level(usage, rate_ratio)
    if unit <= 0 or q == 0.0:
        return q
    steps = np.array([np.floor(q / unit + 1e-9), np.ceil(q / unit - 1e-9)]) * unit
    gains = savings_per_hour(usage, rate_ratio, steps)
    best = int(np.argmax(gains))
    return float(steps[best]) if gains[best] > 0.0 else 0.0


@dataclass(frozen=True)
class LevelOutcome:
    """What one level ``q`` at rate ratio ``d`` did over the lookback (all money in $ per hour or month)."""

    level: float  # q: on-demand $/h the commitment covers
    rate_ratio: float  # d: commitment hourly / on-demand hourly (= the break-even utilization)
    hours: int  # lookback hours
    usage_mean: float  # mean u: on-demand $/h used
    covered_mean: float  # mean min(u, q): on-demand $/h the commitment absorbs

    @property
    def hourly_commitment(self) -> float:
        """``d q``: the $/h a Savings Plan asks you to commit to (the effective hourly of an RI)."""
        return self.rate_ratio * self.level

    @property
    def break_even_utilization(self) -> float:
        """The commitment pays for itself when it is used at least this share of its hours (``d``)."""
        return self.rate_ratio

    @property
    def expected_utilization(self) -> float | None:
        """``mean(min(u, q)) / q``: the share of the commitment the lookback would have used."""
        return self.covered_mean / self.level if self.level > 0 else None

    @property
    def coverage(self) -> float | None:
        """``sum min(u, q) / sum u``: the share of on-demand usage the commitment would have covered."""
        return self.covered_mean / self.usage_mean if self.usage_mean > 0 else None

    @property
    def savings_per_hour(self) -> float:
        return self.covered_mean - self.hourly_commitment

    @property
    def monthly_savings(self) -> float:
        """``730 x (mean(min(u, q)) - d q)``."""
        return HOURS_PER_MONTH * self.savings_per_hour

    @property
    def monthly_commitment(self) -> float:
        return HOURS_PER_MONTH * self.hourly_commitment

    def payback_months(self, term_years: int) -> float | None:
        """Months an all-upfront purchase of the whole term takes to repay from the on-demand it avoids.

        Upfront = ``d q x 8,760 h x term_years`` (the no-upfront rate paid at once; real all-upfront
        prices are a few percent lower, so this errs long); avoided per month = ``730 x mean(min(u, q))``.
        Payback = upfront / avoided = ``12 x term_years x d q / mean(min(u, q))`` = ``12 x term x d /
        expected utilization``. Below ``12 x term_years`` exactly when the commitment saves money.
        """
        if self.covered_mean <= 0:
            return None
        upfront = self.hourly_commitment * HOURS_PER_MONTH * MONTHS_PER_YEAR * term_years
        return upfront / (HOURS_PER_MONTH * self.covered_mean)


def outcome(usage: np.ndarray, rate_ratio: float, level: float) -> LevelOutcome:
    u = _series(usage)
    return LevelOutcome(level=float(level), rate_ratio=float(rate_ratio), hours=int(u.size),
                        usage_mean=float(u.mean()), covered_mean=float(np.minimum(u, level).mean()))


def percentiles(usage: np.ndarray, scale: float = 1.0) -> dict[str, float]:
    """p10..p90, mean and max of ``usage / scale`` (scale: one instance's price gives instances)."""
    u = _series(usage) / scale
    out = {f"p{p}": round(float(v), 4) for p, v in zip(PERCENTILES, np.percentile(u, PERCENTILES), strict=True)}
    out["mean"] = round(float(u.mean()), 4)
    out["max"] = round(float(u.max()), 4)
    return out


def half_means(usage: np.ndarray, level: float) -> tuple[float, float]:
    """Mean covered usage ``min(u, q)`` in the first and in the second half of the lookback."""
    u = _series(usage)
    covered = np.minimum(u, level)
    half = u.size // 2
    if half == 0:
        return float(covered.mean()), float(covered.mean())
    return float(covered[:half].mean()), float(covered[half:].mean())


def drift(first: float, second: float) -> float:
    """``|second - first| / max(first, second)``: 0 for a steady level, 1 when one half is empty."""
    top = max(first, second)
    return abs(second - first) / top if top > 0 else 0.0


# ------------------------------------------------------------------------------------- instruments

#: Instruments bought as a count of instances (whole units when the pool holds one type).
UNIT_INSTRUMENTS = frozenset({Instrument.AWS_RI, Instrument.GCP_CUD, Instrument.AZURE_RESERVATION})
#: At equal savings the more flexible instrument wins (first in this order).
FLEXIBILITY = (Instrument.AWS_COMPUTE_SP, Instrument.AZURE_SAVINGS_PLAN, Instrument.AWS_EC2_INSTANCE_SP,
               Instrument.AWS_RI, Instrument.AZURE_RESERVATION, Instrument.GCP_CUD)
NAMES = {
    Instrument.AWS_COMPUTE_SP: "Compute Savings Plan",
    Instrument.AWS_EC2_INSTANCE_SP: "EC2 Instance Savings Plan",
    Instrument.AWS_RI: "standard Reserved Instances",
    Instrument.GCP_CUD: "committed use discount",
    Instrument.AZURE_RESERVATION: "reservation",
    Instrument.AZURE_SAVINGS_PLAN: "savings plan for compute",
}
FIT = {
    Instrument.AWS_COMPUTE_SP: "a $/h commitment that follows usage across families, sizes, OS and regions; "
                               "the smallest discount, bought for flexibility (sized here on this pool only)",
    Instrument.AWS_EC2_INSTANCE_SP: "a $/h commitment for one family in one region; any size, OS or tenancy, "
                                    "so resizing inside the family keeps the discount",
    Instrument.AWS_RI: "a count of instances of one family in one region (regional standard RI, size-flexible "
                       "for Linux, shared tenancy); the deepest AWS discount, no change of family, region or OS",
    Instrument.GCP_CUD: "resource-based: the GPUs (with vCPUs and memory) of one series in one region, billed "
                        "monthly whether used or not",
    Instrument.AZURE_RESERVATION: "one VM size (its instance-size-flexibility group) in one region",
    Instrument.AZURE_SAVINGS_PLAN: "a $/h commitment for any VM size in any region; a smaller discount than a "
                                   "reservation",
}


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), digits)


@dataclass(frozen=True)
class Option:
    """One instrument and term sized for one pool."""

    instrument: Instrument
    term_years: int
    rates: tuple[CommitmentRate, ...]  # one per pool type
    result: LevelOutcome
    unit: float | None = None  # one instance's on-demand $/h (single-type pools): levels in instances
    gpus: int | None = None  # GPUs per instance (single-type pools)
    #: The level the whole lookback would pick, when a decline in the latest week capped it (else None).
    uncapped_level: float | None = None

    def figures(self) -> dict[str, Any]:
        """Every number of this option, JSON-able (the recommendation's evidence and its alternatives)."""
        res, unit = self.result, self.unit
        return {
            "instrument": self.instrument.value,
            "instrument_name": NAMES[self.instrument],
            "term_years": self.term_years,
            "rate_ratio": round(res.rate_ratio, 6),
            "level_usd_per_hour": round(res.level, 4),
            "level_instances": round(res.level / unit, 3) if unit else None,
            "level_gpus": round(res.level / unit * self.gpus, 3) if unit and self.gpus else None,
            "hourly_commitment_usd": round(res.hourly_commitment, 4),
            "monthly_commitment_usd": round(res.monthly_commitment, 2),
            "break_even_utilization": round(res.break_even_utilization, 4),
            "expected_utilization": _round(res.expected_utilization),
            "coverage": _round(res.coverage),
            "monthly_savings_usd": round(res.monthly_savings, 2),
            "payback_months": _round(res.payback_months(self.term_years), 2),
            "capped_by_recent_decline": self.uncapped_level is not None,
            "uncapped_level_usd_per_hour": None if self.uncapped_level is None else round(self.uncapped_level, 4),
        }


def size(usage: np.ndarray, weights: np.ndarray, on_demand: Sequence[float], rates: Sequence[CommitmentRate],
         gpus: int | None = None, follow_trend: bool = True) -> Option:
    """Size one instrument and term (``rates``: one per type, same instrument and term) on ``usage``.

    ``d`` is the ratio rate / on-demand per type, averaged with ``weights`` (each type's mean on-demand
    $/h); a single-type pool bought as a count (RI, CUD, reservation) is sized in whole instances.
    """
    ratios = np.array([float(r.hourly_usd) / od for r, od in zip(rates, on_demand, strict=True)])
    d = float(np.average(ratios, weights=weights))
    first = rates[0]
    unit = float(on_demand[0]) if len(rates) == 1 else None

    def level(u: np.ndarray) -> float:
        return whole_units_level(u, d, unit) if unit and first.instrument in UNIT_INSTRUMENTS else optimal_level(u, d)

    q = level(usage)
    uncapped = None
    slope = baseline_trend(usage)
    recent = _series(usage)[-RECENT_HOURS:]
    # A commitment outlives its lookback: where the floor is falling and the latest week alone already
    # supports less, size on the latest week carried down the trend.
    if follow_trend and declining(usage, q, slope) and level(recent) < q:
        q, uncapped = min(q, level(projected(recent, slope))), q
    return Option(first.instrument, first.term_years, tuple(rates), outcome(usage, d, q), unit, gpus if unit else None,
                  uncapped)


#: The latest stretch of the lookback a declining pool is sized on (one week: every hour of the week once).
RECENT_HOURS = 168
#: A floor falling by more than this share of the level over the lookback counts as a decline.
DECLINE_SHARE = 0.1
#: Days from the latest week's middle to the middle of the commitment's first month.
PROJECTION_DAYS = 3.5 + 15.0


def baseline_trend(usage: np.ndarray) -> float:
    """Least-squares slope of the daily minimum usage ($/h per day; whole days only).

    The floor, not the mean: the floor is what a commitment covers, and bursts move the mean.
    """
    u = _series(usage)
    days = u.size // 24
    if days < 2:
        return 0.0
    floors = u[u.size - days * 24:].reshape(days, 24).min(axis=1)
    return float(np.polyfit(np.arange(days, dtype=float), floors, 1)[0])


def projected(recent: np.ndarray, slope_per_day: float) -> np.ndarray:
    """The latest week's hourly usage moved along a falling trend to the first month's middle (never below 0)."""
    return np.clip(_series(recent) + min(0.0, slope_per_day) * PROJECTION_DAYS, 0.0, None)


def declining(usage: np.ndarray, level: float, slope_per_day: float) -> bool:
    """Two weeks of data at least, and a floor that fell by more than ``DECLINE_SHARE`` of ``level`` over them."""
    u = _series(usage)
    if u.size < 2 * RECENT_HOURS or level <= 0:
        return False
    return slope_per_day * (u.size / 24) < -DECLINE_SHARE * level


def choose(candidates: Sequence[Option], term_years: Collection[int]) -> Option | None:
    """The highest monthly saving among the allowed terms; the more flexible instrument on a tie."""
    allowed = [o for o in candidates if o.term_years in term_years and o.result.monthly_savings > 0]
    if not allowed:
        return None
    return max(allowed, key=lambda o: (round(o.result.monthly_savings, 6), -FLEXIBILITY.index(o.instrument),
                                       -o.term_years))


__all__ = [
    "FIT",
    "FLEXIBILITY",
    "HOURS_PER_MONTH",
    "NAMES",
    "UNIT_INSTRUMENTS",
    "LevelOutcome",
    "Option",
    "choose",
    "drift",
    "half_means",
    "optimal_level",
    "outcome",
    "percentiles",
    "quantile_level",
    "savings_per_hour",
    "size",
    "whole_units_level",
]

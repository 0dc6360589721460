"""``spot``: advise running an on-demand GPU instance's interruptible work on spot, where it pays after overhead.

Interruptible work is **declared** by the tag / label ``costagent:interruptible`` = true / yes / 1 (false /
no / 0, or any other value, vetoes a finding whatever the pattern says; ``:``, ``-`` and ``_`` read alike,
case ignored, so GCP labels write ``costagent-interruptible``), with optional ``costagent:checkpoint-minutes``,
``costagent:restart-minutes``, ``costagent:slack-pct`` and ``costagent:deadline-hours``; or **evident** from
the telemetry (``batch_pattern``: complete busy runs between idle gaps, a saturated GPU while running, no
recurring time of day or week, not idle longer than ever before), for a lower-confidence finding whose
summary asks to confirm. A steady server, office hours or a nightly job is never inferred.

Economics (``recommenders/economics.py``): spot x (1 + overhead) per useful hour, overhead from Young's
checkpoint interval; monthly saving 730 h x (on-demand - that). Advice only (``action=None``): an
on-demand instance cannot become spot in place. docs/spot.md has every default and why.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal


from providers.hardware import same_model
from providers.model import (
    HOURS_PER_MONTH,
    PriceQuote,
    PricingModel,
    Resource,
    ResourceState,
    Snapshot,
)
from recommenders.economics import (
    OVERHEAD_DIGITS,
    expected_spot_hourly,
    monthly_interruption_rate,
    mtbf_hours,
    notice_seconds,
    optimal_checkpoint_interval_hours,
    spot_overhead,
)
from recommenders.batch_pattern import Pattern, batch_pattern, busiest_gpu_util
from recommenders.idle import IdleReport, IdleSettings
from recommenders.model import Kind, Recommendation, Risk

NAME = "spot"
log = logging.getLogger(__name__)

TAG_INTERRUPTIBLE = "costagent:interruptible"
TAG_CHECKPOINT = "costagent:checkpoint-minutes"
TAG_RESTART = "costagent:restart-minutes"
TAG_SLACK_PCT = "costagent:slack-pct"
TAG_DEADLINE = "costagent:deadline-hours"
TAG_JOB_HOURS = "costagent:job-hours"  # how long one job runs: with a deadline, checks the checkpoint writes fit
TRUE_VALUES = frozenset({"true", "yes", "1"})
FALSE_VALUES = frozenset({"false", "no", "0"})
#: A band above this monthly rate (">20%", an unknown band, GCP's default) raises the risk one step.
HIGH_RATE = 0.20
#: Diversification types need at least this share of the current GPU memory (sources disagree slightly).
SAME_MEMORY_RATIO = 0.9


@dataclass(frozen=True)
class SpotSettings:
    min_net_saving_pct: float = 15.0
    min_monthly_saving_usd: Decimal = Decimal(50)
    #: C when not tagged: a large model's sharded checkpoint to object storage.
    checkpoint_minutes: float = 10.0
    #: R when not tagged: new capacity, boot, driver, container, re-staged data, checkpoint reload.
    restart_minutes: float = 30.0
    #: Work that would spend more than this on checkpoints, lost work and restarts is not advised.
    max_overhead: float = 0.25
    min_batch_runs: int = 2
    #: Batch work saturates its GPU: 3/4 of the runs' busy time (their P25) at this utilization or more.
    batch_util_min_pct: float = 60.0
    min_idle_share: float = 0.05
    max_run_unknown_share: float = 0.10
    #: Busy hours overlapping across days / weeks this many times more than chance: a recurring pattern.
    max_recurrence_lift: float = 1.4
    #: Below this many hours of chance overlap, recurrence cannot be ruled out: nothing is inferred.
    min_expected_overlap_hours: float = 4.0
    max_diversification: int = 5


def _tag_item(res: Resource, name: str) -> tuple[str, str] | None:
    """(key as written, value) of tag ``name``, keys read with ``:``, ``-`` and ``_`` alike and case ignored."""
    def canonical(key: str) -> str:
        return key.strip().lower().replace(":", "-").replace("_", "-")
    return next(((k, v.strip()) for k, v in res.tags.items() if canonical(k) == canonical(name)), None)


def _tag(res: Resource, name: str) -> str | None:
    item = _tag_item(res, name)
    return item[1] if item else None


def _number_tag(res: Resource, name: str) -> tuple[float | None, bool]:
    """(value, malformed): a tag's non-negative number; (None, False) when absent."""
    raw = _tag(res, name)
    if raw is None:
        return None, False
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    return (value, False) if math.isfinite(value) and value >= 0 else (None, True)


def recommend(
    snapshot: Snapshot,
    idle: IdleReport,
    resources: Mapping[str, Resource],
    settings: SpotSettings,
    idle_settings: IdleSettings,
    exclude: Collection[str] = (),
) -> list[Recommendation]:
    per, skip = idle.per_resource, set(exclude)
    rows = {k: i for i, k in enumerate(idle.keys)}
    keys = [k for k in idle.keys if k in resources and k not in skip and resources[k].group is None
            and resources[k].state == ResourceState.RUNNING and resources[k].has_gpu
            and resources[k].pricing_model == PricingModel.ON_DEMAND
            and float(per.at[k, "known_hours"]) >= idle_settings.min_data_hours]
    undeclared = [k for k in keys if _tag(resources[k], TAG_INTERRUPTIBLE) is None]
    timed = [k for k in keys if _tag(resources[k], TAG_DEADLINE) is not None and _tag(resources[k], TAG_JOB_HOURS) is None]
    util = busiest_gpu_util(snapshot, idle, sorted(set(undeclared) | set(timed)))
    recs = []
    for key in keys:
        res = resources[key]
        declared = _tag(res, TAG_INTERRUPTIBLE)
        pattern = None
        if declared is None:
            pattern = batch_pattern(idle, rows[key], util.get(key), settings)
            if not pattern.batch:
                _skip(res, f"not declared interruptible; {pattern.reason}")
                continue
        elif declared.lower() not in TRUE_VALUES:
            _skip(res, f"{TAG_INTERRUPTIBLE}={declared}: " + ("declared not interruptible" if declared.lower()
                                                             in FALSE_VALUES else "value not understood, read as a veto"))
            continue
        runs = pattern if pattern is not None else \
            (batch_pattern(idle, rows[key], util.get(key), settings) if key in timed else None)
        rec = _recommend_one(snapshot, res, pattern, settings, runs)
        if rec is not None:
            recs.append(rec)
    return recs


# ------------------------------------------------------------------------------------------ pattern


# ---------------------------------------------------------------------------------------- economics


@dataclass(frozen=True)
class SpotTerms:
    """The spot economics of one instance type (every number the evidence shows)."""

    quote: PriceQuote
    rate: float
    rate_source: str
    mtbf_h: float
    interval_h: float
    overhead: float  # rounded to OVERHEAD_DIGITS: the figure the money arithmetic uses
    expected_hourly: Decimal


def spot_terms(quote: PriceQuote, checkpoint_h: float, restart_h: float, deadline_h: float | None = None,
               job_h: float | None = None) -> SpotTerms | None:
    """The overhead and expected hourly cost on spot; None when a deadline cannot absorb one interruption.

    With a deadline slack of D hours over a job of L hours, the job must finish in time with its
    checkpoint writes (L C / tau) and one interruption at the worst moment (a whole interval lost,
    a checkpoint and a restart): L C / tau + tau + C + R <= D. Young's tau* is kept when it fits; else
    tau = sqrt(L C), which minimizes the left side; when even that does not fit, None. Without L
    (unknown job length) only the interruption is checked: tau <= D - R. D <= R: never.
    """
    rate, source = monthly_interruption_rate(quote.interruption, quote.cloud)
    mtbf = mtbf_hours(rate)
    if deadline_h is not None and deadline_h <= restart_h:
        return None
    if math.isinf(mtbf):
        interval, overhead = math.inf, 0.0
    elif checkpoint_h == 0:
        interval, overhead = 0.0, spot_overhead(0.0, restart_h, mtbf)
    else:
        interval = optimal_checkpoint_interval_hours(checkpoint_h, mtbf)
        if deadline_h is not None:
            interval = min(interval, deadline_h - restart_h)
            if job_h is not None and job_h > 0:
                def late_by(tau: float) -> float:
                    return job_h * checkpoint_h / tau + tau + checkpoint_h + restart_h - deadline_h

                if late_by(interval) > 0:
                    interval = math.sqrt(job_h * checkpoint_h)
                    if late_by(interval) > 0:
                        return None
        overhead = spot_overhead(checkpoint_h, restart_h, mtbf, interval)
    overhead = round(overhead, OVERHEAD_DIGITS)
    return SpotTerms(quote, rate, source, mtbf, interval, overhead, expected_spot_hourly(quote.hourly_usd, overhead))


def diversification(snapshot: Snapshot, res: Resource, checkpoint_h: float, restart_h: float,
                    deadline_h: float | None, limit: int) -> list[dict[str, object]]:
    """Other spot types of the region that can run the same job: the same GPU model and count, at least
    the GPU memory and the host (vCPU, RAM), sorted by expected spot cost per useful hour."""
    acc = res.accelerators
    cloud, region = str(res.ref.cloud), res.ref.region
    if acc is None:
        return []
    current = snapshot.spec_for(cloud, res.instance_type)
    vcpu = res.vcpu or (current.vcpu if current else 0)
    ram = res.memory_gib or (current.memory_gib if current else 0.0)
    found = []
    for itype in sorted(snapshot.offerings.get((cloud, region), frozenset()) - {res.instance_type}):
        spec = snapshot.spec_for(cloud, itype)
        other = spec.accelerators if spec else None
        if (spec is None or other is None or other.count != acc.count or not same_model(other.model, acc.model)
                or other.memory_gib < SAME_MEMORY_RATIO * acc.memory_gib
                or spec.vcpu < vcpu or spec.memory_gib < SAME_MEMORY_RATIO * ram):
            continue
        quote = snapshot.quote(cloud, region, itype, PricingModel.SPOT)
        terms = spot_terms(quote, checkpoint_h, restart_h, deadline_h) if quote else None
        if terms is None:
            continue
        found.append((terms.expected_hourly, itype, {
            "instance_type": itype, "gpu_model": other.model, "gpus": other.count, "vcpu": spec.vcpu,
            "spot_hourly_usd": float(terms.quote.hourly_usd), "interruption_band": terms.quote.interruption,
            "monthly_interruption_rate": round(terms.rate, 4), "overhead_pct": round(terms.overhead * 100, 4),
            "expected_spot_hourly_usd": round(float(terms.expected_hourly), 6), "price_source": terms.quote.source}))
    return [entry for _, _, entry in sorted(found, key=lambda f: (f[0], f[1]))[:limit]]


def _minutes(res: Resource, tag: str, default: float, notes: list[str]) -> tuple[float, str]:
    value, malformed = _number_tag(res, tag)
    if malformed:
        notes.append(f"tag {tag}={_tag(res, tag)!r} is not a number of minutes: the default {default:g} is used")
    return (value, f"tag {tag}") if value is not None else (default, "default")


def _skip(res: Resource, reason: str) -> None:
    log.debug("spot skip resource=%s reason=%r", res.ref.key, reason)


def _recommend_one(snapshot: Snapshot, res: Resource, pattern: Pattern | None,
                   settings: SpotSettings, runs: Pattern | None = None) -> Recommendation | None:
    """``pattern``: the inferred batch pattern (None: declared); ``runs``: the busy runs seen, for the job length."""
    cloud, region, itype = res.ref.cloud, res.ref.region, res.instance_type
    on_demand = snapshot.quote(cloud, region, itype, PricingModel.ON_DEMAND)
    spot = snapshot.quote(cloud, region, itype, PricingModel.SPOT)
    if on_demand is None or spot is None:
        return _skip(res, f"no {'on-demand' if on_demand is None else 'spot'} price for {itype} in {region}")
    notes: list[str] = []
    c_min, c_source = _minutes(res, TAG_CHECKPOINT, settings.checkpoint_minutes, notes)
    r_min, r_source = _minutes(res, TAG_RESTART, settings.restart_minutes, notes)
    slack_pct, bad_slack = _number_tag(res, TAG_SLACK_PCT)
    deadline_h, bad_deadline = _number_tag(res, TAG_DEADLINE)
    if bad_slack or bad_deadline:
        return _skip(res, f"unreadable {TAG_SLACK_PCT if bad_slack else TAG_DEADLINE} tag: the slack is unknown")
    job_h, bad_job = _number_tag(res, TAG_JOB_HOURS)
    if job_h is None and runs is not None and runs.median_run_hours:
        job_h = float(runs.median_run_hours)  # the median busy run seen: one job
    if deadline_h is not None and job_h is None:
        notes.append(f"job length unknown (set {TAG_JOB_HOURS}): only one interruption is checked against the deadline, "
                     "not the checkpoint writes over a whole job")
    terms = spot_terms(spot, c_min / 60, r_min / 60, deadline_h, None if bad_job else job_h)
    if terms is None:
        return _skip(res, f"deadline {deadline_h:g} h cannot absorb the checkpoint writes and one restart of {r_min:g} min")
    if terms.overhead > settings.max_overhead:
        return _skip(res, f"overhead {terms.overhead:.1%} above the {settings.max_overhead:.0%} limit")
    if slack_pct is not None and terms.overhead * 100 > slack_pct:
        return _skip(res, f"expected overhead {terms.overhead:.2%} exceeds the declared slack of {slack_pct:g} %")
    hourly_saving = on_demand.hourly_usd - terms.expected_hourly
    monthly = HOURS_PER_MONTH * hourly_saving
    pct = float(hourly_saving / on_demand.hourly_usd * 100) if on_demand.hourly_usd > 0 else 0.0
    if monthly < settings.min_monthly_saving_usd or pct < settings.min_net_saving_pct:
        return _skip(res, f"saving {monthly:.2f} USD/month ({pct:.1f} %) below the thresholds "
                          f"({settings.min_monthly_saving_usd} USD, {settings.min_net_saving_pct:g} %)")

    if deadline_h is not None:
        notes.append(f"checkpoint every {terms.interval_h * 60:.0f} min at most, so that one interruption (a lost "
                     f"interval and a restart) fits the {deadline_h:g} h deadline")
    declared = pattern is None
    band = spot.interruption
    risky_band = terms.rate > HIGH_RATE
    confidence = (0.8 if declared else 0.5) - (0.1 if band is None else 0.0)
    risk = (Risk.LOW, Risk.MEDIUM, Risk.HIGH)[(0 if declared else 1) + (1 if risky_band else 0)]
    notice = notice_seconds(cloud)
    notes.append(f"{cloud.value.upper()} gives {notice} s notice before an interruption; no credit is taken for "
                 "checkpointing on notice: the work since the last periodic checkpoint counts as lost")
    if risky_band:
        notes.append(f"interruptions are frequent ({terms.rate:.2f} a month assumed): spread over the types "
                     "and zones below (a fleet or group with several types) to keep capacity")
    notes.append("advice only: an on-demand instance cannot become spot in place; launch spot capacity from "
                 "the same image and storage, resume from the last checkpoint, then terminate this instance; "
                 "time spent waiting for spot capacity after an interruption is not modelled")
    diversify = diversification(snapshot, res, c_min / 60, r_min / 60, deadline_h, settings.max_diversification)
    evidence: dict[str, object] = {
        "interruptible": "declared" if declared else "inferred from the usage pattern",
        "declared_by": "=".join(_tag_item(res, TAG_INTERRUPTIBLE) or ()) if declared else None,
        "pattern": pattern.evidence() if pattern else None,
        "on_demand_hourly_usd": float(on_demand.hourly_usd), "spot_hourly_usd": float(spot.hourly_usd),
        "interruption_band": band, "monthly_interruption_rate": round(terms.rate, 6), "rate_source": terms.rate_source,
        "mtbf_hours": round(terms.mtbf_h, 3), "notice_seconds": notice,
        "checkpoint_minutes": c_min, "checkpoint_minutes_source": c_source,
        "restart_minutes": r_min, "restart_minutes_source": r_source,
        "checkpoint_interval_minutes": round(terms.interval_h * 60, 2) if math.isfinite(terms.interval_h) else None,
        "overhead_pct": round(terms.overhead * 100, OVERHEAD_DIGITS - 2),
        "overhead_formula": "C/tau + (tau/2 + R)/M, tau = sqrt(2 C M) (Young), M = 730 h / monthly rate",
        "expected_spot_hourly_usd": float(terms.expected_hourly), "net_saving_pct": round(pct, 2),
        "hours_per_month": int(HOURS_PER_MONTH),
        "savings_basis": (f"730 h x (on-demand {on_demand.hourly_usd} - spot {spot.hourly_usd} x "
                          f"(1 + {terms.overhead:.{OVERHEAD_DIGITS}f})) = {monthly.quantize(Decimal('0.01'))} USD/month"),
        "slack_pct": slack_pct, "deadline_hours": deadline_h, "job_hours": job_h,
        "thresholds": {"min_net_saving_pct": settings.min_net_saving_pct, "max_overhead_pct": settings.max_overhead * 100,
                       "min_monthly_saving_usd": float(settings.min_monthly_saving_usd)},
        "on_demand_price_source": on_demand.source, "spot_price_source": spot.source,
        "spot_price_as_of": spot.as_of.date().isoformat(),
        "diversification": diversify,
        "zones": f"any zone of {region} (no per-zone spot prices in this snapshot)",
        "notes": notes,
    }
    if declared:
        summary = (f"Spot: run this {itype} on spot at ${terms.expected_hourly:.4f}/h expected (spot ${spot.hourly_usd} "
                   f"+ {terms.overhead:.2%} interruption overhead, band {band or 'unknown'}) vs ${on_demand.hourly_usd}/h "
                   f"on-demand: saves ${monthly:,.0f}/month ({pct:.0f} %)")
    else:
        assert pattern is not None
        summary = (f"Spot?: batch-shaped work ({pattern.complete_runs} jobs that start and end, busiest GPU "
                   f"{pattern.busy_util_median_pct:.0f} % while busy); if it checkpoints, spot saves ${monthly:,.0f}/month "
                   f"({pct:.0f} %): confirm and tag {TAG_INTERRUPTIBLE}=true")
    return Recommendation(
        recommender=NAME, kind=Kind.SPOT, ref=res.ref, instance_type=itype, monthly_savings_usd=monthly,
        confidence=round(confidence, 3), risk=risk, summary=summary, evidence=evidence, action=None, name=res.name,
    )

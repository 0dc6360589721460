"""Money arithmetic shared by recommenders: a month is 730 hours, money is Decimal; and the spot model."""

from __future__ import annotations

import math
import re
from decimal import Decimal

from providers.model import HOURS_PER_MONTH, Cloud, PriceQuote

HOURS_PER_WEEK = Decimal(168)


def monthly_cost(hourly: Decimal) -> Decimal:
    return hourly * HOURS_PER_MONTH


def monthly_from_weekly_hours(hours_per_week: float, hourly: Decimal) -> Decimal:
    """Dollars a month for ``hours_per_week`` hours every week at ``hourly``."""
    return Decimal(str(round(hours_per_week, 4))) * HOURS_PER_MONTH / HOURS_PER_WEEK * hourly


def price_evidence(quote: PriceQuote | None) -> dict[str, object]:
    if quote is None:
        return {"hourly_usd": None, "source": "no price known for this type and region"}
    return {
        "hourly_usd": float(quote.hourly_usd),
        "pricing_model": quote.pricing_model.value,
        "source": quote.source,
        "as_of": quote.as_of.date().isoformat(),
    }


# ----------------------------------------------------------------------------------------- spot
#
# The spot model (docs/spot.md): an interruptible job on spot pays the spot price for every hour it
# runs, and runs longer than on on-demand by an overhead fraction (checkpoint writes, work lost at an
# interruption, restarts). Rates are "expected interruptions per instance per month" (730 h); the
# bands the clouds publish are a share of instances interrupted over a trailing month, which is that
# rate while it is small (and an understatement when large: hence the bands' upper bounds).

#: Notice before an interruption, seconds: AWS sends a two-minute interruption notice; GCP spot VMs
#: and Azure spot VMs give 30 seconds. No credit is given for checkpointing on notice: the model
#: assumes all work since the last periodic checkpoint is lost.
NOTICE_SECONDS: dict[str, int] = {"aws": 120, "gcp": 30, "azure": 30}
#: Who publishes the interruption bands, per cloud (for the evidence).
BAND_PUBLISHER: dict[str, str] = {"aws": "AWS Spot Advisor", "azure": "Azure spot eviction-rate", "gcp": "GCP"}
#: An open band (">20%", Azure's "20+") has no published upper bound: it is taken as twice its floor.
OPEN_BAND_FACTOR = 2.0
#: Google's only published figure (for preemptible VMs, the spot VMs' predecessor): "the average
#: preemption rate varies between 5% and 15% per day per project, on a seven-day average". Its upper
#: bound, per day, scaled to a 730-hour month: 0.15 x 730 / 24 = 4.5625 interruptions a month.
GCP_DAILY_PREEMPTION_RATE = 0.15
#: Where no band is known (AWS, Azure) the top band's value: 20 % x OPEN_BAND_FACTOR = 40 % a month.
UNKNOWN_BAND_RATE = 0.20 * OPEN_BAND_FACTOR
#: The overhead enters money arithmetic rounded to this many decimals (0.0001 %), so the evidence
#: reproduces the expected spot price exactly.
OVERHEAD_DIGITS = 6

_CLOSED_BAND = re.compile(r"^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$")
_BELOW_BAND = re.compile(r"^<(\d+(?:\.\d+)?)$")
_OPEN_BAND = re.compile(r"^(?:>(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?)\+)$")


def notice_seconds(cloud: Cloud | str) -> int:
    """Seconds of warning before a spot interruption on ``cloud``."""
    return NOTICE_SECONDS[str(cloud)]


def band_rate(band: str) -> tuple[float, str] | None:
    """A published interruption band -> (monthly rate, how it was read); None for a label not understood.

    ``"<5%"`` and ``"10-15%"`` (AWS Spot Advisor), ``"0-5"`` (Azure) -> the band's upper bound;
    ``">20%"`` and ``"20+"`` -> twice the floor (``OPEN_BAND_FACTOR``).
    """
    label = band.replace("%", "").replace(" ", "")
    if m := _CLOSED_BAND.match(label):
        return float(m.group(2)) / 100, f"band {band}: its upper bound"
    if m := _BELOW_BAND.match(label):
        return float(m.group(1)) / 100, f"band {band}: its upper bound"
    if m := _OPEN_BAND.match(label):
        floor = float(m.group(1) or m.group(2)) / 100
        return floor * OPEN_BAND_FACTOR, f"open band {band}: no upper bound published, taken as {OPEN_BAND_FACTOR:g} x its floor"
    return None


def monthly_interruption_rate(band: str | None, cloud: Cloud | str) -> tuple[float, str]:
    """Expected interruptions per instance per 730-hour month, and where the figure comes from.

    =========  =====  ==============================================================
    band       rate   why
    =========  =====  ==============================================================
    <5%        0.05   upper bound (conservative: the band is a range)
    5-10%      0.10   upper bound
    10-15%     0.15   upper bound
    15-20%     0.20   upper bound
    >20%       0.40   open band: twice its floor (AWS publishes no upper bound)
    none, AWS  0.40   the top band's value: an unknown band is not assumed to be a good one
    none, Azr  0.40   the same (Azure publishes the same five bands per size and region)
    none, GCP  4.5625 Google's published 5-15 % a day (preemptible VMs), upper bound, x 730/24
    =========  =====  ==============================================================
    """
    cloud = str(cloud)
    if band:
        read = band_rate(band)
        if read is not None:
            return read[0], f"{BAND_PUBLISHER.get(cloud, cloud)} {read[1]}"
        reason = f"band {band!r} not understood; "
    else:
        reason = "no interruption band known; "
    if cloud == "gcp":
        rate = GCP_DAILY_PREEMPTION_RATE * float(HOURS_PER_MONTH) / 24
        return rate, (reason + f"GCP default: Google's published preemption rate of up to "
                      f"{GCP_DAILY_PREEMPTION_RATE:.0%} a day (preemptible VMs), x 730/24 h")
    return UNKNOWN_BAND_RATE, reason + f"{cloud.upper()} default: the top band's value ({UNKNOWN_BAND_RATE:.0%} a month)"


def mtbf_hours(rate: float) -> float:
    """Mean running hours between interruptions at ``rate`` interruptions a month: 730 / rate (inf at 0)."""
    if rate < 0:
        raise ValueError(f"negative interruption rate {rate}")
    return math.inf if rate == 0 else float(HOURS_PER_MONTH) / rate


def optimal_checkpoint_interval_hours(checkpoint_h: float, mtbf_h: float) -> float:
    """Young's optimal checkpoint interval: tau = sqrt(2 x C x M) hours of work between checkpoints."""
    if checkpoint_h < 0 or mtbf_h <= 0:
        raise ValueError(f"checkpoint {checkpoint_h} h, MTBF {mtbf_h} h: need C >= 0 and M > 0")
    return math.sqrt(2 * checkpoint_h * mtbf_h)


def spot_overhead(checkpoint_h: float, restart_h: float, mtbf_h: float, interval_h: float | None = None) -> float:
    """Extra running time per hour of useful work on spot, at the optimal checkpoint interval.

    Derivation (Young, 1974). Work is checkpointed every tau hours of useful work, each checkpoint
    taking C hours: C / tau extra per useful hour. Interruptions arrive at 1 / M per running hour
    (M: mean time between failures). Each one destroys the work done since the last checkpoint -
    tau / 2 on average, the interruption falling anywhere in the interval - and costs a restart of R
    hours (new instance, boot, reload the checkpoint): (tau / 2 + R) / M per useful hour. So

        overhead(tau) = C / tau + (tau / 2 + R) / M,

    minimal where d/dtau = -C / tau^2 + 1 / (2 M) = 0, i.e. tau* = sqrt(2 C M), giving

        overhead = sqrt(2 C / M) + R / M.

    First order in tau / M (the lost interval is not itself re-interrupted), which holds while
    tau << M; the notice period earns no credit. C = 0 (free checkpoints) leaves R / M; M = inf
    (no interruptions) leaves 0. ``interval_h`` evaluates overhead(tau) at a given tau instead (a
    deadline may force checkpoints more often than tau*).
    """
    if restart_h < 0:
        raise ValueError(f"negative restart time {restart_h} h")
    if math.isinf(mtbf_h):
        return 0.0
    if interval_h is None:
        if checkpoint_h == 0:
            return restart_h / mtbf_h
        interval_h = optimal_checkpoint_interval_hours(checkpoint_h, mtbf_h)
    if interval_h <= 0:
        raise ValueError(f"checkpoint interval {interval_h} h must be positive")
    return checkpoint_h / interval_h + (interval_h / 2 + restart_h) / mtbf_h


def expected_spot_hourly(spot: Decimal, overhead: float) -> Decimal:
    """The spot price per hour of useful work: spot x (1 + overhead), the overhead to ``OVERHEAD_DIGITS``."""
    if overhead < 0:
        raise ValueError(f"negative overhead {overhead}")
    return spot * (1 + Decimal(str(round(overhead, OVERHEAD_DIGITS))))

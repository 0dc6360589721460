"""Builders for the commitment tests: fleets whose hourly instance counts are given, rates, billing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pandas as pd

from providers.model import (
    BILLING_HOURLY_COLUMNS,
    BillingData,
    Cloud,
    CommitmentRate,
    CommitmentUse,
    Instrument,
    Metric,
    PriceQuote,
    PricingModel,
    Resource,
    ResourceBilling,
    Snapshot,
    Usage,
    price_key,
)
from tests.builders import NOW, FrameBuilder, resource, times, window

HOUR = timedelta(hours=1)
REGION = "us-east-1"
ITYPE = "p4d.24xlarge"
ON_DEMAND = Decimal(10)  # round numbers: the savings are checked by hand


def hours_window(days: float):
    return window(days=days, period=HOUR)


def diurnal(days: float, always: int, extra: int, busy_hours: int = 10, start_hour: int = 8) -> np.ndarray:
    """Instances per hour: ``always`` all day, ``extra`` more during ``busy_hours`` hours of each UTC day."""
    stamps = times(hours_window(days), HOUR)
    on = (stamps.hour >= start_hour) & (stamps.hour < start_hour + busy_hours)
    return np.where(on, always + extra, always).astype(int)


def fleet(counts: np.ndarray, days: float, itype: str = ITYPE, prefix: str = "n", region: str = REGION,
          gpus: int = 8, pricing: PricingModel = PricingModel.ON_DEMAND) -> tuple[list[Resource], FrameBuilder]:
    """Instances ``0..max-1``; instance ``i`` runs (publishes CPU) in every hour where ``i < counts[t]``."""
    stamps = times(hours_window(days), HOUR)
    counts = np.asarray(counts)
    assert counts.size == stamps.size, (counts.size, stamps.size)
    builder = FrameBuilder()
    out = []
    for i in range(int(counts.max())):
        res = replace(resource(f"{prefix}{i}", gpus=gpus, itype=itype, region=region), pricing_model=pricing)
        out.append(res)
        builder.add(res, Metric.CPU_UTIL, stamps, np.where(i < counts, 50.0, np.nan))
    return out, builder


def rates(itype: str = ITYPE, region: str = REGION, on_demand: Decimal = ON_DEMAND, **ratios: float) -> list[CommitmentRate]:
    """``rates(ec2_sp_1=0.6, ri_3=0.4)``: rate ratios per instrument (short name) and term, of ``on_demand``."""
    short = {"compute_sp": Instrument.AWS_COMPUTE_SP, "ec2_sp": Instrument.AWS_EC2_INSTANCE_SP, "ri": Instrument.AWS_RI}
    out = []
    for key, ratio in ratios.items():
        name, term = key.rsplit("_", 1)
        out.append(CommitmentRate(Cloud.AWS, region, itype, short[name], int(term),
                                  on_demand * Decimal(str(ratio)), "test-rates", NOW))
    return out


def snapshot_of(resources: Sequence[Resource], builder: FrameBuilder, days: float,
                commitment_rates: Sequence[CommitmentRate] = (), billing: BillingData | None = None,
                prices: dict[tuple[str, str], Decimal] | None = None) -> Snapshot:
    win = hours_window(days)
    prices = prices or {(r.ref.region, r.instance_type): ON_DEMAND for r in resources}
    for rate in commitment_rates:
        prices.setdefault((rate.region, rate.instance_type), ON_DEMAND)
    quotes = [PriceQuote(Cloud.AWS, region, itype, PricingModel.ON_DEMAND, hourly, "test-catalog", NOW)
              for (region, itype), hourly in prices.items()]
    return Snapshot(win.end, win, tuple(resources), Usage(builder.frame(), HOUR), {price_key(q): q for q in quotes},
                    commitment_rates=tuple(commitment_rates), billing=billing)


def billing_hourly(counts: np.ndarray, days: float, committed: np.ndarray | float = 0.0, itype: str = ITYPE,
                   region: str = REGION, provider: str = "AWS") -> pd.DataFrame:
    stamps = times(hours_window(days), HOUR)
    counts = np.asarray(counts, dtype=float)
    committed = np.broadcast_to(np.asarray(committed, dtype=float), counts.shape)
    return pd.DataFrame({"provider": provider, "region": region, "instance_type": itype, "ts": stamps,
                         "hours": counts, "committed_hours": committed,
                         "effective_cost": counts * float(ON_DEMAND)}, columns=list(BILLING_HOURLY_COLUMNS))


def billing(hourly: pd.DataFrame | None = None, resources: Sequence[ResourceBilling] = (),
            commitments: Sequence[CommitmentUse] = ()) -> BillingData:
    hourly = hourly if hourly is not None else pd.DataFrame(columns=list(BILLING_HOURLY_COLUMNS))
    return BillingData(sources=("test.csv",), rows=len(hourly), bad_rows=0, bad_examples=(), totals=(),
                       resources=tuple(resources), commitments=tuple(commitments), hourly=hourly)

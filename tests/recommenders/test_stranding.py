"""Findings on commitment-covered instances: effective rates and the stranding note."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import numpy as np
import pandas as pd

from providers.model import BILLING_HOURLY_COLUMNS, BillingData, PricingModel, ResourceBilling
from recommenders import Settings, analyze
from recommenders.model import Kind
from tests.builders import FrameBuilder, resource, snapshot, times, window

ALL_BUT_STOPS = Settings(enabled=("gpu-idle",))


def _billing(*rows: ResourceBilling) -> BillingData:
    return BillingData(sources=("test.csv",), rows=len(rows), bad_rows=0, bad_examples=(), totals=(),
                       resources=rows, commitments=(), hourly=pd.DataFrame(columns=list(BILLING_HOURLY_COLUMNS)))


def _covered(resource_id: str, usage_h: float, committed_h: float, effective: str, itype: str = "g5.xlarge") -> ResourceBilling:
    return ResourceBilling("AWS", resource_id, "us-east-1", itype, usage_h, committed_h, Decimal(0), Decimal(effective),
                           Decimal("1.006") * Decimal(usage_h), ("ri-1",))


def _idle_snapshot():
    res = resource("idle-box")
    win = window(days=5)
    stamps = times(win)
    return res, snapshot([res], FrameBuilder().gpu_util(res, stamps, np.zeros(len(stamps))).frame(), win)


def test_a_covered_instance_is_priced_at_its_billed_effective_rate():
    res, snap = _idle_snapshot()
    snap = replace(snap, billing=_billing(_covered(res.ref.id, 100, 100, "60.00")))
    quote = snap.price_for(res)
    assert quote is not None and quote.pricing_model == PricingModel.COMMITTED
    assert quote.hourly_usd == Decimal("0.6000")


def test_an_uncovered_instance_keeps_its_list_price():
    res, snap = _idle_snapshot()
    snap = replace(snap, billing=_billing(_covered(res.ref.id, 100, 0, "100.60")))
    assert snap.price_for(res).pricing_model == PricingModel.ON_DEMAND


def test_a_stop_of_a_covered_instance_says_it_strands_the_commitment():
    res, snap = _idle_snapshot()
    snap = replace(snap, billing=_billing(_covered(res.ref.id, 100, 100, "60.00")))
    rec = next(r for r in analyze(snap, ALL_BUT_STOPS).recommendations if r.kind == Kind.STOP)
    assert rec.monthly_savings_usd == Decimal("438.00")  # 0.60 $/h x 730 h, not the 1.006 list price
    assert rec.evidence["commitment"]["strands_commitment"] is True
    assert "Strands a commitment" in rec.summary


def test_other_uncovered_usage_of_the_family_can_take_the_commitment_over():
    res, snap = _idle_snapshot()
    other = ResourceBilling("AWS", "i-other", "us-east-1", "g5.2xlarge", 150, 0, Decimal(180), Decimal(180), None)
    snap = replace(snap, billing=_billing(_covered(res.ref.id, 100, 100, "60.00"), other))
    rec = next(r for r in analyze(snap, ALL_BUT_STOPS).recommendations if r.kind == Kind.STOP)
    assert rec.evidence["commitment"]["strands_commitment"] is False
    assert "can take it over" in rec.summary

"""Shared helpers of the billing-ingestion tests: the fixture folder and exact money checks."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from providers.model import BillingData, CostTotal

DATA = Path(__file__).resolve().parents[1] / "data" / "billing"
MICRO = Decimal("0.000001")


def six(value: Decimal) -> Decimal:
    """A sum rounded to 6 decimals, the precision of the corpus's known figures."""
    return value.quantize(MICRO, rounding=ROUND_HALF_EVEN)


def billed(data: BillingData, **where: object) -> Decimal:
    return sum((t.billed_cost for t in matching(data.totals, where)), Decimal(0))


def effective(data: BillingData, **where: object) -> Decimal:
    return sum((t.effective_cost for t in matching(data.totals, where)), Decimal(0))


def matching(totals: Iterable[CostTotal], where: dict[str, object]) -> list[CostTotal]:
    return [t for t in totals if all(getattr(t, k) == v for k, v in where.items())]

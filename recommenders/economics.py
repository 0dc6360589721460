"""Money arithmetic shared by recommenders: a month is 730 hours, money is Decimal."""

from __future__ import annotations

from decimal import Decimal

from providers.model import HOURS_PER_MONTH, PriceQuote

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

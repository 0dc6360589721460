"""The shipped price catalog: it loads, covers what the README promises, and bad rows are named."""

from __future__ import annotations

from decimal import Decimal

import pytest

from providers.catalog import CatalogError, PriceCatalog, parse_catalog
from providers.model import Cloud, PricingModel

FAMILIES = ("g4dn", "g5", "g6", "g6e", "p3", "p4d", "p4de", "p5")


@pytest.fixture(scope="module")
def catalog() -> PriceCatalog:
    return PriceCatalog.shipped(Cloud.AWS)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("region", ["us-east-1", "us-west-2"])
def test_every_promised_family_is_priced_in_the_main_regions(catalog, family, region):
    types = {e.instance_type.split(".")[0] for e in catalog.entries(Cloud.AWS) if e.region == region}
    assert family in types


def test_public_price_points(catalog):
    """us-east-1 Linux on-demand list prices (AWS price list; P4d after the June 2025 cut)."""
    expected = {"g4dn.xlarge": "0.526", "g5.xlarge": "1.006", "g6.xlarge": "0.8048", "p3.2xlarge": "3.06"}
    for itype, price in expected.items():
        entry, stand_in = catalog.entry(Cloud.AWS, "us-east-1", itype)
        assert entry is not None and not stand_in
        assert entry.on_demand_hourly == Decimal(price)
    p4d, _ = catalog.entry(Cloud.AWS, "us-east-1", "p4d.24xlarge")
    assert p4d is not None and (p4d.gpu_count, p4d.gpu_model) == (8, "A100")
    assert Decimal("18") < p4d.on_demand_hourly < Decimal("33")


def test_every_entry_names_its_source_and_date(catalog):
    for entry in catalog.entries(Cloud.AWS):
        assert entry.on_demand_source and entry.on_demand_as_of.year >= 2025
        assert entry.on_demand_hourly > 0 and entry.gpu_count > 0


def test_spot_quote_applies_the_typical_discount(catalog):
    quotes = {q.pricing_model: q for q in catalog.quotes(Cloud.AWS, "us-east-1", "g5.xlarge")}
    entry, _ = catalog.entry(Cloud.AWS, "us-east-1", "g5.xlarge")
    assert entry is not None and entry.spot_savings_pct is not None
    expected = entry.on_demand_hourly * Decimal(str(round(1 - entry.spot_savings_pct / 100, 4)))
    assert quotes[PricingModel.SPOT].hourly_usd == expected.quantize(Decimal("0.0001"))


def test_a_region_outside_the_catalog_is_priced_from_us_east_1_and_says_so(catalog):
    [on_demand, *_] = catalog.quotes(Cloud.AWS, "sa-east-1", "g5.xlarge")
    assert on_demand.hourly_usd == Decimal("1.006") and "us-east-1 price" in on_demand.source


def test_unknown_type_has_no_quote(catalog):
    assert catalog.quotes(Cloud.AWS, "us-east-1", "x9.huge") == []


def test_a_bad_row_names_the_file_and_line():
    text = ("instance_type,region,gpu_model,gpu_count,gpu_memory_gib,vcpu,memory_gib,on_demand_usd_per_hour,"
            "spot_savings_pct,spot_interruption,on_demand_source,on_demand_as_of,spot_source,spot_as_of\n"
            "g5.xlarge,us-east-1,A10G,1,22.35,4,16,1.006,,,src,2026-01-28,,\n"
            "g5.2xlarge,us-east-1,A10G,1,22.35,8,32,not-a-price,,,src,2026-01-28,,\n")
    with pytest.raises(CatalogError, match=r"custom\.csv:3"):
        parse_catalog(text, Cloud.AWS, "custom.csv")

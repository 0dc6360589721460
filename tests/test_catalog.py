"""The shipped price catalog: it loads, covers what the README promises, and bad rows are named."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources

import pytest

from providers.catalog import (
    COMMITMENTS_FILE,
    REFERENCE_REGION,
    CatalogError,
    PriceCatalog,
    parse_catalog,
    parse_commitments,
)
from providers.model import Cloud, Instrument, PricingModel

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


# --- the three-cloud catalog and its commitment rates ------------------------------------------

COMMIT_HEADER = "cloud,region,instance_type,instrument,term_years,hourly_usd,source,as_of\n"


def _data(name: str) -> str:
    return (resources.files("providers") / "data" / name).read_text(encoding="utf-8")


def _shipped_commitments(cloud: Cloud):
    cat = PriceCatalog.shipped(cloud)
    return cat, [c for e in cat.entries(cloud) for c in cat.commitment_rates(cloud, e.region, e.instance_type)]


@pytest.mark.parametrize("cloud", list(Cloud))
def test_every_shipped_catalog_file_parses_into_entries(cloud):
    name = f"{cloud.value}_gpu_catalog.csv"
    assert len(parse_catalog(_data(name), cloud, name)) > 50


def test_the_shipped_commitment_file_parses():
    assert len(parse_commitments(_data(COMMITMENTS_FILE), COMMITMENTS_FILE)) > 100


@pytest.mark.parametrize("cloud", list(Cloud))
def test_every_entry_of_every_cloud_names_a_source_and_date(cloud):
    for entry in PriceCatalog.shipped(cloud).entries(cloud):
        assert entry.on_demand_source and entry.on_demand_as_of.year >= 2024 and entry.gpu_count > 0
        assert (entry.spot_savings_pct is None) == (entry.spot_source is None)


@pytest.mark.parametrize("cloud", list(Cloud))
def test_spot_never_costs_more_than_on_demand(cloud):
    for entry in PriceCatalog.shipped(cloud).entries(cloud):
        assert entry.spot_hourly is None or entry.spot_hourly <= entry.on_demand_hourly, entry


@pytest.mark.parametrize("cloud", list(Cloud))
def test_every_commitment_rate_is_below_on_demand_in_its_own_region(cloud):
    cat, rates = _shipped_commitments(cloud)
    for rate in rates:
        entry, stand_in = cat.entry(cloud, rate.region, rate.instance_type)
        assert entry is not None and not stand_in
        assert rate.hourly_usd < entry.on_demand_hourly, rate


def test_every_commitment_row_belongs_to_a_catalog_entry():
    for rate in parse_commitments(_data(COMMITMENTS_FILE), COMMITMENTS_FILE):
        entry, stand_in = PriceCatalog.shipped(rate.cloud).entry(rate.cloud, rate.region, rate.instance_type)
        assert entry is not None and not stand_in, rate


@pytest.mark.parametrize("cloud", list(Cloud))
def test_three_years_never_cost_more_than_one_year_on_the_same_instrument(cloud):
    _, rates = _shipped_commitments(cloud)
    by_key = {(r.region, r.instance_type, r.instrument, r.term_years): r.hourly_usd for r in rates}
    for (region, itype, instrument, years), hourly in by_key.items():
        one_year = by_key.get((region, itype, instrument, 1))
        if years == 3 and one_year is not None:
            assert hourly <= one_year, (region, itype, instrument)


def test_gcp_public_on_demand_price_points():
    """GCP VM pricing, Iowa (us-central1), machine incl. GPUs: a2-highgpu-1g $3.673385/h, a3-highgpu-8g
    $88.49/h (Cloud Billing Catalog SKUs as compiled by Cyclenerd/google-cloud-pricing-cost-calculator
    pricing.yml @0166a59e, 2025-03-06)."""
    cat = PriceCatalog.shipped(Cloud.GCP)
    a2, _ = cat.entry(Cloud.GCP, "us-central1", "a2-highgpu-1g")
    a3, _ = cat.entry(Cloud.GCP, "us-central1", "a3-highgpu-8g")
    assert a2 is not None and a2.on_demand_hourly == Decimal("3.673385")
    assert a3 is not None and a3.on_demand_hourly.quantize(Decimal("0.01")) == Decimal("88.49")


def test_gcp_n1_with_attached_gpus_is_machine_plus_gpus():
    """n1-standard-8 $0.379998/h (pricing.yml @0166a59e) + one T4 $0.35/h (skypilot-catalog v8 GCP
    @006059e0; GCP GPU pricing, us-central1)."""
    entry, _ = PriceCatalog.shipped(Cloud.GCP).entry(Cloud.GCP, "us-central1", "n1-standard-8+1xnvidia-tesla-t4")
    assert entry is not None and entry.on_demand_hourly == Decimal("0.729998")
    assert (entry.gpu_model, entry.gpu_count, entry.vcpu, entry.memory_gib) == ("T4", 1, 8, 30)


def test_gcp_attached_gpu_types_follow_the_machine_plus_count_x_accelerator_convention():
    for entry in PriceCatalog.shipped(Cloud.GCP).entries(Cloud.GCP):
        if "+" in entry.instance_type:
            m = re.fullmatch(r"n1-[a-z]+-\d+\+(\d+)xnvidia-tesla-(t4|v100)", entry.instance_type)
            assert m and int(m.group(1)) == entry.gpu_count and m.group(2).upper() == entry.gpu_model


def test_azure_public_on_demand_price_points():
    """Azure Linux VM pay-as-you-go, East US: NC24ads A100 v4 $3.673/h, ND96isr H100 v5 $98.32/h
    (Azure Retail Prices API via the SkyPilot Azure catalog)."""
    cat = PriceCatalog.shipped(Cloud.AZURE)
    nc, _ = cat.entry(Cloud.AZURE, "eastus", "Standard_NC24ads_A100_v4")
    nd, _ = cat.entry(Cloud.AZURE, "eastus", "Standard_ND96isr_H100_v5")
    assert nc is not None and nc.on_demand_hourly == Decimal("3.673") and (nc.gpu_count, nc.gpu_memory_gib) == (1, 80)
    assert nd is not None and nd.on_demand_hourly == Decimal("98.32") and nd.gpu_count == 8


def test_gcp_published_cud_rate():
    """a2-highgpu-1g, us-central1, 1-year resource-based CUD: month_1y $1689.3711392 / 730 h
    (Cyclenerd/google-cloud-pricing-cost-calculator pricing.yml @0166a59e, 2025-03-06)."""
    rates = PriceCatalog.shipped(Cloud.GCP).commitment_rates(Cloud.GCP, "us-central1", "a2-highgpu-1g")
    assert [(r.instrument, r.term_years, r.hourly_usd) for r in rates] == [
        (Instrument.GCP_CUD, 1, Decimal("2.314207")), (Instrument.GCP_CUD, 3, Decimal("1.285708"))]


def test_commitment_rates_are_dated_at_utc_midnight():
    [rate, *_] = PriceCatalog.shipped(Cloud.GCP).commitment_rates(Cloud.GCP, "us-central1", "g2-standard-4")
    assert rate.as_of == datetime(2025, 3, 6, tzinfo=UTC)


def test_commitment_rates_take_no_stand_in_region():
    cat = PriceCatalog.shipped(Cloud.GCP)
    assert cat.quotes(Cloud.GCP, "us-south1", "a2-highgpu-1g")
    assert cat.commitment_rates(Cloud.GCP, "us-south1", "a2-highgpu-1g") == []


def test_a_catalog_built_without_commitments_has_none():
    assert PriceCatalog(PriceCatalog.shipped(Cloud.GCP).entries()).commitment_rates(
        Cloud.GCP, "us-central1", "a2-highgpu-1g") == []


@pytest.mark.parametrize(("cloud", "itype"), [(Cloud.GCP, "g2-standard-4"), (Cloud.AZURE, "Standard_NC4as_T4_v3")])
def test_regions_outside_the_catalog_are_priced_from_the_reference_region(cloud, itype):
    [on_demand, *_] = PriceCatalog.shipped(cloud).quotes(cloud, "mars-north1", itype)
    assert f"{REFERENCE_REGION[cloud]} price" in on_demand.source


def test_spot_quote_carries_the_interruption_band(catalog):
    spot = next(q for q in catalog.quotes(Cloud.AWS, "us-east-1", "g5.xlarge") if q.pricing_model is PricingModel.SPOT)
    entry, _ = catalog.entry(Cloud.AWS, "us-east-1", "g5.xlarge")
    assert entry is not None and entry.spot_interruption and spot.interruption == entry.spot_interruption


def test_listing_filters_by_type_and_region_and_sorts_by_type_then_region():
    cat = PriceCatalog.shipped(Cloud.GCP)
    rows = cat.listing(Cloud.GCP)
    assert [(e.instance_type, e.region) for e in rows] == sorted((e.instance_type, e.region) for e in rows)
    assert {e.region for e in cat.listing(Cloud.GCP, instance_type="a2-highgpu-1g")} == {
        "us-central1", "us-east1", "us-west1", "europe-west4", "asia-southeast1"}
    assert {e.instance_type for e in cat.listing(Cloud.GCP, region="us-east4")} >= {"a3-highgpu-8g", "g2-standard-4"}
    assert cat.listing(Cloud.GCP, instance_type="a2-highgpu-1g", region="us-east4") == []


def test_listing_of_another_cloud_is_empty():
    assert PriceCatalog.shipped(Cloud.GCP).listing(Cloud.AWS) == []


GOOD_COMMIT = "gcp,us-central1,a2-highgpu-1g,gcp-committed-use-discount,1,2.3,src,2025-03-06\n"


@pytest.mark.parametrize("bad_row", [
    "gcp,us-central1,a2-highgpu-1g,gcp-committed-use-discount,1,not-a-price,src,2025-03-06\n",
    "gcp,us-central1,a2-highgpu-1g,gcp-committed-use-discount,2,2.3,src,2025-03-06\n",
    "gcp,us-central1,a2-highgpu-1g,aws-reserved-instance,3,2.3,src,2025-03-06\n",
    "gcp,us-central1,a2-highgpu-1g,gcp-committed-use-discount,3,0,src,2025-03-06\n",
    "gcp,us-central1,a2-highgpu-1g,gcp-committed-use-discount,3,2.3,src,06/03/2025\n",
    "gcp,us-central1,a2-highgpu-1g,gcp-committed-use-discount,3,2.3,,2025-03-06\n",
    "oci,us-central1,a2-highgpu-1g,gcp-committed-use-discount,3,2.3,src,2025-03-06\n",
    "gcp,us-central1,a2-highgpu-1g,gcp-committed-use-discount,3,2.3,src\n",
    GOOD_COMMIT,
], ids=["price", "term", "instrument-of-another-cloud", "zero", "date", "no-source", "cloud", "short-row",
        "duplicate"])
def test_a_bad_commitment_row_names_the_file_and_line(bad_row):
    with pytest.raises(CatalogError, match=r"^rates\.csv:3: "):
        parse_commitments(COMMIT_HEADER + GOOD_COMMIT + bad_row, "rates.csv")


def test_a_commitment_file_with_the_wrong_header_is_refused():
    with pytest.raises(CatalogError, match=r"^rates\.csv:1: "):
        parse_commitments(COMMIT_HEADER.replace("hourly_usd", "price") + GOOD_COMMIT, "rates.csv")


def test_aws_published_reserved_instance_rates():
    """Standard RI, Linux, no upfront, hourly. g4dn.xlarge us-east-1: 1 y $0.331 (tsaol/aws-gpu
    data/g4dn_instances.js @2d0108c7, instances.vantage.sh data, 2025-11-30), 3 y $0.227
    (vantage-sh/ec2instances.info www/g4dn.xlarge.html @136b6119). p4d.24xlarge us-east-1, after the June
    2025 price cut: 1 y $13.921094, 3 y $9.374219 (tsaol/aws-gpu data/gpu_instances_raw.json @2d0108c7)."""
    cat = PriceCatalog.shipped(Cloud.AWS)
    g4dn = cat.commitment_rates(Cloud.AWS, "us-east-1", "g4dn.xlarge")
    p4d = cat.commitment_rates(Cloud.AWS, "us-east-1", "p4d.24xlarge")
    assert [(r.instrument, r.term_years, r.hourly_usd) for r in g4dn] == [
        (Instrument.AWS_RI, 1, Decimal("0.331")), (Instrument.AWS_RI, 3, Decimal("0.227"))]
    assert [(r.instrument, r.term_years, r.hourly_usd) for r in p4d] == [
        (Instrument.AWS_RI, 1, Decimal("13.921094")), (Instrument.AWS_RI, 3, Decimal("9.374219"))]
    assert p4d[0].as_of == datetime(2025, 11, 30, tzinfo=UTC)

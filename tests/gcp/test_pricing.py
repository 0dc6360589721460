"""Compute Engine prices: the real google-cloud-billing client over HTTP to the local Catalog emulator.

Machine prices are composed from SKUs (cores x core SKU + GiB x RAM SKU + GPUs x GPU SKU) and must
land on the published machine prices; implausible or incomplete compositions keep the shipped quote.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest

from providers.catalog import CatalogEntry, PriceCatalog
from providers.errors import AuthError, NotFound, ProviderError, Throttled
from providers.gcp import pricing
from providers.gcp.client import COMPUTE_ENGINE_SERVICE, CatalogClient, CatalogSku
from providers.model import Cloud, Instrument, PricingModel
from providers.sandbox.gcp_catalog import DEFAULT_SKUS, GcpCatalogEmulator

AT = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)
REGION = "us-central1"
A2 = "a2-highgpu-1g"
G2 = "g2-standard-4"
N1_T4 = "n1-standard-8+1xnvidia-tesla-t4"
A2_ULTRA = "a2-ultragpu-1g"  # A100 80GB: the emulator has no "A100 80GB" SKU
TYPES = [A2, G2, N1_T4]


def _entry(itype: str, gpu: str, count: int, gpu_mem: float, vcpu: int, mem: float, price: str,
           region: str = REGION) -> CatalogEntry:
    return CatalogEntry(Cloud.GCP, itype, region, gpu, count, gpu_mem, vcpu, mem, Decimal(price),
                        "hand-built test catalog", date(2026, 1, 28), 60.0, None, "hand-built", date(2026, 1, 28))


SHIPPED = PriceCatalog([
    _entry(A2, "A100", 1, 40, 12, 85, "3.67"),
    _entry(A2, "A100", 1, 40, 12, 85, "4.04", region="europe-west4"),
    _entry(G2, "L4", 1, 24, 4, 16, "0.71"),
    _entry(N1_T4, "T4", 1, 16, 8, 30, "0.73"),
    _entry(A2_ULTRA, "A100", 1, 80, 12, 170, "5.07"),
])


@pytest.fixture
def emulator() -> Iterator[GcpCatalogEmulator]:
    with GcpCatalogEmulator(max_page_size=4) as emu:  # small pages: every run pages
        yield emu


def _client(url: str) -> CatalogClient:
    return CatalogClient(endpoint=url, retry_timeout=0.2, retry_initial=0.01)


def _by_key(quotes):
    out = {(q.instance_type, q.pricing_model): q for q in quotes}
    assert len(out) == len(quotes)
    return out


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_composed_on_demand_prices_are_the_public_machine_prices(emulator: GcpCatalogEmulator) -> None:
    quotes = _by_key(pricing.quotes(_client(emulator.url), SHIPPED, REGION, TYPES, AT))

    a2, g2, n1 = (quotes[(t, PricingModel.ON_DEMAND)] for t in TYPES)
    # cloud.google.com/compute/gpus-pricing: a2-highgpu-1g 3.673385 $/h, g2-standard-4 0.70683228 $/h;
    # vm-instance-pricing: n1-standard-8 0.379998 $/h, plus one T4 at 0.35 $/h.
    assert a2.hourly_usd == Decimal("3.673385")
    assert _cents(g2.hourly_usd) == _cents(Decimal("0.70683228"))
    assert n1.hourly_usd == Decimal("0.379998") + Decimal("0.35")
    assert {a2.source, g2.source, n1.source} == {pricing.SOURCE}
    assert a2.as_of == AT and a2.region == REGION


def test_spot_is_composed_from_the_spot_skus(emulator: GcpCatalogEmulator) -> None:
    spot = _by_key(pricing.quotes(_client(emulator.url), SHIPPED, REGION, [A2], AT))[(A2, PricingModel.SPOT)]

    assert spot.hourly_usd == Decimal("1.92768")  # 12 x 0.01659 + 85 x 0.00222 + 1.5399
    assert spot.source == pricing.SOURCE


def test_a_machine_with_a_missing_sku_keeps_the_shipped_quote(emulator, caplog) -> None:
    """The emulator has the L4 Spot SKU but no Spot G2 core/RAM SKUs: no half-composed Spot price."""
    caplog.set_level(logging.INFO, logger="providers.gcp.pricing")

    quotes = _by_key(pricing.quotes(_client(emulator.url), SHIPPED, REGION, [G2], AT))

    spot = quotes[(G2, PricingModel.SPOT)]
    assert spot.source.startswith("catalog")
    assert spot.hourly_usd == (Decimal("0.71") * Decimal("0.4")).quantize(Decimal("0.0001"))
    assert quotes[(G2, PricingModel.ON_DEMAND)].source == pricing.SOURCE
    assert "event=price_incomplete cloud=gcp region=us-central1 type=g2-standard-4 model=spot" in caplog.text


def test_an_a100_80gb_machine_is_not_priced_with_the_40gb_gpu_sku(emulator: GcpCatalogEmulator) -> None:
    quotes = _by_key(pricing.quotes(_client(emulator.url), SHIPPED, REGION, [A2_ULTRA], AT))

    assert quotes[(A2_ULTRA, PricingModel.ON_DEMAND)].source.startswith("catalog")
    assert quotes[(A2_ULTRA, PricingModel.ON_DEMAND)].hourly_usd == Decimal("5.07")


def test_skus_of_other_regions_and_flex_start_decoys_are_not_used(emulator: GcpCatalogEmulator) -> None:
    """europe-west4 has an A100 SKU in the emulator but no A2 core/RAM SKUs; DWS flex-start is a decoy."""
    client = _client(emulator.url)

    emea = _by_key(pricing.quotes(client, SHIPPED, "europe-west4", [A2], AT))[(A2, PricingModel.ON_DEMAND)]
    index = pricing.SkuIndex(client.list_skus(), REGION)

    assert emea.source.startswith("catalog") and emea.hourly_usd == Decimal("4.04")
    assert index.gpu(pricing.ON_DEMAND, "A100", 40).sku_id == "039F-D0DA-4055"


def test_commitment_rates_come_from_the_commit_skus(emulator: GcpCatalogEmulator) -> None:
    rates = pricing.commitment_rates(_client(emulator.url), SHIPPED, REGION, TYPES, AT)

    by_term = {(r.instance_type, r.term_years): r for r in rates}
    assert set(by_term) == {(A2, 1), (A2, 3)}  # N1 commitments need N1 core/RAM commit SKUs, absent here
    assert by_term[(A2, 1)].hourly_usd == Decimal("2.31420704")  # 12 x 0.019915 + 85 x 0.002669 + 1.84836204
    assert by_term[(A2, 3)].hourly_usd == Decimal("1.3596628")  # 12 x 0.014225 + 85 x 0.001907 + 1.0268678
    assert {r.instrument for r in rates} == {Instrument.GCP_CUD}
    assert all(r.cloud is Cloud.GCP and r.as_of == AT and r.source == pricing.SOURCE for r in rates)


def test_one_paged_list_skus_pass_serves_the_whole_run(emulator: GcpCatalogEmulator) -> None:
    client = _client(emulator.url)
    pages = -(-len(DEFAULT_SKUS) // emulator.max_page_size)

    pricing.quotes(client, SHIPPED, REGION, TYPES, AT)
    pricing.quotes(client, SHIPPED, "europe-west4", [A2], AT)
    pricing.commitment_rates(client, SHIPPED, REGION, TYPES, AT)

    assert pages > 1
    assert emulator.count("/skus") == pages
    assert "pageSize=5000" in emulator.requests[0] and "currencyCode=USD" in emulator.requests[0]
    assert client.calls == {"cloudbilling.ListSkus": pages}
    assert len(client.list_skus()) == len(DEFAULT_SKUS)


def test_an_implausible_live_price_is_rejected_and_the_shipped_one_kept(emulator, caplog) -> None:
    caplog.set_level(logging.INFO, logger="providers.gcp.pricing")
    emulator.set_price("039F-D0DA-4055", "29.33908")  # the A100 GPU at 10x

    od = _by_key(pricing.quotes(_client(emulator.url), SHIPPED, REGION, [A2], AT))[(A2, PricingModel.ON_DEMAND)]

    assert od.source.startswith("catalog")
    assert od.hourly_usd == Decimal("3.67")
    assert "event=price_rejected cloud=gcp region=us-central1 type=a2-highgpu-1g model=on-demand" in caplog.text


def test_a_spot_price_above_on_demand_is_rejected(emulator, caplog) -> None:
    caplog.set_level(logging.INFO, logger="providers.gcp.pricing")
    emulator.set_price("39D4-516A-0317", "5")  # Spot A100 dearer than on demand

    spot = _by_key(pricing.quotes(_client(emulator.url), SHIPPED, REGION, [A2], AT))[(A2, PricingModel.SPOT)]

    assert spot.source.startswith("catalog")
    assert "model=spot" in caplog.text and "event=price_rejected" in caplog.text


def test_two_prices_for_one_part_are_ambiguous_and_keep_the_shipped_quote() -> None:
    extra = next(s for s in DEFAULT_SKUS if s.sku_id == "2922-40C5-B19F")
    skus = [*DEFAULT_SKUS, type(extra)("EMU-DUP", extra.description, "CPU", "OnDemand", extra.regions, "h",
                                       Decimal("0.05"))]
    with GcpCatalogEmulator(skus) as emu:
        od = _by_key(pricing.quotes(_client(emu.url), SHIPPED, REGION, [A2], AT))[(A2, PricingModel.ON_DEMAND)]

    assert od.source.startswith("catalog")


def test_a_transient_throttle_is_retried(emulator: GcpCatalogEmulator) -> None:
    emulator.fail_next(429)

    od = _by_key(pricing.quotes(_client(emulator.url), SHIPPED, REGION, [A2], AT))[(A2, PricingModel.ON_DEMAND)]

    assert od.source == pricing.SOURCE
    assert emulator.count("/skus") == 1 + -(-len(DEFAULT_SKUS) // emulator.max_page_size)  # the 429, then pages


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_failing_api_gives_the_shipped_quotes_without_raising(emulator, status) -> None:
    emulator.fail_next(status, count=1000)
    client = _client(emulator.url)

    quotes = pricing.quotes(client, SHIPPED, REGION, TYPES, AT)

    assert {q.source.split(":")[0] for q in quotes} == {"catalog"}
    assert len(quotes) == 2 * len(TYPES)
    assert pricing.commitment_rates(client, SHIPPED, REGION, TYPES, AT) == []


def test_a_server_that_is_down_gives_the_shipped_quotes_without_raising(caplog) -> None:
    caplog.set_level(logging.INFO, logger="providers.gcp.pricing")
    with GcpCatalogEmulator() as emu:
        url = emu.url
    client = _client(url)  # the port is closed now

    quotes = pricing.quotes(client, SHIPPED, REGION, TYPES, AT)

    assert {q.source.split(":")[0] for q in quotes} == {"catalog"}
    assert pricing.commitment_rates(client, SHIPPED, REGION, TYPES, AT) == []
    assert "event=pricing_api_unavailable cloud=gcp" in caplog.text


def test_live_prices_off_asks_nothing(emulator: GcpCatalogEmulator) -> None:
    client = _client(emulator.url)

    quotes = pricing.quotes(client, SHIPPED, REGION, TYPES, AT, live=False)

    assert {q.source.split(":")[0] for q in quotes} == {"catalog"}
    assert pricing.commitment_rates(client, SHIPPED, REGION, TYPES, AT, live=False) == []
    assert emulator.requests == [] and client.calls == {}


def test_a_type_absent_from_the_shipped_catalog_has_no_quote(emulator: GcpCatalogEmulator) -> None:
    assert pricing.quotes(_client(emulator.url), SHIPPED, REGION, ["a3-highgpu-8g"], AT) == []


def test_skus_are_parsed_into_decimal_records(emulator: GcpCatalogEmulator) -> None:
    skus = {s.sku_id: s for s in _client(emulator.url).list_skus()}

    a100 = skus["039F-D0DA-4055"]
    assert a100.unit_price == Decimal("2.933908")
    assert (a100.resource_group, a100.usage_type, a100.usage_unit) == ("GPU", "OnDemand", "h")
    assert a100.service_regions == ("us-central1", "us-east1", "us-west1")
    assert a100.effective_time == datetime(2023, 3, 24, 10, 52, 50, 681000, tzinfo=timezone.utc)
    assert skus["2390-DCAF-DA38"].usage_unit == "GiBy.h"


def test_client_errors_are_translated(emulator: GcpCatalogEmulator) -> None:
    with pytest.raises(NotFound, match="ListSkus"):
        _client(emulator.url).list_skus("services/0000-0000-0000")
    emulator.fail_next(429, count=1000)
    with pytest.raises(Throttled):
        _client(emulator.url).list_skus(COMPUTE_ENGINE_SERVICE)
    with pytest.raises(ProviderError, match=r"gcp CloudCatalog.ListSkus at http://127.0.0.1:1: cannot reach"):
        _client("http://127.0.0.1:1").list_skus()


def test_services_are_listed(emulator: GcpCatalogEmulator) -> None:
    services = dict(_client(emulator.url).list_services())

    assert services[COMPUTE_ENGINE_SERVICE] == "Compute Engine"


def test_without_an_endpoint_the_standard_credential_chain_is_used(monkeypatch) -> None:
    """Real use: Application Default Credentials; a broken chain is an AuthError with a hint, not a crash."""
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/costagent-test-key.json")
    client = CatalogClient(retry_timeout=0.2)

    with pytest.raises(AuthError) as caught:
        client.list_skus()

    assert client.where == "cloudbilling.googleapis.com"
    assert "application-default login" in caught.value.one_line()
    assert pricing.quotes(client, SHIPPED, REGION, [A2], AT)[0].source.startswith("catalog")


@pytest.mark.parametrize("description", [
    "Nvidia Tesla A100 GPU attached to Spot Preemptible VMs running in Americas",  # today's wording
    "Spot Preemptible Nvidia Tesla A100 GPU running in Americas",  # the older wording
])
def test_both_spot_gpu_sku_wordings_are_understood(description: str) -> None:
    sku = CatalogSku("X", description, "Compute", "GPU", "Preemptible", (REGION,), "h", Decimal("1.5399"), "USD", None)

    assert pricing.SkuIndex([sku], REGION).gpu(pricing.SPOT, "A100", 40) == sku

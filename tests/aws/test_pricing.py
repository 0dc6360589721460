"""EC2 prices: the shipped catalog, refined by the Pricing API and spot history only when plausible."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from botocore.stub import Stubber

from providers.aws import AwsProvider, pricing
from providers.catalog import PriceCatalog
from providers.model import Cloud, PricingModel
from providers.sandbox import MotoServer
from tests.aws.support import NOW, make_provider

CATALOG = PriceCatalog.shipped(Cloud.AWS)
G5 = "g5.xlarge"


def _catalog_price(region: str, itype: str, model: PricingModel) -> Decimal:
    return next(q.hourly_usd for q in CATALOG.quotes(Cloud.AWS, region, itype) if q.pricing_model is model)


def _by_model(quotes):
    assert len({q.pricing_model for q in quotes}) == len(quotes)
    return {q.pricing_model: q for q in quotes}


def _price_list_item(itype: str, region: str, usd: str) -> str:
    """One product of a real GetProducts answer (abridged), as the JSON string the API returns."""
    return json.dumps({
        "product": {
            "productFamily": "Compute Instance",
            "attributes": {"instanceType": itype, "regionCode": region, "operatingSystem": "Linux",
                           "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used"},
            "sku": "SKU123EXAMPLE",
        },
        "serviceCode": "AmazonEC2",
        "terms": {
            "OnDemand": {
                "SKU123EXAMPLE.JRTCKXETXF": {
                    "offerTermCode": "JRTCKXETXF",
                    "sku": "SKU123EXAMPLE",
                    "effectiveDate": "2026-01-01T00:00:00Z",
                    "priceDimensions": {
                        "SKU123EXAMPLE.JRTCKXETXF.6YS6EN2CT7": {
                            "unit": "Hrs",
                            "description": f"${usd} per On Demand Linux {itype} Instance Hour",
                            "pricePerUnit": {"USD": usd},
                        }
                    },
                    "termAttributes": {},
                }
            }
        },
        "version": "20260101000000",
        "publicationDate": "2026-01-01T00:00:00Z",
    })


def _expected_filters(itype: str, region: str) -> list[dict[str, str]]:
    pairs = (("instanceType", itype), ("regionCode", region), ("operatingSystem", "Linux"), ("tenancy", "Shared"),
             ("preInstalledSw", "NA"), ("capacitystatus", "Used"))
    return [{"Type": "TERM_MATCH", "Field": f, "Value": v} for f, v in pairs]


def _stub_pricing(provider: AwsProvider, itype: str, region: str, usd: str) -> Stubber:
    client = provider.clients.client("pricing", pricing.PRICING_REGION, max_attempts=1)
    stubber = Stubber(client)
    stubber.add_response(
        "get_products",
        {"FormatVersion": "aws_v1", "PriceList": [_price_list_item(itype, region, usd)]},
        {"ServiceCode": "AmazonEC2", "Filters": _expected_filters(itype, region)},
    )
    stubber.activate()
    return stubber


def test_without_a_pricing_api_on_demand_comes_from_the_catalog(moto: MotoServer) -> None:
    provider = make_provider(moto.url, live_prices=True)

    quotes = _by_model(provider.prices("us-east-1", [G5], NOW))

    od = quotes[PricingModel.ON_DEMAND]
    assert od.source.startswith("catalog")
    assert od.hourly_usd == _catalog_price("us-east-1", G5, PricingModel.ON_DEMAND) == Decimal("1.006")
    assert provider.api_calls()["pricing.GetProducts"] == 1  # it was asked, and failed


def test_moto_spot_history_is_junk(moto: MotoServer) -> None:
    """The premise of the next test: moto answers spot history with 0.00001 dated 2006."""
    provider = make_provider(moto.url)

    [(price, stamp)] = pricing.live_spot(provider.clients, "us-east-1", [G5], NOW).values()

    assert price == Decimal("0.00001")
    assert stamp.year == 2006


def test_junk_spot_price_is_rejected(moto: MotoServer) -> None:
    provider = make_provider(moto.url, live_prices=True)

    spot = _by_model(provider.prices("us-east-1", [G5], NOW))[PricingModel.SPOT]

    assert spot.source.startswith("catalog")
    assert spot.hourly_usd == _catalog_price("us-east-1", G5, PricingModel.SPOT)
    assert spot.hourly_usd != Decimal("0.00001")
    assert provider.api_calls()["ec2.DescribeSpotPriceHistory"] == 1


def test_plausible_pricing_api_price_replaces_the_catalog(moto: MotoServer) -> None:
    provider = make_provider(moto.url, live_prices=True)
    stubber = _stub_pricing(provider, G5, "us-east-1", "1.1000000000")

    od = _by_model(provider.prices("us-east-1", [G5], NOW))[PricingModel.ON_DEMAND]

    stubber.assert_no_pending_responses()
    assert od.source == "aws-pricing-api"
    assert od.hourly_usd == Decimal("1.1000000000")
    assert od.as_of == NOW


def test_implausible_pricing_api_price_is_rejected(moto: MotoServer) -> None:
    provider = make_provider(moto.url, live_prices=True)
    catalog = _catalog_price("us-east-1", G5, PricingModel.ON_DEMAND)
    stubber = _stub_pricing(provider, G5, "us-east-1", str(catalog * 10))

    od = _by_model(provider.prices("us-east-1", [G5], NOW))[PricingModel.ON_DEMAND]

    stubber.assert_no_pending_responses()
    assert od.source.startswith("catalog")
    assert od.hourly_usd == catalog


def test_live_prices_off_asks_no_api(moto: MotoServer) -> None:
    provider = make_provider(moto.url, live_prices=False)

    quotes = provider.prices("us-east-1", [G5], NOW)

    assert {q.source.split(":")[0] for q in quotes} == {"catalog"}
    assert provider.api_calls() == {}


def test_region_absent_from_the_catalog_gets_the_us_east_1_price_flagged(moto: MotoServer) -> None:
    assert CATALOG.entry(Cloud.AWS, "ca-central-1", G5) == (CATALOG.entry(Cloud.AWS, "us-east-1", G5)[0], True)
    provider = make_provider(moto.url)

    quotes = _by_model(provider.prices("ca-central-1", [G5], NOW))

    od = quotes[PricingModel.ON_DEMAND]
    assert od.region == "ca-central-1"
    assert od.hourly_usd == _catalog_price("us-east-1", G5, PricingModel.ON_DEMAND)
    assert "(us-east-1 price; ca-central-1 not in catalog)" in od.source
    assert "(us-east-1 price; ca-central-1 not in catalog)" in quotes[PricingModel.SPOT].source


def test_type_absent_from_the_catalog_has_no_quote(moto: MotoServer) -> None:
    assert make_provider(moto.url).prices("us-east-1", ["m5.large"], NOW) == []


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-1"])
def test_catalog_quotes_carry_the_asked_region(moto: MotoServer, region: str) -> None:
    quotes = make_provider(moto.url).prices(region, [G5, "p4d.24xlarge"], NOW)

    assert {(q.instance_type, q.pricing_model) for q in quotes} == {
        (t, m) for t in (G5, "p4d.24xlarge") for m in (PricingModel.ON_DEMAND, PricingModel.SPOT)
    }
    assert {q.region for q in quotes} == {region}
    assert all(q.as_of.utcoffset().total_seconds() == 0 for q in quotes)

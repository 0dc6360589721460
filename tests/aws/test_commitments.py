"""Live AWS commitment rates: Savings Plans offering rates and RI offerings, checked against the catalog.

moto has no Savings Plans API, so those answers come from botocore's own ``Stubber``, which checks each
request and each canned answer against the real service model. RI offerings are asked of moto's server
as it is (its canned offerings are junk for pricing) and, for exact parsing and paging, of a stubbed
EC2 client. The Savings Plans figures below are illustrative (no public per-type snapshot was found);
the RI figures are the published g4dn.xlarge us-east-1 ones shipped in the catalog.
"""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from botocore.stub import Stubber

from providers.aws import AwsProvider, commitments
from providers.catalog import CatalogEntry, PriceCatalog
from providers.model import Cloud, Instrument
from providers.sandbox import MotoServer
from tests.aws.support import NOW, make_clients, make_provider

G5 = "g5.xlarge"  # catalog on demand in us-east-1: $1.006/h
G4 = "g4dn.xlarge"  # catalog on demand in us-east-1: $0.526/h
ONE_YEAR, THREE_YEARS = 31_536_000, 94_608_000


# --- canned answers, in the real APIs' shapes --------------------------------------------------

def _sp_rate(itype: str, plan: str, seconds: int, rate: str, region: str = "us-east-1") -> dict[str, Any]:
    return {
        "savingsPlanOffering": {
            "offeringId": "4b7e1f22-5d3c-4a51-9f0e-6c2d1a8b3e70",
            "paymentOption": "No Upfront",
            "planType": plan,
            "durationSeconds": seconds,
            "currency": "USD",
            "planDescription": f"{seconds // ONE_YEAR} year No Upfront {plan} Savings Plan",
        },
        "rate": rate,
        "unit": "Hrs",
        "productType": "EC2",
        "serviceCode": "AmazonEC2",
        "usageType": f"BoxUsage:{itype}",
        "operation": "RunInstances",
        "properties": [
            {"name": "region", "value": region},
            {"name": "instanceType", "value": itype},
            {"name": "instanceFamily", "value": itype.split(".")[0]},
            {"name": "productDescription", "value": "Linux/UNIX"},
            {"name": "tenancy", "value": "shared"},
        ],
    }


def _sp_request(types: list[str], region: str = "us-east-1", token: str | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {
        "savingsPlanPaymentOptions": ["No Upfront"],
        "savingsPlanTypes": ["Compute", "EC2Instance"],
        "products": ["EC2"],
        "serviceCodes": ["AmazonEC2"],
        "filters": [
            {"name": "instanceType", "values": types},
            {"name": "region", "values": [region]},
            {"name": "productDescription", "values": ["Linux/UNIX"]},
            {"name": "tenancy", "values": ["shared"]},
        ],
        "maxResults": 1000,
    }
    if token:
        request["nextToken"] = token
    return request


def _ri_offering(itype: str, seconds: int, hourly: float, *, scope: str = "Region", fixed: float = 0.0,
                 marketplace: bool = False, zone: str | None = None) -> dict[str, Any]:
    offering: dict[str, Any] = {
        "ReservedInstancesOfferingId": f"ri-{itype}-{seconds}-{scope[0]}",
        "InstanceType": itype,
        "Duration": seconds,
        "FixedPrice": fixed,
        "UsagePrice": 0.0,
        "CurrencyCode": "USD",
        "InstanceTenancy": "default",
        "Marketplace": marketplace,
        "OfferingClass": "standard",
        "OfferingType": "No Upfront",
        "ProductDescription": "Linux/UNIX",
        "PricingDetails": [],
        "RecurringCharges": [{"Amount": hourly, "Frequency": "Hourly"}],
        "Scope": scope,
    }
    if zone:
        offering["AvailabilityZone"] = zone
    return offering


def _ri_request(itype: str, token: str | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {"InstanceType": itype, "ProductDescription": "Linux/UNIX", "OfferingClass": "standard",
                               "OfferingType": "No Upfront", "InstanceTenancy": "default", "IncludeMarketplace": False}
    if token:
        request["NextToken"] = token
    return request


def _sp_stub(clients: Any) -> Stubber:
    client = clients.client("savingsplans", commitments.SAVINGS_PLANS_REGION,
                            max_attempts=commitments.SAVINGS_PLANS_ATTEMPTS)
    return Stubber(client)


def _ec2_stub(clients: Any, region: str = "us-east-1") -> Stubber:
    return Stubber(clients.client("ec2", region, max_attempts=commitments.RI_ATTEMPTS))


def _rates(rates) -> dict[tuple[str, Instrument, int], Decimal]:
    keys = [(r.instance_type, r.instrument, r.term_years) for r in rates]
    assert len(set(keys)) == len(keys)
    return {(r.instance_type, r.instrument, r.term_years): r.hourly_usd for r in rates}


# --- Savings Plans ------------------------------------------------------------------------------

def test_savings_plan_rates_are_parsed_exactly(moto: MotoServer) -> None:
    clients = make_clients(moto.url)
    sp = _sp_stub(clients)
    sp.add_response("describe_savings_plans_offering_rates", {"searchResults": [
        _sp_rate(G5, "Compute", ONE_YEAR, "0.7243"),
        _sp_rate(G5, "Compute", THREE_YEARS, "0.5030"),
        _sp_rate(G5, "EC2Instance", ONE_YEAR, "0.6338"),
        _sp_rate(G5, "EC2Instance", THREE_YEARS, "0.4346"),
        _sp_rate(G5, "Compute", ONE_YEAR, "0.8123", region="us-west-2"),  # another region: not ours
        _sp_rate("g5.2xlarge", "Compute", ONE_YEAR, "0.8720"),  # a type not asked for
    ]}, _sp_request([G5]))

    with sp:
        rates = commitments.live_commitment_rates(clients, "us-east-1", [G5], NOW)
        sp.assert_no_pending_responses()

    assert _rates(rates) == {
        (G5, Instrument.AWS_COMPUTE_SP, 1): Decimal("0.7243"),
        (G5, Instrument.AWS_COMPUTE_SP, 3): Decimal("0.5030"),
        (G5, Instrument.AWS_EC2_INSTANCE_SP, 1): Decimal("0.6338"),
        (G5, Instrument.AWS_EC2_INSTANCE_SP, 3): Decimal("0.4346"),
    }  # moto's RI offerings have no g5.xlarge
    assert all(r.cloud is Cloud.AWS and r.region == "us-east-1" and r.as_of == NOW for r in rates)
    assert all(r.source.startswith("aws-savingsplans-api") for r in rates)


def test_savings_plan_pages_are_all_read(moto: MotoServer) -> None:
    clients = make_clients(moto.url)
    sp = _sp_stub(clients)
    types = [G4, G5]
    sp.add_response("describe_savings_plans_offering_rates",
                    {"searchResults": [_sp_rate(G5, "Compute", ONE_YEAR, "0.7243")], "nextToken": "page-2"},
                    _sp_request(types))
    sp.add_response("describe_savings_plans_offering_rates",
                    {"searchResults": [_sp_rate(G4, "Compute", THREE_YEARS, "0.2581")], "nextToken": "page-3"},
                    _sp_request(types, token="page-2"))
    sp.add_response("describe_savings_plans_offering_rates",
                    {"searchResults": [_sp_rate(G4, "EC2Instance", ONE_YEAR, "0.3310")]},
                    _sp_request(types, token="page-3"))

    with sp:
        rates = commitments.live_commitment_rates(clients, "us-east-1", [G5, G4, G5], NOW)
        sp.assert_no_pending_responses()

    assert _rates(rates) == {
        (G5, Instrument.AWS_COMPUTE_SP, 1): Decimal("0.7243"),
        (G4, Instrument.AWS_COMPUTE_SP, 3): Decimal("0.2581"),
        (G4, Instrument.AWS_EC2_INSTANCE_SP, 1): Decimal("0.3310"),
    }


def test_implausible_rates_are_rejected_and_logged(moto: MotoServer, caplog: pytest.LogCaptureFixture) -> None:
    clients = make_clients(moto.url)
    sp = _sp_stub(clients)
    sp.add_response("describe_savings_plans_offering_rates", {"searchResults": [
        _sp_rate(G5, "Compute", ONE_YEAR, "10.06"),  # 10x on demand
        _sp_rate(G5, "Compute", THREE_YEARS, "0.0503"),  # 5 % of on demand
        _sp_rate(G5, "EC2Instance", ONE_YEAR, "1.006"),  # exactly on demand: the upper bound, kept
        _sp_rate(G5, "EC2Instance", THREE_YEARS, "0.1006"),  # exactly 10 %: the lower bound, kept
        _sp_rate("x9.nothing", "Compute", ONE_YEAR, "0.5"),  # no catalog price to judge it by
    ]}, _sp_request([G5, "x9.nothing"]))

    with sp, caplog.at_level(logging.WARNING, logger="providers.aws.commitments"):
        rates = commitments.live_commitment_rates(clients, "us-east-1", [G5, "x9.nothing"], NOW)

    assert _rates(rates) == {(G5, Instrument.AWS_EC2_INSTANCE_SP, 1): Decimal("1.006"),
                             (G5, Instrument.AWS_EC2_INSTANCE_SP, 3): Decimal("0.1006")}
    rejected = [r.getMessage() for r in caplog.records if "event=commitment_rate_rejected" in r.getMessage()]
    assert len(rejected) == 3
    assert any("live=10.06" in m and "on_demand=1.006" in m for m in rejected)
    assert any("live=0.0503" in m for m in rejected)
    assert any("type=x9.nothing" in m and "on_demand=None" in m for m in rejected)


# --- reserved instances -------------------------------------------------------------------------

def test_ri_offerings_are_parsed_exactly_across_pages(moto: MotoServer) -> None:
    clients = make_clients(moto.url)
    sp, ec2 = _sp_stub(clients), _ec2_stub(clients)
    sp.add_response("describe_savings_plans_offering_rates", {"searchResults": []}, _sp_request([G4]))
    ec2.add_response("describe_reserved_instances_offerings", {"ReservedInstancesOfferings": [
        _ri_offering(G4, ONE_YEAR, 0.331),
        _ri_offering(G4, ONE_YEAR, 0.301, scope="Availability Zone", zone="us-east-1a"),  # zonal: not regional
        _ri_offering(G4, ONE_YEAR, 0.290, marketplace=True),  # a third-party listing
    ], "NextToken": "more"}, _ri_request(G4))
    ec2.add_response("describe_reserved_instances_offerings", {"ReservedInstancesOfferings": [
        _ri_offering(G4, THREE_YEARS, 0.227),
        _ri_offering(G4, 2 * ONE_YEAR, 0.250),  # not a 1- or 3-year term
    ]}, _ri_request(G4, token="more"))

    with sp, ec2:
        rates = commitments.live_commitment_rates(clients, "us-east-1", [G4], NOW)
        sp.assert_no_pending_responses()
        ec2.assert_no_pending_responses()

    assert _rates(rates) == {(G4, Instrument.AWS_RI, 1): Decimal("0.331"), (G4, Instrument.AWS_RI, 3): Decimal("0.227")}
    assert all(r.source.startswith("aws-ec2-api: DescribeReservedInstancesOfferings") for r in rates)


def test_an_ri_fixed_price_is_spread_over_the_term() -> None:
    offering = _ri_offering(G4, ONE_YEAR, 0.100, fixed=876.0)  # $876 over 8760 h = $0.10/h
    assert commitments._ri_hourly(offering) == Decimal("0.200")


def test_moto_ri_offerings_are_canned(moto: MotoServer) -> None:
    """The premise of the next test: moto answers RI offerings with a fixed list for three small types,
    whatever type is asked, at $0.05/h ('UsagePrice'), and has none for GPU types."""
    ec2 = make_clients(moto.url).client("ec2", "us-east-1")
    offerings = ec2.describe_reserved_instances_offerings(**_ri_request(G5))["ReservedInstancesOfferings"]

    assert offerings and {o["InstanceType"] for o in offerings} == {"t2.micro", "t3.small", "m5.large"}
    assert {o["UsagePrice"] for o in offerings if o["OfferingType"] == "No Upfront"} == {0.05}


def test_moto_junk_ri_price_is_rejected(moto: MotoServer, caplog: pytest.LogCaptureFixture) -> None:
    # t2.micro, Linux, us-east-1: $0.0116/h on demand (AWS public list price); moto's $0.05 is 4x that.
    catalog = PriceCatalog([CatalogEntry(Cloud.AWS, "t2.micro", "us-east-1", "", 0, 0, 1, 1, Decimal("0.0116"),
                                         "AWS EC2 on-demand pricing", date(2026, 1, 28))])
    clients = make_clients(moto.url)

    with caplog.at_level(logging.INFO, logger="providers.aws.commitments"):
        rates = commitments.live_commitment_rates(clients, "us-east-1", ["t2.micro", G5], NOW, catalog=catalog)

    assert rates == []
    messages = [r.getMessage() for r in caplog.records]
    assert any("event=commitment_rate_rejected" in m and "type=t2.micro" in m and "live=0.05" in m for m in messages)
    assert any("event=savings_plans_api_unavailable" in m for m in messages)  # moto has no Savings Plans API
    assert clients.calls["ec2.DescribeReservedInstancesOfferings"] == 2


# --- the provider: live rates over the catalog's ------------------------------------------------

def test_live_rates_replace_the_catalogs_of_the_same_instrument_and_term(moto: MotoServer) -> None:
    provider = make_provider(moto.url, live_prices=True)
    shipped = _rates(PriceCatalog.shipped(Cloud.AWS).commitment_rates(Cloud.AWS, "us-east-1", G4))
    assert shipped == {(G4, Instrument.AWS_RI, 1): Decimal("0.331"), (G4, Instrument.AWS_RI, 3): Decimal("0.227")}
    sp, ec2 = _sp_stub(provider.clients), _ec2_stub(provider.clients)
    sp.add_response("describe_savings_plans_offering_rates",
                    {"searchResults": [_sp_rate(G4, "Compute", ONE_YEAR, "0.3680")]}, _sp_request([G4]))
    ec2.add_response("describe_reserved_instances_offerings",
                     {"ReservedInstancesOfferings": [_ri_offering(G4, ONE_YEAR, 0.329)]}, _ri_request(G4))

    with sp, ec2:
        rates = provider.commitment_rates("us-east-1", [G4], NOW)

    by_key = {(r.instrument, r.term_years): r for r in rates}
    assert [(r.instrument, r.term_years, r.hourly_usd) for r in rates] == [
        (Instrument.AWS_COMPUTE_SP, 1, Decimal("0.3680")),
        (Instrument.AWS_RI, 1, Decimal("0.329")),  # live replaces the shipped $0.331
        (Instrument.AWS_RI, 3, Decimal("0.227")),  # shipped, no live answer for it
    ]
    assert by_key[(Instrument.AWS_RI, 1)].source.startswith("aws-ec2-api")
    assert by_key[(Instrument.AWS_RI, 3)].source.startswith("vantage-sh/ec2instances.info")


def test_when_both_apis_fail_the_catalog_rates_come_back(moto: MotoServer) -> None:
    provider = make_provider(moto.url, live_prices=True)
    sp, ec2 = _sp_stub(provider.clients), _ec2_stub(provider.clients)
    sp.add_client_error("describe_savings_plans_offering_rates", "AccessDeniedException", "not authorized",
                        http_status_code=403)
    ec2.add_client_error("describe_reserved_instances_offerings", "UnauthorizedOperation", "not authorized",
                         http_status_code=403)

    with sp, ec2:
        rates = provider.commitment_rates("us-east-1", [G4, "p4d.24xlarge"], NOW)
        sp.assert_no_pending_responses()
        ec2.assert_no_pending_responses()

    shipped = PriceCatalog.shipped(Cloud.AWS)
    expected = shipped.commitment_rates(Cloud.AWS, "us-east-1", G4) + shipped.commitment_rates(
        Cloud.AWS, "us-east-1", "p4d.24xlarge")
    assert rates == expected and len(rates) == 4


def test_live_prices_off_asks_no_api(moto: MotoServer) -> None:
    provider = make_provider(moto.url, live_prices=False)

    rates = provider.commitment_rates("us-east-1", [G4], NOW)

    assert _rates(rates) == {(G4, Instrument.AWS_RI, 1): Decimal("0.331"), (G4, Instrument.AWS_RI, 3): Decimal("0.227")}
    assert provider.api_calls() == {}


def test_no_types_asks_nothing(moto: MotoServer) -> None:
    provider: AwsProvider = make_provider(moto.url, live_prices=True)
    assert provider.commitment_rates("us-east-1", [], NOW) == []
    assert provider.api_calls() == {}

"""Cost Explorer: EC2 compute cost by instance type and region, as CostRecords with Decimal amounts."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from botocore.stub import Stubber

from providers.aws import billing
from providers.errors import AuthError
from providers.model import Cloud, CostRecord, Window
from providers.sandbox import MotoServer
from tests.aws.support import ACCOUNT, HOUR, NOW, make_provider, post_json

DAY0 = NOW.date() - timedelta(days=2)
DAY1 = DAY0 + timedelta(days=1)
DAY2 = DAY1 + timedelta(days=1)
WINDOW = Window(NOW - 48 * HOUR, NOW)

#: Amounts whose float sum is not exact (0.1 + 0.2 != 0.3 in binary).
GROUPS = {
    DAY0: [("g5.xlarge", "us-east-1", "0.1"), ("p4d.24xlarge", "us-west-2", "0.2")],
    DAY1: [("g5.xlarge", "us-east-1", "24.1440"), ("p4d.24xlarge", "us-west-2", "526.983408")],
}
TOTAL = Decimal("0.1") + Decimal("0.2") + Decimal("24.1440") + Decimal("526.983408")


def _result(groups: dict[date, list[tuple[str, str, str]]]) -> dict:
    return {
        "ResultsByTime": [
            {
                "TimePeriod": {"Start": day.isoformat(), "End": (day + timedelta(days=1)).isoformat()},
                "Total": {},
                "Groups": [{"Keys": [itype, region], "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}}
                           for itype, region, amount in rows],
                "Estimated": False,
            }
            for day, rows in groups.items()
        ],
        "DimensionValueAttributes": [],
    }


def _queue(url: str, *results: dict) -> None:
    post_json(f"{url}/moto-api/static/ce/cost-and-usage-results", json.dumps({"results": list(results)}).encode())


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def test_queued_cost_explorer_result_becomes_cost_records(moto: MotoServer) -> None:
    _queue(moto.url, _result(GROUPS))

    records = make_provider(moto.url).costs(WINDOW)

    assert records == [
        CostRecord(Cloud.AWS, ACCOUNT, region, billing.EC2_COMPUTE, itype, _midnight(day),
                   _midnight(day + timedelta(days=1)), Decimal(amount), "USD")
        for day, rows in GROUPS.items() for itype, region, amount in rows
    ]


def test_cost_amounts_are_decimals_that_sum_exactly(moto: MotoServer) -> None:
    _queue(moto.url, _result(GROUPS))

    records = make_provider(moto.url).costs(WINDOW)

    assert all(type(r.billed_cost) is Decimal for r in records)
    assert sum((r.billed_cost for r in records), Decimal(0)) == TOTAL == Decimal("551.427408")


def test_no_queued_result_means_no_records(moto: MotoServer) -> None:
    assert make_provider(moto.url).costs(WINDOW) == []


def test_account_is_looked_up_once_when_inventory_did_not_name_it(moto: MotoServer) -> None:
    _queue(moto.url, _result(GROUPS))
    provider = make_provider(moto.url)

    records = provider.costs(WINDOW)

    assert {r.account for r in records} == {ACCOUNT}
    assert provider.api_calls() == {"sts.GetCallerIdentity": 1, "ce.GetCostAndUsage": 1}


def _stub_ce(provider) -> Stubber:
    stubber = Stubber(provider.clients.client("ce", billing.CE_REGION))
    stubber.activate()
    return stubber


def test_cost_explorer_access_denied_is_auth_error(moto: MotoServer) -> None:
    provider = make_provider(moto.url)
    stubber = _stub_ce(provider)
    stubber.add_client_error("get_cost_and_usage", service_error_code="AccessDeniedException",
                             service_message="User is not authorized to perform: ce:GetCostAndUsage",
                             http_status_code=400)

    with pytest.raises(AuthError) as caught:
        provider.costs(WINDOW)

    stubber.assert_no_pending_responses()
    assert caught.value.code == "AccessDeniedException"
    assert "ce.GetCostAndUsage in us-east-1" in str(caught.value)
    assert caught.value.hint


def _request(start: date, end: date) -> dict:
    return {
        "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
        "Granularity": "DAILY",
        "Metrics": ["UnblendedCost"],
        "Filter": {"Dimensions": {"Key": "SERVICE", "Values": [billing.EC2_COMPUTE]}},
        "GroupBy": [{"Type": "DIMENSION", "Key": "INSTANCE_TYPE"}, {"Type": "DIMENSION", "Key": "REGION"}],
    }


@pytest.mark.parametrize(
    ("window", "start", "end"),
    [
        # a window ending at midnight asks up to that (exclusive) day
        (Window(_midnight(DAY0), _midnight(DAY2)), DAY0, DAY2),
        # a window ending inside a day asks for that whole day too
        (Window(_midnight(DAY0) + 5 * HOUR, _midnight(DAY2) + 5 * HOUR), DAY0, DAY2 + timedelta(days=1)),
    ],
)
def test_request_covers_the_window_by_whole_days(moto: MotoServer, window: Window, start: date, end: date) -> None:
    provider = make_provider(moto.url)
    stubber = _stub_ce(provider)
    stubber.add_response("get_cost_and_usage", {"ResultsByTime": []}, _request(start, end))

    assert provider.costs(window) == []

    stubber.assert_no_pending_responses()


def test_pages_are_followed(moto: MotoServer) -> None:
    provider = make_provider(moto.url)
    stubber = _stub_ce(provider)
    first = _result({DAY0: GROUPS[DAY0]}) | {"NextPageToken": "page-2"}
    second = _result({DAY1: GROUPS[DAY1]})
    asked = _request(DAY0, DAY2)
    stubber.add_response("get_cost_and_usage", first, asked)
    stubber.add_response("get_cost_and_usage", second, asked | {"NextPageToken": "page-2"})

    records = provider.costs(Window(_midnight(DAY0), _midnight(DAY2)))

    stubber.assert_no_pending_responses()
    assert [(r.charge_period_start.date(), r.sku) for r in records] == [
        (DAY0, "g5.xlarge"), (DAY0, "p4d.24xlarge"), (DAY1, "g5.xlarge"), (DAY1, "p4d.24xlarge")]

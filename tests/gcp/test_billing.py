"""Cloud Billing export in BigQuery: the real google-cloud-bigquery client over HTTP to the local emulator,
which runs the provider's SQL in DuckDB over seeded export rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from providers.errors import AuthError, ConfigurationError, NotFound, Throttled
from providers.gcp import billing
from providers.gcp.client import GcpClients
from providers.model import Cloud, Window
from providers.sandbox.gcp_bigquery import GcpBigQueryEmulator

UTC = timezone.utc
DAY0 = datetime(2026, 3, 1, tzinfo=UTC)
DAY1 = DAY0 + timedelta(days=1)
DAY2 = DAY1 + timedelta(days=1)
WINDOW = Window(DAY0, DAY2)
TABLE = "billing-host.billing.gcp_billing_export_v1_012345_6789AB_CDEF01"
DETAILED = "billing-host.billing.gcp_billing_export_resource_v1_012345_6789AB_CDEF01"
FOCUS = "billing-host.gcp_billing_immutable_012345_us.gcp_billing_export_focus_012345"
A100 = "Nvidia Tesla A100 GPU running in Americas"


@pytest.fixture
def bq() -> Iterator[GcpBigQueryEmulator]:
    with GcpBigQueryEmulator() as emu:
        yield emu


def _clients(emu: GcpBigQueryEmulator) -> GcpClients:
    return GcpClients(projects=["p"], endpoints={"bigquery": emu.url}, retry_initial=0.01, retry_timeout=2)


def _row(at: datetime, sku: str, cost: str | float, *, credits: tuple[str, ...] = (), machine: str | None = None,
         resource: str | None = None, project: str = "p", region: str = "us-central1", usage: float = 3600.0,
         service: str = "Compute Engine") -> dict[str, Any]:
    row: dict[str, Any] = {
        "service": {"id": "6F81-5844-456A", "description": service},
        "sku": {"id": f"SKU-{abs(hash(sku)) % 10_000:04d}", "description": sku},
        "usage_start_time": at, "project": {"id": project, "number": "123", "name": project},
        "location": {"location": region, "country": "US", "region": region, "zone": f"{region}-a"},
        "cost": float(cost), "usage": {"amount": usage, "unit": "seconds"},
        "credits": [{"name": "Sustained use discount", "amount": float(a), "type": "SUSTAINED_USAGE_DISCOUNT"}
                    for a in credits],
        "system_labels": {billing.MACHINE_SPEC: machine} if machine else {},
    }
    if resource:
        row["resource"] = {"name": resource,
                           "global_name": f"//compute.googleapis.com/projects/{project}/zones/{region}-a/instances/"
                                          f"{abs(hash(resource)) % 10**12}"}
    return row


def _sku_id(sku: str) -> str:
    return f"SKU-{abs(hash(sku)) % 10_000:04d}"


def test_standard_export_rows_become_daily_records_net_of_credits(bq: GcpBigQueryEmulator) -> None:
    bq.add_billing_table(*TABLE.split("."), [
        _row(DAY0 + timedelta(hours=1), A100, "0.1", credits=("-0.05",)),
        _row(DAY0 + timedelta(hours=2), A100, "0.2", credits=("-0.01", "-0.02")),
        _row(DAY1 + timedelta(hours=3), A100, "2.933908"),
    ])

    records = billing.costs(_clients(bq), TABLE, WINDOW)

    assert [(r.charge_period_start, r.charge_period_end, r.billed_cost) for r in records] == [
        (DAY0, DAY1, Decimal("0.22")), (DAY1, DAY2, Decimal("2.933908"))]
    assert all(type(r.billed_cost) is Decimal for r in records)
    first = records[0]
    assert (first.cloud, first.account, first.region, first.service, first.sku, first.currency) == (
        Cloud.GCP, "p", "us-central1", "Compute Engine", _sku_id(A100), "USD")


def test_rows_outside_the_window_are_left_out(bq: GcpBigQueryEmulator) -> None:
    bq.add_billing_table(*TABLE.split("."), [
        _row(DAY0 - timedelta(hours=1), A100, "100"),  # before
        _row(DAY0, A100, "1"),  # the first instant is in
        _row(DAY2 - timedelta(hours=1), A100, "2"),
        _row(DAY2, A100, "1000"),  # the window is half-open
    ])

    records = billing.costs(_clients(bq), TABLE, WINDOW)

    assert sum(r.billed_cost for r in records) == Decimal(3)


def test_a_window_inside_a_day_clips_the_charge_period(bq: GcpBigQueryEmulator) -> None:
    bq.add_billing_table(*TABLE.split("."), [_row(DAY0 + timedelta(hours=h), A100, "1") for h in range(24)])
    window = Window(DAY0 + timedelta(hours=6), DAY0 + timedelta(hours=12))

    [record] = billing.costs(_clients(bq), TABLE, window)

    assert (record.charge_period_start, record.charge_period_end, record.billed_cost) == (
        window.start, window.end, Decimal(6))


def test_only_compute_engine_gpu_rows_are_kept(bq: GcpBigQueryEmulator) -> None:
    bq.add_billing_table(*TABLE.split("."), [
        _row(DAY0, A100, "3"),
        _row(DAY0, "A2 Instance Core running in Americas", "0.4", machine="a2-highgpu-1g"),
        _row(DAY0, "G2 Instance Core running in Americas", "0.1", machine="g2-standard-4"),
        _row(DAY0, "N2 Instance Core running in Americas", "7", machine="n2-standard-4"),
        _row(DAY0, "Standard Storage US Multi-region", "9", service="Cloud Storage"),
    ])

    records = billing.costs(_clients(bq), TABLE, WINDOW)

    assert {(r.sku, r.billed_cost) for r in records} == {
        (_sku_id(A100), Decimal(3)), ("a2-highgpu-1g", Decimal("0.4")), ("g2-standard-4", Decimal("0.1"))}


def test_detailed_export_groups_per_resource_under_its_machine_type(bq: GcpBigQueryEmulator) -> None:
    bq.add_billing_table(*DETAILED.split("."), [
        _row(DAY0, A100, "2.9", resource="train-1"),
        _row(DAY0, "A2 Instance Core running in Americas", "0.38", machine="a2-highgpu-1g", resource="train-1"),
        _row(DAY0, "A2 Instance Ram running in Americas", "0.36", machine="a2-highgpu-1g", resource="train-1"),
        # an N1 VM with one T4: 8 vCPU for an hour, one GPU for an hour
        _row(DAY0, "Nvidia Tesla T4 GPU running in Americas", "0.35", resource="infer-1"),
        _row(DAY0, "N1 Predefined Instance Core running in Americas", "0.25", machine="n1-standard-8",
             resource="infer-1", usage=8 * 3600.0),
        _row(DAY0, "N1 Predefined Instance Ram running in Americas", "0.13", machine="n1-standard-8",
             resource="infer-1"),
        _row(DAY0, "N1 Predefined Instance Core running in Americas", "5", machine="n1-standard-8", resource="web-1"),
    ])

    records = billing.costs(_clients(bq), DETAILED, WINDOW)

    assert {(r.resource_id, r.sku, r.billed_cost) for r in records} == {
        ("train-1", "a2-highgpu-1g", Decimal("3.64")),
        ("infer-1", "n1-standard-8+1xnvidia-tesla-t4", Decimal("0.73")),
    }


def test_spot_skus_are_dynamic_pricing(bq: GcpBigQueryEmulator) -> None:
    bq.add_billing_table(*TABLE.split("."), [
        _row(DAY0, "Nvidia Tesla A100 GPU attached to Spot Preemptible VMs running in Americas", "1.5")])

    [record] = billing.costs(_clients(bq), TABLE, WINDOW)

    assert record.pricing_category == "Dynamic"


def test_focus_export_table(bq: GcpBigQueryEmulator) -> None:
    def focus(at: datetime, sku: str, effective: str, resource: str, machine: str | None = None) -> dict[str, Any]:
        return {"ChargePeriodStart": at, "SubAccountId": "p", "RegionId": "us-central1", "ServiceName": "Compute Engine",
                "SkuId": "S-" + sku[:3], "ChargeDescription": sku, "ResourceName": resource,
                "ResourceId": f"//compute.googleapis.com/projects/p/zones/us-central1-a/instances/{resource}",
                "BilledCost": Decimal(effective) + 1, "EffectiveCost": Decimal(effective),
                "ConsumedQuantity": Decimal(1), "x_SystemLabels": {billing.MACHINE_SPEC: machine} if machine else {}}

    bq.add_focus_table(*FOCUS.split("."), [
        focus(DAY0, A100, "2.5", "train-1"),
        focus(DAY0, "A2 Instance Core running in Americas", "0.4", "train-1", "a2-highgpu-1g"),
        focus(DAY1 + timedelta(hours=5), A100, "2.5", "train-1"),
        focus(DAY2, A100, "99", "train-1"),  # outside the window
    ])

    records = billing.costs(_clients(bq), FOCUS, WINDOW)

    assert [(r.charge_period_start, r.resource_id, r.sku, r.billed_cost) for r in records] == [
        (DAY0, "train-1", "a2-highgpu-1g", Decimal("2.9")), (DAY1, "train-1", "S-Nvi", Decimal("2.5"))]


def test_pages_are_followed_and_every_request_counted() -> None:
    with GcpBigQueryEmulator(page_size=2) as bq:
        bq.add_billing_table(*DETAILED.split("."), [
            _row(DAY0 + timedelta(hours=h), A100, "1", resource=f"vm-{h}") for h in range(7)])
        clients = _clients(bq)

        records = billing.costs(clients, DETAILED, WINDOW)

        assert sorted(r.resource_id for r in records) == [f"vm-{h}" for h in range(7)]
        assert clients.calls == {"bigquery.Tables.Get": 1, "bigquery.Jobs.Query": 1, "bigquery.Jobs.Get": 1,
                                 "bigquery.Jobs.GetQueryResults": 3}
        assert bq.count("/queries/") == 3 and bq.count("POST /bigquery/v2/projects/billing-host/queries") == 1
        assert len(bq.requests) == sum(clients.calls.values())


def test_given_kind_skips_the_schema_read_and_queries_the_billing_project(bq: GcpBigQueryEmulator) -> None:
    bq.add_billing_table(*TABLE.split("."), [_row(DAY0, A100, "1")])
    clients = _clients(bq)

    records = billing.costs(clients, TABLE, WINDOW, kind="standard", project="query-runner")

    assert len(records) == 1
    assert clients.calls == {"bigquery.Jobs.Query": 1}
    assert bq.requests == ["POST /bigquery/v2/projects/query-runner/queries?prettyPrint=false"]


def test_projects_restrict_the_rows(bq: GcpBigQueryEmulator) -> None:
    bq.add_billing_table(*TABLE.split("."), [_row(DAY0, A100, "1", project="a"), _row(DAY0, A100, "2", project="b")])

    records = billing.costs(_clients(bq), TABLE, WINDOW, projects=["b"])

    assert [(r.account, r.billed_cost) for r in records] == [("b", Decimal(2))]


def test_missing_table_is_not_found_naming_it(bq: GcpBigQueryEmulator) -> None:
    with pytest.raises(NotFound) as caught:
        billing.costs(_clients(bq), TABLE, WINDOW)

    assert "gcp_billing_export_v1_012345_6789AB_CDEF01" in str(caught.value)
    assert caught.value.hint == billing.TABLE_HINT


def test_missing_table_of_a_given_kind_is_not_found_naming_it(bq: GcpBigQueryEmulator) -> None:
    with pytest.raises(NotFound, match="gcp_billing_export_v1_012345_6789AB_CDEF01"):
        billing.costs(_clients(bq), TABLE, WINDOW, kind="standard")


def test_access_denied_is_auth_error(bq: GcpBigQueryEmulator) -> None:
    bq.add_billing_table(*TABLE.split("."), [_row(DAY0, A100, "1")])
    bq.deny(TABLE)

    with pytest.raises(AuthError) as caught:
        billing.costs(_clients(bq), TABLE, WINDOW)

    assert "Access Denied" in str(caught.value) and caught.value.hint


def test_unavailable_is_retried(bq: GcpBigQueryEmulator) -> None:
    bq.add_billing_table(*TABLE.split("."), [_row(DAY0, A100, "1")])
    bq.fail_next(503, count=2)

    records = billing.costs(_clients(bq), TABLE, WINDOW, kind="standard")

    assert [r.billed_cost for r in records] == [Decimal(1)]
    assert bq.count("POST") == 3


def test_throttling_beyond_the_retry_budget_is_throttled(bq: GcpBigQueryEmulator) -> None:
    bq.add_billing_table(*TABLE.split("."), [_row(DAY0, A100, "1")])
    bq.fail_next(429, count=1000)
    clients = GcpClients(projects=["p"], endpoints={"bigquery": bq.url}, retry_initial=0.01, retry_timeout=0.3)

    with pytest.raises(Throttled):
        billing.costs(clients, TABLE, WINDOW, kind="standard")


def test_no_table_configured_is_no_records_and_no_call(bq: GcpBigQueryEmulator) -> None:
    clients = _clients(bq)

    assert billing.costs(clients, "", WINDOW) == []
    assert clients.calls == {} and bq.requests == []


@pytest.mark.parametrize("table", ["billing.gcp_billing_export_v1_X", "p.d.t; DROP", "a.b.c.d"])
def test_malformed_table_name_is_a_configuration_error(bq: GcpBigQueryEmulator, table: str) -> None:
    with pytest.raises(ConfigurationError):
        billing.costs(_clients(bq), table, WINDOW)


def test_emulator_runs_named_parameters_of_the_real_client(bq: GcpBigQueryEmulator) -> None:
    from google.cloud import bigquery

    bq.add_billing_table(*TABLE.split("."), [_row(DAY0 + timedelta(hours=h), A100, "1", project=f"p{h}")
                                             for h in range(4)])
    config = bigquery.QueryJobConfig(query_parameters=[
        bigquery.ScalarQueryParameter("start", "TIMESTAMP", DAY0 + timedelta(hours=1)),
        bigquery.ArrayQueryParameter("projects", "STRING", ["p1", "p3"])])
    sql = (f"SELECT usage_start_time, sku.description AS sku FROM `{TABLE}` "
           "WHERE usage_start_time >= @start AND project.id IN UNNEST(@projects) ORDER BY usage_start_time")

    rows = list(_clients(bq).bigquery("p").query_and_wait(sql, job_config=config))

    assert [(r["usage_start_time"], r["sku"]) for r in rows] == [
        (DAY0 + timedelta(hours=1), A100), (DAY0 + timedelta(hours=3), A100)]


def test_emulator_answers_sql_it_cannot_run_with_invalid_query(bq: GcpBigQueryEmulator) -> None:
    from google.api_core.exceptions import BadRequest

    bq.add_billing_table(*TABLE.split("."), [_row(DAY0, A100, "1")])

    with pytest.raises(BadRequest) as caught:
        _clients(bq).bigquery("p").query_and_wait(f"SELECT no_such_column FROM `{TABLE}`", job_retry=None)

    assert caught.value.errors[0]["reason"] == "invalidQuery"

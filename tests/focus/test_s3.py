"""Billing exports read from S3 (a local moto server) through providers.aws.storage and AwsClients."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from providers.focus import BillingError, read_billing
from providers.sandbox import MotoServer, moto_server
from tests.aws.support import make_clients, raw
from tests.focus.conftest import DATA, billed, six

BUCKET = "billing-exports"
PREFIX = "focus/costagent/2024-09/"


@pytest.fixture(scope="module")
def server() -> Iterator[MotoServer]:
    with moto_server(("us-east-1",)) as srv:
        s3 = raw("s3", srv.url)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key=PREFIX + "part-00001.csv.gz", Body=(DATA / "focus_sample.csv.gz").read_bytes())
        s3.put_object(Bucket=BUCKET, Key=PREFIX + "manifest.json", Body=b'{"files": 1}')
        s3.put_object(Bucket=BUCKET, Key="azure/actual.csv", Body=(DATA / "EA_ActualCost_Small.csv").read_bytes())
        yield srv


def test_focus_sample_read_through_s3_matches_the_known_sum(server):
    clients = make_clients(server.url)
    data = read_billing([f"s3://{BUCKET}/{PREFIX}"], aws_clients=clients)
    assert data.sources == (f"s3://{BUCKET}/{PREFIX}part-00001.csv.gz",)  # the manifest is not billing data
    assert six(billed(data)) == Decimal("20.520227")
    assert clients.calls["s3.ListObjectsV2"] == 1 and clients.calls["s3.GetObject"] == 1


def test_a_glob_in_the_key_selects_objects(server):
    data = read_billing([f"s3://{BUCKET}/*/actual.csv"], aws_clients=make_clients(server.url))
    assert data.sources == (f"s3://{BUCKET}/azure/actual.csv",)
    assert six(billed(data)) == Decimal("8.545008")


def test_s3_and_local_paths_mix(server):
    data = read_billing([f"s3://{BUCKET}/azure/actual.csv", str(DATA / "EA_AmortizedCost_Small.csv")],
                        aws_clients=make_clients(server.url))
    assert len(data.sources) == 2


def test_a_missing_prefix_is_a_billing_error_naming_the_url(server):
    with pytest.raises(BillingError, match=f"s3://{BUCKET}/nothing/"):
        read_billing([f"s3://{BUCKET}/nothing/"], aws_clients=make_clients(server.url), strict=True)


def test_a_missing_bucket_is_a_billing_error(server):
    with pytest.raises(BillingError, match="s3://no-such-bucket/x"):
        read_billing(["s3://no-such-bucket/x"], aws_clients=make_clients(server.url), strict=True)

"""AwsClients: the standard credential chain, call counting, and error translation."""

from __future__ import annotations

import os
from pathlib import Path

import botocore.exceptions
import pytest

from providers.aws import AwsProvider
from providers.aws.client import AUTH_HINT, AwsClients, translated
from providers.errors import AuthError, ConfigurationError, NotFound, ProviderError, Throttled
from providers.sandbox import MotoServer
from tests.aws.support import launch, make_clients, raw, session


def _isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS_* variable from the outside, empty config files, no instance metadata lookups."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name, raising=False)
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        empty = tmp_path / name.lower()
        empty.write_text("")
        monkeypatch.setenv(name, str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _env_chain(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str, region: str) -> None:
    _isolate(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "envkey")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "envsecret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)


def _client_error(code: str, message: str = "something went wrong", operation: str = "DescribeInstances"):
    return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": message}}, operation)


def test_plain_clients_reach_moto_through_env_only(moto: MotoServer, monkeypatch, tmp_path) -> None:
    [iid] = launch(raw("ec2", moto.url, "us-west-2"), "m5.large")
    _env_chain(monkeypatch, tmp_path, moto.url, "us-west-2")

    found = AwsProvider(AwsClients(), live_prices=False).resources("us-west-2")

    assert [r.ref.id for r in found] == [iid]


def test_default_region_is_the_environment_region(monkeypatch, tmp_path) -> None:
    _env_chain(monkeypatch, tmp_path, "http://127.0.0.1:9", "eu-central-1")

    assert AwsClients().default_region() == "eu-central-1"


def test_calls_are_counted_per_operation(moto: MotoServer) -> None:
    clients = make_clients(moto.url)
    ec2 = clients.client("ec2", "us-east-1")

    ec2.describe_instances()
    ec2.describe_instances()
    clients.client("ec2", "us-west-2").describe_instances()

    assert dict(clients.calls) == {"ec2.DescribeInstances": 3}


def test_one_client_per_service_region_and_attempts(moto: MotoServer) -> None:
    clients = make_clients(moto.url)

    assert clients.client("ec2", "us-east-1") is clients.client("ec2", "us-east-1")
    assert clients.client("ec2", "us-east-1") is not clients.client("ec2", "us-west-2")
    assert clients.client("ec2", "us-east-1") is not clients.client("ec2", "us-east-1", max_attempts=1)


@pytest.mark.parametrize("code", ["UnauthorizedOperation", "AccessDenied", "AccessDeniedException", "ExpiredToken"])
def test_permission_codes_become_auth_error_with_hint(code: str) -> None:
    with pytest.raises(AuthError) as caught:
        with translated("ec2", "DescribeInstances", "us-east-1"):
            raise _client_error(code, "You are not authorized to perform this operation.")

    assert caught.value.hint == AUTH_HINT
    assert caught.value.code == code
    assert "You are not authorized" in str(caught.value)


@pytest.mark.parametrize("code", ["Throttling", "ThrottlingException", "RequestLimitExceeded"])
def test_throttling_codes_become_throttled(code: str) -> None:
    with pytest.raises(Throttled) as caught:
        with translated("cloudwatch", "GetMetricData", "us-east-1"):
            raise _client_error(code, "Rate exceeded", "GetMetricData")

    assert caught.value.code == code
    assert caught.value.hint


def test_unknown_code_becomes_provider_error_naming_the_place() -> None:
    with pytest.raises(ProviderError) as caught:
        with translated("cloudwatch", "ListMetrics", "eu-west-1"):
            raise _client_error("InternalFailure", "boom\nsecond line", "ListMetrics")

    exc = caught.value
    assert type(exc) is ProviderError
    assert str(exc) == "aws cloudwatch.ListMetrics in eu-west-1: InternalFailure: boom"
    assert exc.code == "InternalFailure"


def test_not_found_from_moto_becomes_not_found(moto: MotoServer) -> None:
    ec2 = make_clients(moto.url).client("ec2", "us-east-1")

    with pytest.raises(NotFound) as caught:
        with translated("ec2", "DescribeInstances", "us-east-1"):
            ec2.describe_instances(InstanceIds=["i-0123456789abcdef0"])

    assert caught.value.code == "InvalidInstanceID.NotFound"


def test_no_credentials_is_auth_error(moto: MotoServer, monkeypatch, tmp_path) -> None:
    _isolate(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)  # never the real AWS, should credentials turn up

    with pytest.raises(AuthError) as caught:
        AwsProvider(AwsClients(), live_prices=False).resources("us-east-1")

    assert "no AWS credentials" in str(caught.value)
    assert "ec2.DescribeInstances in us-east-1" in str(caught.value)
    assert caught.value.hint == AUTH_HINT


@pytest.mark.parametrize("how", ["environment", "argument"])
def test_unknown_profile_is_configuration_error(monkeypatch, tmp_path, how: str) -> None:
    _isolate(monkeypatch, tmp_path)
    if how == "environment":
        monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    clients = AwsClients(profile="no-such-profile" if how == "argument" else None)

    with pytest.raises(ConfigurationError) as caught:
        clients.default_region()

    assert "no-such-profile" in str(caught.value)
    assert caught.value.hint


def test_no_region_is_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as caught:
        with translated("ec2", "DescribeInstances"):
            raise botocore.exceptions.NoRegionError()

    assert str(caught.value) == "aws ec2.DescribeInstances: no region"
    assert "AWS_DEFAULT_REGION" in caught.value.hint


def test_unreachable_endpoint_is_provider_error_with_hint() -> None:
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens on loopback, the connection is refused
    clients = AwsClients(lambda: session("us-east-1"), endpoint_url=closed, max_attempts=1)

    with pytest.raises(ProviderError) as caught:
        AwsProvider(clients, live_prices=False).resources("us-east-1")

    assert type(caught.value) is ProviderError
    assert str(caught.value) == f"aws ec2.DescribeInstances in us-east-1: cannot reach {closed}/"
    assert "AWS_ENDPOINT_URL" in caught.value.hint

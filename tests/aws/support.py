"""Helpers shared by the AWS provider tests: sessions, a provider wired to a moto server, seeding."""

from __future__ import annotations

import urllib.request
from functools import cache
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import botocore.loaders
import botocore.session

from providers.aws import AwsProvider
from providers.aws.client import AwsClients

#: The fixed 'now' of every test: the current UTC time floored to the hour (moto stores what we put,
#: so only the data is built from the wall clock; every assertion is relative to NOW).
NOW = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
HOUR = timedelta(hours=1)
AMI = "ami-12c6146b"  # one of moto's built-in images
ACCOUNT = "123456789012"  # moto's default account


#: One botocore model loader for every session of the run: parsing the EC2 model again for each
#: test's new session costs ~0.2 s. It only caches the SDK's own JSON files; nothing is patched.
_LOADER = botocore.loaders.create_loader()


def session(region: str = "us-east-1") -> boto3.session.Session:
    """What the brief's factory builds (static test keys, the region), with the shared model loader."""
    core = botocore.session.Session()
    core.register_component("data_loader", _LOADER)
    return boto3.session.Session(region_name=region, aws_access_key_id="t", aws_secret_access_key="t",
                                 botocore_session=core)


def make_clients(url: str) -> AwsClients:
    return AwsClients(lambda: session("us-east-1"), endpoint_url=url)


def make_provider(url: str, *, live_prices: bool = False) -> AwsProvider:
    return AwsProvider(make_clients(url), live_prices=live_prices)


@cache
def raw(service: str, url: str, region: str = "us-east-1") -> Any:
    """A boto3 client for arranging state (cached: models load slowly); the provider does not count its calls."""
    return session(region).client(service, endpoint_url=url)


def reset(url: str) -> None:
    req = urllib.request.Request(f"{url}/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - local moto server only
        resp.read()


def post_json(url: str, body: bytes) -> None:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - local moto server only
        resp.read()


def launch(ec2: Any, instance_type: str, count: int = 1, *, spot: bool = False,
           tags: dict[str, str] | None = None) -> list[str]:
    kwargs: dict[str, Any] = {"ImageId": AMI, "InstanceType": instance_type, "MinCount": count, "MaxCount": count}
    if tags:
        kwargs["TagSpecifications"] = [
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    if spot:
        kwargs["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": {"SpotInstanceType": "one-time"}}
    return [i["InstanceId"] for i in ec2.run_instances(**kwargs)["Instances"]]


def dims(**pairs: str) -> list[dict[str, str]]:
    return [{"Name": k, "Value": v} for k, v in pairs.items()]


def put(cw: Any, namespace: str, name: str, dimensions: Sequence[dict[str, str]],
        points: Iterable[tuple[datetime, float]], unit: str = "None") -> int:
    data = [{"MetricName": name, "Dimensions": list(dimensions), "Timestamp": ts, "Value": float(v), "Unit": unit}
            for ts, v in points]
    for start in range(0, len(data), 1000):
        cw.put_metric_data(Namespace=namespace, MetricData=data[start : start + 1000])
    return len(data)


def hours(start: datetime, n: int, step: timedelta = HOUR) -> list[datetime]:
    return [start + i * step for i in range(n)]

"""EC2 inventory: instances as Resources, with GPU specs from DescribeInstanceTypes (or the catalog)."""

from __future__ import annotations

import pytest

from providers.aws import inventory
from providers.aws.client import translated
from providers.errors import ProviderError
from providers.model import Accelerators, Cloud, PricingModel, ResourceState
from providers.sandbox import MotoServer
from tests.aws.support import ACCOUNT, launch, make_provider, raw


def _by_id(resources):
    return {r.ref.id: r for r in resources}


@pytest.mark.parametrize(
    ("itype", "expected", "vcpu"),
    [
        ("g5.xlarge", Accelerators("A10G", 1, 22.35, "NVIDIA"), 4),
        ("p4d.24xlarge", Accelerators("A100", 8, 40.0, "NVIDIA"), 96),
    ],
)
def test_gpu_type_gets_accelerators_from_describe_instance_types(moto: MotoServer, itype, expected, vcpu) -> None:
    [iid] = launch(raw("ec2", moto.url), itype)
    provider = make_provider(moto.url)

    [res] = provider.resources("us-east-1")

    assert res.ref.id == iid
    assert res.instance_type == itype
    assert res.accelerators == expected
    assert res.has_gpu
    assert res.vcpu == vcpu
    assert provider.api_calls()["ec2.DescribeInstanceTypes"] == 1


def test_resource_ref_names_cloud_account_region(moto: MotoServer) -> None:
    [iid] = launch(raw("ec2", moto.url, "us-west-2"), "g5.xlarge")

    [res] = make_provider(moto.url).resources("us-west-2")

    assert (res.ref.cloud, res.ref.account, res.ref.region, res.ref.id) == (Cloud.AWS, ACCOUNT, "us-west-2", iid)
    assert res.zone is not None and res.zone.startswith("us-west-2")
    assert res.launched_at is not None and res.launched_at.utcoffset().total_seconds() == 0


def test_spot_instance_is_spot_priced(moto: MotoServer) -> None:
    ec2 = raw("ec2", moto.url)
    [spot] = launch(ec2, "g5.xlarge", spot=True)
    [on_demand] = launch(ec2, "g5.xlarge")

    found = _by_id(make_provider(moto.url).resources("us-east-1"))

    assert found[spot].pricing_model is PricingModel.SPOT
    assert found[on_demand].pricing_model is PricingModel.ON_DEMAND


def test_tags_and_name(moto: MotoServer) -> None:
    tags = {"Name": "trainer-7", "team": "vision", "aws:autoscaling:groupName": "asg-train"}
    [iid] = launch(raw("ec2", moto.url), "g5.xlarge", tags=tags)

    [res] = make_provider(moto.url).resources("us-east-1")

    assert res.ref.id == iid
    assert dict(res.tags) == tags
    assert res.name == "trainer-7"
    assert res.group == "asg-train"


def test_untagged_instance_has_no_name(moto: MotoServer) -> None:
    launch(raw("ec2", moto.url), "g5.xlarge")

    [res] = make_provider(moto.url).resources("us-east-1")

    assert dict(res.tags) == {}
    assert res.name is None
    assert res.group is None


def test_stopped_instance_is_listed_as_stopped(moto: MotoServer) -> None:
    ec2 = raw("ec2", moto.url)
    [stopped, running] = launch(ec2, "g5.xlarge", 2)
    ec2.stop_instances(InstanceIds=[stopped])

    found = _by_id(make_provider(moto.url).resources("us-east-1"))

    assert found[stopped].state is ResourceState.STOPPED
    assert found[running].state is ResourceState.RUNNING


def test_terminated_instance_is_not_listed(moto: MotoServer) -> None:
    ec2 = raw("ec2", moto.url)
    [gone, kept] = launch(ec2, "g5.xlarge", 2)
    ec2.terminate_instances(InstanceIds=[gone])

    found = make_provider(moto.url).resources("us-east-1")

    assert [r.ref.id for r in found] == [kept]


def test_non_gpu_type_has_no_accelerators(moto: MotoServer) -> None:
    launch(raw("ec2", moto.url), "m5.large")

    [res] = make_provider(moto.url).resources("us-east-1")

    assert res.accelerators is None
    assert not res.has_gpu
    assert (res.vcpu, res.memory_gib) == (2, 8.0)


def test_empty_region_lists_nothing_and_describes_no_types(moto: MotoServer) -> None:
    provider = make_provider(moto.url)

    assert provider.resources("us-east-1") == []
    assert provider.api_calls() == {"ec2.DescribeInstances": 1}


def test_moto_rejects_p3_2xlarge_in_us_west_2_describe_instance_types(moto: MotoServer) -> None:
    """The premise of the catalog-fallback test: RunInstances accepts the type, DescribeInstanceTypes does not."""
    ec2 = raw("ec2", moto.url, "us-west-2")
    launch(ec2, "p3.2xlarge")

    with pytest.raises(ProviderError) as caught:
        with translated("ec2", "DescribeInstanceTypes", "us-west-2"):
            ec2.describe_instance_types(InstanceTypes=["p3.2xlarge"])

    assert caught.value.code == "InvalidInstanceType"


def test_type_the_region_rejects_gets_its_gpus_from_the_catalog(moto: MotoServer) -> None:
    ec2 = raw("ec2", moto.url, "us-west-2")
    [p3] = launch(ec2, "p3.2xlarge")
    [g5] = launch(ec2, "g5.xlarge")
    provider = make_provider(moto.url)

    found = _by_id(provider.resources("us-west-2"))

    assert found[p3].accelerators == Accelerators("V100", 1, 16.0)
    assert found[p3].vcpu == 8
    assert found[g5].accelerators == Accelerators("A10G", 1, 22.35)
    # the rejected batch, then the batch without the unknown type
    assert provider.api_calls()["ec2.DescribeInstanceTypes"] == 2


def test_type_unknown_without_fallback_has_no_spec(moto: MotoServer) -> None:
    """Without a fallback, a type the region rejects is left out of the specs; the others still come back."""
    types = inventory.InstanceTypeCache(make_provider(moto.url).clients)

    assert types.specs("us-west-2", ["p3.2xlarge", "m5.large"]).keys() == {"m5.large"}


def test_instance_types_are_described_once_per_run(moto: MotoServer) -> None:
    ec2 = raw("ec2", moto.url)
    launch(ec2, "g5.xlarge", 3)
    launch(ec2, "m5.large")
    provider = make_provider(moto.url)

    first = provider.resources("us-east-1")
    second = provider.resources("us-east-1")

    assert len(first) == len(second) == 4
    assert provider.api_calls() == {"ec2.DescribeInstances": 2, "ec2.DescribeInstanceTypes": 1}


def test_instance_type_cache_spans_regions(moto: MotoServer) -> None:
    launch(raw("ec2", moto.url), "g5.xlarge")
    launch(raw("ec2", moto.url, "us-west-2"), "g5.xlarge")
    provider = make_provider(moto.url)

    east = provider.resources("us-east-1")
    west = provider.resources("us-west-2")

    assert east[0].accelerators == west[0].accelerators == Accelerators("A10G", 1, 22.35)
    assert provider.api_calls()["ec2.DescribeInstanceTypes"] == 1

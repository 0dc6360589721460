"""Auto Scaling groups through boto3 against moto: sizes, members, scheduled actions, offerings, errors,
and the seeded sandbox groups audited by ``autoscale`` end to end (inventory, CloudWatch, prices)."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from botocore.stub import Stubber

from providers.aws import groups
from providers.aws.client import AwsClients
from providers.errors import AuthError, ProviderError
from providers.model import Cloud, ScheduledCapacity, Snapshot, Usage, Window, price_key
from providers.sandbox import MotoServer
from providers.sandbox.aws_groups import seed_groups
from providers.sandbox.groups import OVERPROVISIONED, STEADY, SimGroup
from recommenders.autoscale import AutoscaleSettings, recommend
from recommenders.idle import IdleSettings
from tests.aws.support import (
    ACCOUNT,
    AMI,
    NOW,
    make_clients,
    make_provider,
    raw,
    session,
)


def _asg(url: str, name: str, *, size: tuple[int, int, int] = (1, 4, 2), itype: str = "g5.xlarge",
         region: str = "us-east-1", **extra) -> None:
    ec2, asg = raw("ec2", url, region), raw("autoscaling", url, region)
    ec2.create_launch_template(LaunchTemplateName=f"{name}-lt", LaunchTemplateData={"ImageId": AMI, "InstanceType": itype})
    low, high, desired = size
    asg.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=low, MaxSize=high, DesiredCapacity=desired,
                                  LaunchTemplate={"LaunchTemplateName": f"{name}-lt", "Version": "$Latest"},
                                  AvailabilityZones=[f"{region}a"], **extra)


def _member_ids(url: str, name: str, region: str = "us-east-1") -> list[str]:
    [group] = raw("autoscaling", url, region).describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    return sorted(m["InstanceId"] for m in group["Instances"])


def test_groups_carry_sizes_members_type_and_tags(moto: MotoServer) -> None:
    _asg(moto.url, "inference", size=(1, 6, 3), HealthCheckGracePeriod=600,
         Tags=[{"Key": "team", "Value": "llm", "PropagateAtLaunch": True}])

    [group] = groups.list_groups(make_clients(moto.url), "us-east-1", ACCOUNT)

    assert group.ref.cloud is Cloud.AWS and group.ref.region == "us-east-1" and group.ref.id == "inference"
    assert group.ref.account == ACCOUNT  # read from the group's ARN
    assert group.kind == "aws-asg" and group.instance_type == "g5.xlarge"
    assert (group.min_size, group.max_size, group.desired) == (1, 6, 3)
    assert group.members == tuple(_member_ids(moto.url, "inference"))
    assert len(group.members) == 3
    assert group.warmup_seconds == 600
    assert dict(group.tags) == {"team": "llm"}
    assert group.scheduled == ()


def test_members_are_tagged_with_their_group_in_the_inventory(moto: MotoServer) -> None:
    _asg(moto.url, "workers", size=(2, 2, 2), Tags=[{"Key": "Name", "Value": "worker", "PropagateAtLaunch": True}])
    [group] = make_provider(moto.url).groups("us-east-1")

    found = make_provider(moto.url).resources("us-east-1")

    assert {r.ref.key for r in found} == set(group.member_keys())
    assert {(r.group, r.name) for r in found} == {("workers", "worker")}


def test_recurring_scheduled_actions_are_read_one_off_actions_are_not(moto: MotoServer) -> None:
    _asg(moto.url, "office")
    asg = raw("autoscaling", moto.url)
    asg.put_scheduled_update_group_action(AutoScalingGroupName="office", ScheduledActionName="up",
                                          Recurrence="45 7 * * 1-5", MinSize=3, MaxSize=4, DesiredCapacity=3)
    asg.put_scheduled_update_group_action(AutoScalingGroupName="office", ScheduledActionName="down",
                                          Recurrence="0 20 * * 1-5", MinSize=0, DesiredCapacity=0,
                                          TimeZone="Europe/Berlin")
    asg.put_scheduled_update_group_action(AutoScalingGroupName="office", ScheduledActionName="launch-day",
                                          StartTime="2030-01-01T00:00:00Z", DesiredCapacity=4)

    [group] = groups.list_groups(make_clients(moto.url), "us-east-1", ACCOUNT)

    assert sorted(group.scheduled, key=lambda s: s.name) == [
        ScheduledCapacity("down", "0 20 * * 1-5", min_size=0, max_size=None, desired=0, time_zone="Europe/Berlin"),
        ScheduledCapacity("up", "45 7 * * 1-5", min_size=3, max_size=4, desired=3, time_zone="UTC"),
    ]


def test_groups_are_listed_per_region_and_an_empty_region_costs_one_call(moto: MotoServer) -> None:
    _asg(moto.url, "east")
    _asg(moto.url, "west", region="us-west-2")
    clients = make_clients(moto.url)

    assert [g.ref.id for g in groups.list_groups(clients, "us-west-2", ACCOUNT)] == ["west"]
    assert [g.ref.id for g in groups.list_groups(clients, "us-east-1", ACCOUNT)] == ["east"]
    calls_before = dict(clients.calls)
    empty = AwsClients(lambda: session("eu-west-1"), endpoint_url=moto.url)
    assert groups.list_groups(empty, "eu-west-1", ACCOUNT) == []
    assert dict(empty.calls) == {"autoscaling.DescribeAutoScalingGroups": 1}
    assert calls_before["autoscaling.DescribeScheduledActions"] == 2


def test_group_at_zero_has_no_members(moto: MotoServer) -> None:
    _asg(moto.url, "parked", size=(0, 4, 0))

    [group] = groups.list_groups(make_clients(moto.url), "us-east-1", ACCOUNT)

    assert group.members == () and group.desired == 0
    assert group.instance_type is None  # no member to read it from


def test_offered_types_are_the_region_offerings_among_those_asked(moto: MotoServer) -> None:
    clients = make_clients(moto.url)

    found = groups.offered_types(clients, "us-east-1", ["g5.xlarge", "g5.xlarge", "p4d.24xlarge", "zz9.nonexistent"])

    assert found == {"g5.xlarge", "p4d.24xlarge"}
    assert clients.calls["ec2.DescribeInstanceTypeOfferings"] == 1


def test_offered_types_ask_in_chunks_of_the_filter_limit(moto: MotoServer) -> None:
    clients = make_clients(moto.url)
    wanted = ["g5.xlarge"] + [f"zz{i}.fake" for i in range(groups.OFFERING_FILTER_VALUES)]

    assert groups.offered_types(clients, "us-east-1", wanted) == {"g5.xlarge"}
    assert clients.calls["ec2.DescribeInstanceTypeOfferings"] == 2


@pytest.mark.parametrize(("code", "error"), [("AccessDenied", AuthError), ("ValidationError", ProviderError)])
def test_errors_are_translated_with_the_place_named(moto: MotoServer, code: str, error: type) -> None:
    clients = make_clients(moto.url)
    client = clients.client("autoscaling", "us-east-1")
    with Stubber(client) as stub:
        stub.add_client_error("describe_auto_scaling_groups", service_error_code=code, service_message="no")
        with pytest.raises(error) as caught:
            groups.list_groups(clients, "us-east-1", ACCOUNT)
    assert "aws autoscaling.DescribeAutoScalingGroups in us-east-1" in str(caught.value)
    assert caught.value.code == code


def test_unreachable_endpoint_is_a_provider_error() -> None:
    clients = AwsClients(lambda: session("us-east-1"), endpoint_url="http://127.0.0.1:9", max_attempts=1)

    with pytest.raises(ProviderError, match="cannot reach"):
        groups.offered_types(clients, "us-east-1", ["g5.xlarge"])


# ------------------------------------------------------------------- the seeded sandbox, end to end


def test_seeded_groups_are_audited_through_boto3(moto: MotoServer) -> None:
    lazy = SimGroup("embed-lazy", "us-east-1", "g5.xlarge", 1, 22.35 * 1024, 3, 3, 3, OVERPROVISIONED, peak=1,
                    tags={"team": "search"}, expect="autoscale")
    busy = SimGroup("train-busy", "us-east-1", "g5.xlarge", 1, 22.35 * 1024, 2, 2, 2, STEADY, warmup_seconds=600)
    period, lookback = timedelta(hours=1), timedelta(days=7)
    seeded = seed_groups(session(), [lazy, busy], pd.Timestamp(NOW), lookback, endpoint_url=moto.url)
    provider = make_provider(moto.url)
    window = Window.ending(NOW, lookback, align=period)

    found = provider.resources("us-east-1")
    listed = {g.ref.id: g for g in provider.groups("us-east-1")}
    usage = provider.usage("us-east-1", found, window, period).usage
    quotes = provider.prices("us-east-1", ["g5.xlarge"], NOW)
    snap = Snapshot(NOW, window, tuple(found), Usage(usage.frame, period), {price_key(q): q for q in quotes},
                    groups=tuple(listed.values()))
    recs, gaps = recommend(snap, AutoscaleSettings(), IdleSettings())

    assert {name: sorted(g.members) for name, g in listed.items()} == seeded
    assert listed["train-busy"].warmup_seconds == 600
    assert {r.group for r in found} == {"embed-lazy", "train-busy"}
    assert set(usage.frame["resource"].astype(str)) == {r.ref.key for r in found}
    assert gaps == []
    [rec] = recs
    assert (rec.name, rec.kind.value) == ("embed-lazy", "autoscale")
    params = dict(rec.action.params)
    assert (params["min_size"], params["desired_capacity"], params["scheduled_actions"]) == (1, 1, [])
    assert rec.evidence["weeks_observed"] == 1  # a week of data: a flat size, no schedule
    price = next(q.hourly_usd for q in quotes if q.pricing_model.value == "on-demand")
    assert float(rec.monthly_savings_usd) == pytest.approx(2 * 730 * float(price), abs=0.01)


def test_members_leaving_the_group_are_not_members() -> None:
    states = {"i-a": "InService", "i-b": "Pending", "i-c": "Standby", "i-d": "Terminating:Wait", "i-e": "Terminated",
              "i-f": "Detaching", "i-g": "Pending:Wait"}
    item = {"AutoScalingGroupName": "g", "MinSize": 0, "MaxSize": 9, "DesiredCapacity": 4,
            "Instances": [{"InstanceId": i, "InstanceType": "g5.xlarge", "LifecycleState": s} for i, s in states.items()]}

    group = groups._group(item, "us-east-1", ACCOUNT, [])

    assert group.members == ("i-a", "i-b", "i-c", "i-g")
    assert group.ref.account == ACCOUNT and group.warmup_seconds is None


def test_standby_members_stay_members(moto: MotoServer) -> None:
    _asg(moto.url, "inference", size=(0, 4, 2))
    first = _member_ids(moto.url, "inference")[0]
    raw("autoscaling", moto.url).enter_standby(AutoScalingGroupName="inference", InstanceIds=[first],
                                               ShouldDecrementDesiredCapacity=False)

    [group] = groups.list_groups(make_clients(moto.url), "us-east-1", ACCOUNT)

    assert first in group.members

"""EC2 and Auto Scaling mutation primitives through boto3 against moto: each change shows in the next read."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber

from providers.aws import actuator, groups
from providers.aws.client import AwsClients
from providers.aws.permissions import WRITE
from providers.errors import AuthError, NotFound, ProviderError
from providers.sandbox import MotoServer
from tests.aws.support import ACCOUNT, AMI, launch, make_clients, raw

REGION = "us-east-1"
FAST = {"delay": 0, "max_attempts": 3}
MISSING = "i-0123456789abcdef0"


@pytest.fixture
def clients(moto: MotoServer) -> AwsClients:
    return make_clients(moto.url)


def _instance(url: str, instance_id: str) -> dict:
    [reservation] = raw("ec2", url).describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservation["Instances"][0]


def _state(url: str, instance_id: str) -> str:
    return _instance(url, instance_id)["State"]["Name"]


def _asg(url: str, name: str, size: tuple[int, int, int] = (1, 4, 2)) -> None:
    raw("ec2", url).create_launch_template(LaunchTemplateName=f"{name}-lt",
                                           LaunchTemplateData={"ImageId": AMI, "InstanceType": "g5.xlarge"})
    low, high, desired = size
    raw("autoscaling", url).create_auto_scaling_group(
        AutoScalingGroupName=name, MinSize=low, MaxSize=high, DesiredCapacity=desired,
        LaunchTemplate={"LaunchTemplateName": f"{name}-lt", "Version": "$Latest"}, AvailabilityZones=[f"{REGION}a"])


def test_stop_leaves_the_instance_stopped_in_the_next_describe(moto: MotoServer, clients: AwsClients) -> None:
    [iid] = launch(raw("ec2", moto.url), "g5.xlarge")

    outcome = actuator.stop_instance(clients, REGION, iid, **FAST)

    assert _state(moto.url, iid) == "stopped"
    assert outcome == actuator.Outcome("ec2.StopInstances", iid, dry_run=False, would_succeed=True, state="stopped")


def test_stop_waits_by_polling_describe_instances(moto: MotoServer, clients: AwsClients) -> None:
    [iid] = launch(raw("ec2", moto.url), "g5.xlarge")

    actuator.stop_instance(clients, REGION, iid, **FAST)

    assert clients.calls["ec2.StopInstances"] == 1
    assert clients.calls["ec2.DescribeInstances"] >= 1  # the instance_stopped waiter
    assert not any("Terminate" in name for name in clients.calls)


def test_start_runs_a_stopped_instance_again(moto: MotoServer, clients: AwsClients) -> None:
    [iid] = launch(raw("ec2", moto.url), "g5.xlarge")
    raw("ec2", moto.url).stop_instances(InstanceIds=[iid])

    outcome = actuator.start_instance(clients, REGION, iid, **FAST)

    assert _state(moto.url, iid) == "running"
    assert (outcome.operation, outcome.state) == ("ec2.StartInstances", "running")


def test_dry_run_of_stop_would_succeed_and_leaves_it_running(moto: MotoServer, clients: AwsClients) -> None:
    [iid] = launch(raw("ec2", moto.url), "g5.xlarge")

    outcome = actuator.stop_instance(clients, REGION, iid, dry_run=True, **FAST)

    assert outcome.dry_run and outcome.would_succeed and outcome.state is None
    assert _state(moto.url, iid) == "running"
    assert clients.calls["ec2.StopInstances"] == 1 and clients.calls["ec2.DescribeInstances"] == 0  # no waiting


def test_dry_run_without_the_permission_is_an_auth_error(moto: MotoServer, clients: AwsClients) -> None:
    [iid] = launch(raw("ec2", moto.url), "g5.xlarge")
    with Stubber(clients.client("ec2", REGION)) as stub:
        stub.add_client_error("stop_instances", service_error_code="UnauthorizedOperation",
                              service_message="You are not authorized to perform this operation.", http_status_code=403)
        with pytest.raises(AuthError) as caught:
            actuator.stop_instance(clients, REGION, iid, dry_run=True, **FAST)
    assert caught.value.code == "UnauthorizedOperation"
    assert "aws ec2.StopInstances in us-east-1" in str(caught.value)


def test_stop_of_a_missing_instance_is_not_found(clients: AwsClients) -> None:
    with pytest.raises(NotFound) as caught:
        actuator.stop_instance(clients, REGION, MISSING, **FAST)
    assert caught.value.code == "InvalidInstanceID.NotFound"


def _stopping(iid: str) -> dict:
    return {"Reservations": [{"Instances": [{"InstanceId": iid, "State": {"Code": 64, "Name": "stopping"}}]}]}


def test_a_stop_that_never_finishes_names_the_waiter(clients: AwsClients) -> None:
    with Stubber(clients.client("ec2", REGION)) as stub:
        stub.add_response("stop_instances", {"StoppingInstances": []})
        for _ in range(FAST["max_attempts"]):
            stub.add_response("describe_instances", _stopping(MISSING))
        with pytest.raises(ProviderError, match="waiter instance_stopped in us-east-1: i-0123") as caught:
            actuator.stop_instance(clients, REGION, MISSING, **FAST)
    assert caught.value.code == "WaiterFailed"
    assert clients.calls["ec2.DescribeInstances"] == FAST["max_attempts"]


def test_a_poll_refused_while_waiting_is_an_auth_error(clients: AwsClients) -> None:
    with Stubber(clients.client("ec2", REGION)) as stub:
        stub.add_response("stop_instances", {"StoppingInstances": []})
        stub.add_client_error("describe_instances", service_error_code="UnauthorizedOperation",
                              service_message="not authorized", http_status_code=403)
        with pytest.raises(AuthError) as caught:
            actuator.stop_instance(clients, REGION, MISSING, **FAST)
    assert caught.value.code == "UnauthorizedOperation"
    assert "aws ec2.DescribeInstances in us-east-1" in str(caught.value)


def test_modify_type_is_refused_while_running_before_any_change(moto: MotoServer, clients: AwsClients) -> None:
    [iid] = launch(raw("ec2", moto.url), "g5.xlarge")

    with pytest.raises(ProviderError, match="is running; EC2 changes the instance type of stopped") as caught:
        actuator.modify_instance_type(clients, REGION, iid, "g5.2xlarge")

    assert caught.value.code == "IncorrectInstanceState"
    assert clients.calls["ec2.ModifyInstanceAttribute"] == 0
    assert _instance(moto.url, iid)["InstanceType"] == "g5.xlarge"


def test_modify_type_of_a_stopped_instance_changes_it(moto: MotoServer, clients: AwsClients) -> None:
    [iid] = launch(raw("ec2", moto.url), "g5.12xlarge")
    actuator.stop_instance(clients, REGION, iid, **FAST)

    outcome = actuator.modify_instance_type(clients, REGION, iid, "g5.xlarge")

    assert outcome.would_succeed and not outcome.dry_run
    assert _instance(moto.url, iid)["InstanceType"] == "g5.xlarge"


def test_dry_run_of_modify_type_keeps_the_type(moto: MotoServer, clients: AwsClients) -> None:
    [iid] = launch(raw("ec2", moto.url), "g5.12xlarge")
    raw("ec2", moto.url).stop_instances(InstanceIds=[iid])

    outcome = actuator.modify_instance_type(clients, REGION, iid, "g5.xlarge", dry_run=True)

    assert outcome.dry_run and outcome.would_succeed
    assert _instance(moto.url, iid)["InstanceType"] == "g5.12xlarge"


def test_modify_type_of_a_missing_instance_is_not_found(clients: AwsClients) -> None:
    with pytest.raises(NotFound):
        actuator.modify_instance_type(clients, REGION, MISSING, "g5.xlarge")


def test_group_capacity_change_shows_in_describe(moto: MotoServer, clients: AwsClients) -> None:
    _asg(moto.url, "train")

    actuator.set_group_capacity(clients, REGION, "train", min_size=0, desired=0)

    [group] = raw("autoscaling", moto.url).describe_auto_scaling_groups(AutoScalingGroupNames=["train"])["AutoScalingGroups"]
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (0, 4, 0)


def test_group_capacity_without_a_size_makes_no_call(moto: MotoServer, clients: AwsClients) -> None:
    _asg(moto.url, "train")
    with pytest.raises(ProviderError, match="at least one"):
        actuator.set_group_capacity(clients, REGION, "train")
    assert clients.calls["autoscaling.UpdateAutoScalingGroup"] == 0


def test_capacity_of_a_missing_group_is_not_found(clients: AwsClients) -> None:
    with pytest.raises(NotFound, match="group nothing-here not found"):
        actuator.set_group_capacity(clients, REGION, "nothing-here", desired=1)


def test_scheduled_action_is_listed_and_read_back_by_the_audit(moto: MotoServer, clients: AwsClients) -> None:
    _asg(moto.url, "train")

    actuator.put_scheduled_action(clients, REGION, "train", "nightly-off", "0 20 * * 1-5", min_size=0, desired=0,
                                  time_zone="Europe/Berlin")

    [item] = raw("autoscaling", moto.url).describe_scheduled_actions(
        AutoScalingGroupName="train")["ScheduledUpdateGroupActions"]
    assert (item["ScheduledActionName"], item["Recurrence"], item["TimeZone"]) == ("nightly-off", "0 20 * * 1-5",
                                                                                  "Europe/Berlin")
    assert (item["MinSize"], item["DesiredCapacity"]) == (0, 0)
    [group] = groups.list_groups(make_clients(moto.url), REGION, ACCOUNT)
    assert [(s.name, s.recurrence, s.desired) for s in group.scheduled] == [("nightly-off", "0 20 * * 1-5", 0)]


def test_scheduled_action_with_a_bad_recurrence_is_refused(moto: MotoServer, clients: AwsClients) -> None:
    _asg(moto.url, "train")
    with pytest.raises(ProviderError, match="not five cron fields"):
        actuator.put_scheduled_action(clients, REGION, "train", "bad", "every night", desired=0)
    assert clients.calls["autoscaling.PutScheduledUpdateGroupAction"] == 0


def test_tags_are_added_and_others_kept(moto: MotoServer, clients: AwsClients) -> None:
    [iid] = launch(raw("ec2", moto.url), "g5.xlarge", tags={"team": "llm"})

    actuator.set_tags(clients, REGION, iid, {"costagent:action": "stopped-idle"})

    tags = {t["Key"]: t["Value"] for t in _instance(moto.url, iid)["Tags"]}
    assert tags == {"team": "llm", "costagent:action": "stopped-idle"}


def test_every_call_the_actuator_makes_is_a_declared_write(moto: MotoServer, clients: AwsClients) -> None:
    [iid] = launch(raw("ec2", moto.url), "g5.12xlarge")
    _asg(moto.url, "train")

    actuator.stop_instance(clients, REGION, iid, dry_run=True, **FAST)
    actuator.stop_instance(clients, REGION, iid, **FAST)
    actuator.modify_instance_type(clients, REGION, iid, "g5.xlarge")
    actuator.start_instance(clients, REGION, iid, **FAST)
    actuator.set_tags(clients, REGION, iid, {"k": "v"})
    actuator.set_group_capacity(clients, REGION, "train", desired=1)
    actuator.put_scheduled_action(clients, REGION, "train", "a", "0 8 * * *", desired=2)

    # the reads before a change (a group's sizes, its scheduled actions) are AwsActuator's: tests/aws/test_aws_actuator_class.py
    assert set(clients.calls) == set(WRITE) - {"autoscaling.DescribeAutoScalingGroups",
                                               "autoscaling.DescribeScheduledActions"}

"""A group's ``scale`` through the apply engine on moto: the autoscale plan's sizes and scheduled actions are
set, a group changed since the plan is refused, and an undo restores the sizes."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from agent.apply import Applier, CloudSide
from agent.apply_config import ApplySettings
from agent.clock import FixedClock
from agent.guards import Candidate, Mode, Policy
from agent.journal import Journal
from agent.plan import Plan, PlannedAction
from providers.aws import AwsProvider
from providers.aws.actuator import AwsActuator
from providers.model import Cloud, ResourceRef
from tests.aws.support import ACCOUNT, AMI, NOW, make_clients, raw

REGION, GROUP = "us-east-1", "inference"
NIGHT = {"name": "costagent-mon-fri-2000-to-1", "recurrence": "0 20 * * 1-5", "min_size": 1, "max_size": 4,
         "desired_capacity": 1, "time_zone": "UTC"}
PARAMS = {"min_size": 1, "max_size": 4, "desired_capacity": 2, "scheduled_actions": [NIGHT]}


@pytest.fixture
def applier(moto, tmp_path: Path):
    raw("ec2", moto.url).create_launch_template(LaunchTemplateName="gpu-lt", LaunchTemplateData={
        "ImageId": AMI, "InstanceType": "g5.xlarge"})
    raw("autoscaling", moto.url).create_auto_scaling_group(
        AutoScalingGroupName=GROUP, MinSize=3, MaxSize=4, DesiredCapacity=3,
        LaunchTemplate={"LaunchTemplateName": "gpu-lt", "Version": "$Latest"}, AvailabilityZones=[f"{REGION}a"])
    clients = make_clients(moto.url)
    side = CloudSide(AwsProvider(clients, live_prices=False), AwsActuator(clients, delay=0, max_attempts=3))
    with Journal(f"sqlite:///{tmp_path / 's.db'}", FixedClock(NOW)) as journal:
        yield Applier(journal, {Cloud.AWS: side}, ApplySettings(Policy(mode=Mode.APPLY)), FixedClock(NOW),
                      actor="ops@ci", period=timedelta(minutes=5))


def sizes(url: str) -> tuple[int, int, int]:
    [g] = raw("autoscaling", url).describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"]
    return g["MinSize"], g["MaxSize"], g["DesiredCapacity"]


def a_plan(observed: dict) -> Plan:
    c = Candidate("scale", ResourceRef(Cloud.AWS, ACCOUNT, REGION, GROUP), {}, "autoscale", "rec-group", PARAMS,
                  Decimal(900))
    action = PlannedAction(c, "Autoscale", "g5.xlarge", GROUP, would_act=True, observed=observed)
    return Plan("plan-1", NOW, "ops@ci", ("aws",), {"aws": (REGION,)}, 300, "apply", (action,))


def test_scale_sets_the_sizes_and_the_scheduled_actions_and_undo_restores_the_sizes(moto, applier):
    [step] = applier.run(a_plan({"min_size": 3, "max_size": 4, "desired_capacity": 3})).steps

    assert step.status == "done", step.detail
    assert sizes(moto.url) == (1, 4, 2)
    [put] = raw("autoscaling", moto.url).describe_scheduled_actions(AutoScalingGroupName=GROUP)[
        "ScheduledUpdateGroupActions"]
    assert (put["ScheduledActionName"], put["Recurrence"]) == (NIGHT["name"], NIGHT["recurrence"])

    applier.undo(applier.journal.get(step.action_id))

    assert sizes(moto.url) == (3, 4, 3)
    assert applier.journal.get(step.action_id).status == "undone"


def test_a_group_resized_since_the_plan_is_refused(moto, applier):
    [step] = applier.run(a_plan({"min_size": 2, "max_size": 4, "desired_capacity": 2})).steps
    assert step.status == "refused"
    assert "the group changed since the plan: min_size 2 -> 3, desired_capacity 2 -> 3" in step.detail
    assert sizes(moto.url) == (3, 4, 3)

"""``AwsActuator`` (the ``providers.base.Actuator`` of AWS) through boto3 against moto: read, preview (EC2 DryRun),
execute with its before/after, undo of each kind, effect_seen, refusals; never a Terminate or Delete call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber

from providers.aws.actuator import AwsActuator
from providers.aws.client import AwsClients
from providers.aws.permissions import ACTUATOR_CALLS
from providers.base import ACTION_KINDS
from providers.errors import NotFound, ProviderError
from providers.model import Action, Cloud, ResourceRef
from providers.sandbox import MotoServer
from tests.aws.support import ACCOUNT, AMI, launch, make_clients, raw

REGION = "us-east-1"
GROUP = "train"
NIGHT = {"name": "costagent-mon-fri-2000-to-0", "recurrence": "0 20 * * 1-5", "min_size": 0, "max_size": 4,
         "desired_capacity": 0, "time_zone": "UTC"}
MORNING = {"name": "costagent-mon-fri-0800-to-3", "recurrence": "0 8 * * 1-5", "min_size": 3, "max_size": 4,
           "desired_capacity": 3, "time_zone": "UTC"}


@pytest.fixture
def clients(moto: MotoServer) -> Iterator[AwsClients]:
    made = make_clients(moto.url)
    yield made
    assert not [c for c in made.calls if "Terminate" in c or "Delete" in c], dict(made.calls)


@pytest.fixture
def act(clients: AwsClients) -> AwsActuator:
    return AwsActuator(clients, delay=0, max_attempts=3)


def _action(kind: str, target: str, **params: Any) -> Action:
    return Action(kind, ResourceRef(Cloud.AWS, ACCOUNT, REGION, target), params)


def _instance(url: str, instance_id: str) -> dict[str, Any]:
    return raw("ec2", url).describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def _stopped(url: str, instance_type: str = "g5.12xlarge") -> str:
    [iid] = launch(raw("ec2", url), instance_type)
    raw("ec2", url).stop_instances(InstanceIds=[iid])
    return iid


def _asg(url: str, size: tuple[int, int, int] = (1, 4, 2)) -> None:
    raw("ec2", url).create_launch_template(LaunchTemplateName=f"{GROUP}-lt",
                                           LaunchTemplateData={"ImageId": AMI, "InstanceType": "g5.xlarge"})
    low, high, desired = size
    raw("autoscaling", url).create_auto_scaling_group(
        AutoScalingGroupName=GROUP, MinSize=low, MaxSize=high, DesiredCapacity=desired,
        LaunchTemplate={"LaunchTemplateName": f"{GROUP}-lt", "Version": "$Latest"}, AvailabilityZones=[f"{REGION}a"])


def _scheduled(url: str) -> dict[str, dict[str, Any]]:
    items = raw("autoscaling", url).describe_scheduled_actions(AutoScalingGroupName=GROUP)["ScheduledUpdateGroupActions"]
    return {i["ScheduledActionName"]: i for i in items}


def _sizes(url: str) -> tuple[int, int, int]:
    [g] = raw("autoscaling", url).describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"]
    return g["MinSize"], g["MaxSize"], g["DesiredCapacity"]


def _scale(*scheduled: dict[str, Any], **sizes: int) -> Action:
    return _action("scale", GROUP, **(sizes or {"min_size": 0, "max_size": 4, "desired_capacity": 0}),
                   scheduled_actions=list(scheduled))


# --- kinds and permissions ------------------------------------------------------------------------------------


def test_supported_kinds_are_those_of_the_permission_map(act: AwsActuator) -> None:
    kinds = act.kinds()
    assert set(kinds) == set(ACTION_KINDS)
    assert {k for k, reason in kinds.items() if reason is None} == {"stop", "start", "resize", "scale", "tag"}
    assert set(ACTUATOR_CALLS) == {"stop", "start", "resize", "scale", "tag"}


def test_schedule_is_refused_naming_the_aws_schedulers(act: AwsActuator) -> None:
    reason = act.kinds()["schedule"]
    assert reason and "AWS Instance Scheduler" in reason and "EventBridge" in reason
    assert act.permissions("schedule") == ()


@pytest.mark.parametrize("kind", ["schedule", "deallocate", "power_off", "spot", "commitment", "consolidate"])
def test_unsupported_kinds_raise_with_the_reason_before_any_call(act: AwsActuator, clients: AwsClients,
                                                                 kind: str) -> None:
    action = _action(kind, "i-0123456789abcdef0")
    for call in (act.read, act.preview, act.execute, lambda a: act.undo(a, {}), lambda a: act.effect_seen(a, {})):
        with pytest.raises(ProviderError) as caught:
            call(action)
        assert caught.value.code == "UnsupportedAction" and str(act.kinds()[kind]) in str(caught.value)
    assert not clients.calls


def test_an_unknown_kind_is_refused(act: AwsActuator) -> None:
    with pytest.raises(ProviderError, match="unknown action kind 'terminate'"):
        act.execute(_action("terminate", "i-0123456789abcdef0"))


def test_scale_needs_the_scheduled_action_permissions_and_nothing_deletes(act: AwsActuator) -> None:
    assert {"autoscaling:PutScheduledUpdateGroupAction", "autoscaling:DescribeScheduledActions",
            "autoscaling:UpdateAutoScalingGroup"} <= set(act.permissions("scale"))
    every = {p for kind, reason in act.kinds().items() if reason is None for p in act.permissions(kind)}
    assert every and not [p for p in every if "Terminate" in p or "Delete" in p]


# --- read -----------------------------------------------------------------------------------------------------


def test_read_of_an_instance_is_its_state_and_type(moto: MotoServer, act: AwsActuator) -> None:
    [iid] = launch(raw("ec2", moto.url), "g5.xlarge")
    assert act.read(_action("stop", iid)) == {"state": "running", "type": "g5.xlarge"}


def test_read_of_a_missing_instance_is_not_found(act: AwsActuator) -> None:
    with pytest.raises(NotFound):
        act.read(_action("stop", "i-0123456789abcdef0"))


def test_read_of_a_group_gives_its_sizes_and_only_the_named_scheduled_actions(moto: MotoServer,
                                                                             act: AwsActuator) -> None:
    _asg(moto.url)
    asg = raw("autoscaling", moto.url)
    asg.put_scheduled_update_group_action(AutoScalingGroupName=GROUP, ScheduledActionName=NIGHT["name"],
                                          Recurrence="0 21 * * *", DesiredCapacity=1, TimeZone="Europe/Berlin")
    asg.put_scheduled_update_group_action(AutoScalingGroupName=GROUP, ScheduledActionName="theirs",
                                          Recurrence="0 6 * * *", DesiredCapacity=2)

    state = act.read(_scale(NIGHT, MORNING))

    assert state == {"min_size": 1, "max_size": 4, "desired_capacity": 2, "scheduled_actions": [
        {"name": NIGHT["name"], "recurrence": "0 21 * * *", "min_size": None, "max_size": None,
         "desired_capacity": 1, "time_zone": "Europe/Berlin"}]}


def test_read_of_a_scale_without_scheduled_actions_does_not_list_them(moto: MotoServer, act: AwsActuator,
                                                                      clients: AwsClients) -> None:
    _asg(moto.url)
    assert act.read(_scale())["scheduled_actions"] == []
    assert clients.calls["autoscaling.DescribeScheduledActions"] == 0


# --- stop and start -------------------------------------------------------------------------------------------


def test_preview_of_a_stop_is_an_ec2_dry_run(moto: MotoServer, act: AwsActuator, clients: AwsClients) -> None:
    [iid] = launch(raw("ec2", moto.url), "g5.xlarge")

    preview = act.preview(_action("stop", iid))

    assert (preview.would_succeed, preview.native) == (True, True)
    assert preview.state == {"state": "running", "type": "g5.xlarge"} and "DryRun" in preview.detail
    assert clients.calls["ec2.StopInstances"] == 1
    assert _instance(moto.url, iid)["State"]["Name"] == "running"


def test_preview_of_a_stop_of_a_stopped_instance_says_no_without_a_dry_run(moto: MotoServer, act: AwsActuator,
                                                                          clients: AwsClients) -> None:
    iid = _stopped(moto.url)

    preview = act.preview(_action("stop", iid))

    assert (preview.would_succeed, preview.native) == (False, False)
    assert preview.detail == "the instance is stopped, not running"
    assert clients.calls["ec2.StopInstances"] == 0


def test_preview_reports_a_missing_permission(act: AwsActuator, clients: AwsClients) -> None:
    iid = "i-0123456789abcdef0"
    with Stubber(clients.client("ec2", REGION)) as stub:
        stub.add_response("describe_instances", {"Reservations": [{"Instances": [
            {"InstanceId": iid, "InstanceType": "g5.xlarge", "State": {"Code": 80, "Name": "stopped"}}]}]})
        stub.add_client_error("start_instances", service_error_code="UnauthorizedOperation",
                              service_message="You are not authorized to perform this operation.", http_status_code=403)
        preview = act.preview(_action("start", iid))
    assert (preview.would_succeed, preview.native) == (False, True)
    assert "ec2.StartInstances" in preview.detail and "UnauthorizedOperation" in preview.detail


def test_stop_execute_reads_before_and_after(moto: MotoServer, act: AwsActuator) -> None:
    [iid] = launch(raw("ec2", moto.url), "g5.xlarge")

    outcome = act.execute(_action("stop", iid))

    assert outcome.before == {"state": "running", "type": "g5.xlarge"}
    assert outcome.after == {"state": "stopped", "type": "g5.xlarge"}
    assert _instance(moto.url, iid)["State"]["Name"] == "stopped"


def test_undo_of_a_stop_starts_the_instance(moto: MotoServer, act: AwsActuator) -> None:
    [iid] = launch(raw("ec2", moto.url), "g5.xlarge")
    action = _action("stop", iid)
    done = act.execute(action)

    undone = act.undo(action, done.before)

    assert undone.before["state"] == "stopped" and undone.after["state"] == "running"
    assert _instance(moto.url, iid)["State"]["Name"] == "running"


def test_undo_of_a_stop_already_undone_makes_no_call(moto: MotoServer, act: AwsActuator, clients: AwsClients) -> None:
    [iid] = launch(raw("ec2", moto.url), "g5.xlarge")

    act.undo(_action("stop", iid), {"state": "running", "type": "g5.xlarge"})

    assert clients.calls["ec2.StartInstances"] == 0 and clients.calls["ec2.StopInstances"] == 0


def test_undo_of_a_stop_from_an_unknown_state_is_refused(moto: MotoServer, act: AwsActuator) -> None:
    [iid] = launch(raw("ec2", moto.url), "g5.xlarge")
    with pytest.raises(ProviderError, match="it was pending") as caught:
        act.undo(_action("stop", iid), {"state": "pending", "type": "g5.xlarge"})
    assert caught.value.code == "UndoUnsupported"


def test_start_then_undo_stops_it_again(moto: MotoServer, act: AwsActuator) -> None:
    iid = _stopped(moto.url)
    action = _action("start", iid)

    done = act.execute(action)
    assert (done.before["state"], done.after["state"]) == ("stopped", "running")
    undone = act.undo(action, done.before)

    assert undone.after["state"] == "stopped"
    assert _instance(moto.url, iid)["State"]["Name"] == "stopped"


# --- resize ---------------------------------------------------------------------------------------------------


def test_preview_of_a_resize_of_a_stopped_instance_is_a_dry_run(moto: MotoServer, act: AwsActuator,
                                                               clients: AwsClients) -> None:
    iid = _stopped(moto.url)

    preview = act.preview(_action("resize", iid, from_type="g5.12xlarge", to_type="g5.xlarge"))

    assert (preview.would_succeed, preview.native) == (True, True)
    assert clients.calls["ec2.ModifyInstanceAttribute"] == 1
    assert _instance(moto.url, iid)["InstanceType"] == "g5.12xlarge"


def test_preview_of_a_resize_while_running_says_stop_it_first(moto: MotoServer, act: AwsActuator,
                                                             clients: AwsClients) -> None:
    [iid] = launch(raw("ec2", moto.url), "g5.12xlarge")  # moto would resize it: the actuator checks the state itself

    preview = act.preview(_action("resize", iid, from_type="g5.12xlarge", to_type="g5.xlarge"))

    assert (preview.would_succeed, preview.native) == (False, False)
    assert "running" in preview.detail and "stop it first" in preview.detail
    assert clients.calls["ec2.ModifyInstanceAttribute"] == 0


def test_preview_reports_ec2_refusing_the_state(act: AwsActuator, clients: AwsClients) -> None:
    """What real EC2 answers when the instance changed state between the read and the dry run."""
    iid = "i-0123456789abcdef0"
    with Stubber(clients.client("ec2", REGION)) as stub:
        stub.add_response("describe_instances", {"Reservations": [{"Instances": [
            {"InstanceId": iid, "InstanceType": "g5.12xlarge", "State": {"Code": 80, "Name": "stopped"}}]}]})
        stub.add_client_error("modify_instance_attribute", service_error_code="IncorrectInstanceState",
                              service_message=f"The instance '{iid}' is not in the 'stopped' state.")
        preview = act.preview(_action("resize", iid, from_type="g5.12xlarge", to_type="g5.xlarge"))
    assert (preview.would_succeed, preview.native) == (False, True)
    assert "IncorrectInstanceState" in preview.detail


def test_preview_of_a_stale_resize_names_the_type_seen(moto: MotoServer, act: AwsActuator) -> None:
    iid = _stopped(moto.url, "g5.2xlarge")
    preview = act.preview(_action("resize", iid, from_type="g5.12xlarge", to_type="g5.xlarge"))
    assert not preview.would_succeed and "is g5.2xlarge, not g5.12xlarge" in preview.detail


def test_resize_of_a_running_instance_is_refused_before_any_change(moto: MotoServer, act: AwsActuator,
                                                                  clients: AwsClients) -> None:
    [iid] = launch(raw("ec2", moto.url), "g5.12xlarge")

    with pytest.raises(ProviderError, match="stop it first") as caught:
        act.execute(_action("resize", iid, from_type="g5.12xlarge", to_type="g5.xlarge"))

    assert caught.value.code == "IncorrectInstanceState"
    assert clients.calls["ec2.ModifyInstanceAttribute"] == 0
    assert _instance(moto.url, iid)["InstanceType"] == "g5.12xlarge"


def test_resize_of_a_stopped_instance_and_its_undo(moto: MotoServer, act: AwsActuator) -> None:
    iid = _stopped(moto.url)
    action = _action("resize", iid, from_type="g5.12xlarge", to_type="g5.xlarge")

    done = act.execute(action)
    assert (done.before["type"], done.after["type"]) == ("g5.12xlarge", "g5.xlarge")
    undone = act.undo(action, done.before)

    assert undone.after == {"state": "stopped", "type": "g5.12xlarge"}
    assert _instance(moto.url, iid)["InstanceType"] == "g5.12xlarge"


def test_undo_of_a_resize_of_a_running_instance_is_refused(moto: MotoServer, act: AwsActuator,
                                                          clients: AwsClients) -> None:
    iid = _stopped(moto.url)
    action = _action("resize", iid, to_type="g5.xlarge")
    done = act.execute(action)
    raw("ec2", moto.url).start_instances(InstanceIds=[iid])

    with pytest.raises(ProviderError, match="it is running") as caught:
        act.undo(action, done.before)

    assert caught.value.code == "IncorrectInstanceState" and caught.value.hint == "stop it, then undo again"
    assert clients.calls["ec2.ModifyInstanceAttribute"] == 1  # the resize only
    assert _instance(moto.url, iid)["InstanceType"] == "g5.xlarge"


# --- scale ----------------------------------------------------------------------------------------------------


def test_preview_of_a_scale_reads_and_changes_nothing(moto: MotoServer, act: AwsActuator, clients: AwsClients) -> None:
    _asg(moto.url)

    preview = act.preview(_scale(NIGHT))

    assert (preview.would_succeed, preview.native) == (True, False)
    assert "min 1, max 4, desired 2 -> min 0, max 4, desired 0" in preview.detail
    assert f"{NIGHT['name']} (new)" in preview.detail
    assert clients.calls["autoscaling.UpdateAutoScalingGroup"] == 0
    assert clients.calls["autoscaling.PutScheduledUpdateGroupAction"] == 0


def test_preview_of_impossible_sizes_says_no(moto: MotoServer, act: AwsActuator) -> None:
    _asg(moto.url)
    preview = act.preview(_action("scale", GROUP, min_size=3, desired_capacity=1))
    assert not preview.would_succeed and "min <= desired <= max" in preview.detail


def test_scale_without_scheduled_actions_and_its_undo(moto: MotoServer, act: AwsActuator, clients: AwsClients) -> None:
    _asg(moto.url)
    action = _scale(min_size=0, max_size=4, desired_capacity=0)

    done = act.execute(action)
    assert done.before == {"min_size": 1, "max_size": 4, "desired_capacity": 2, "scheduled_actions": []}
    assert (done.after["min_size"], done.after["desired_capacity"]) == (0, 0)
    undone = act.undo(action, done.before)

    assert _sizes(moto.url) == (1, 4, 2) and undone.after == done.before
    assert undone.note == ""
    assert clients.calls["autoscaling.PutScheduledUpdateGroupAction"] == 0


def test_scale_puts_its_scheduled_actions(moto: MotoServer, act: AwsActuator) -> None:
    _asg(moto.url)

    done = act.execute(_scale(NIGHT, MORNING))

    seen = _scheduled(moto.url)
    assert (seen[NIGHT["name"]]["Recurrence"], seen[NIGHT["name"]]["DesiredCapacity"]) == ("0 20 * * 1-5", 0)
    assert (seen[MORNING["name"]]["MinSize"], seen[MORNING["name"]]["DesiredCapacity"]) == (3, 3)
    assert done.before["scheduled_actions"] == []
    assert [s["name"] for s in done.after["scheduled_actions"]] == sorted([NIGHT["name"], MORNING["name"]])
    assert _sizes(moto.url) == (0, 4, 0)


def test_undo_of_a_scale_neutralises_new_actions_and_restores_old_ones(moto: MotoServer, act: AwsActuator,
                                                                      clients: AwsClients) -> None:
    _asg(moto.url)
    raw("autoscaling", moto.url).put_scheduled_update_group_action(
        AutoScalingGroupName=GROUP, ScheduledActionName=MORNING["name"], Recurrence="30 7 * * *", MinSize=2,
        MaxSize=4, DesiredCapacity=2, TimeZone="Europe/Berlin")
    action = _scale(NIGHT, MORNING)
    done = act.execute(action)

    undone = act.undo(action, done.before)

    seen = _scheduled(moto.url)
    night, morning = seen[NIGHT["name"]], seen[MORNING["name"]]
    assert (night["Recurrence"], night["MinSize"], night["MaxSize"], night["DesiredCapacity"]) == ("0 20 * * 1-5", 1, 4, 2)
    assert (morning["Recurrence"], morning["TimeZone"], morning["DesiredCapacity"]) == ("30 7 * * *", "Europe/Berlin", 2)
    assert _sizes(moto.url) == (1, 4, 2)
    assert f"restored to their old definitions: {MORNING['name']}" in undone.note
    assert f"not deleted, and still fire on their schedule: {NIGHT['name']}" in undone.note
    assert "min 1, max 4, desired 2" in undone.note
    assert clients.calls["autoscaling.PutScheduledUpdateGroupAction"] == 4  # two puts, two overwrites


def test_undo_of_a_scale_names_sizes_an_overwrite_cannot_unset(moto: MotoServer, act: AwsActuator) -> None:
    _asg(moto.url)
    raw("autoscaling", moto.url).put_scheduled_update_group_action(
        AutoScalingGroupName=GROUP, ScheduledActionName=NIGHT["name"], Recurrence="0 22 * * *", DesiredCapacity=1)
    action = _scale(NIGHT)

    undone = act.undo(action, act.execute(action).before)

    assert f"{NIGHT['name']} min_size" in undone.note and f"{NIGHT['name']} max_size" in undone.note


def test_undo_of_a_part_done_scale_creates_no_scheduled_action(moto: MotoServer, act: AwsActuator) -> None:
    """The execute stopped after the sizes (a crash): the action it never put is not created by the undo."""
    _asg(moto.url)
    action = _scale(NIGHT)
    before = act.read(action)
    raw("autoscaling", moto.url).update_auto_scaling_group(AutoScalingGroupName=GROUP, MinSize=0, DesiredCapacity=0)
    assert act.effect_seen(action, act.read(action))

    undone = act.undo(action, before)

    assert _scheduled(moto.url) == {} and _sizes(moto.url) == (1, 4, 2)
    assert undone.note == ""


def test_undo_of_a_scale_without_the_sizes_before_is_refused(moto: MotoServer, act: AwsActuator,
                                                             clients: AwsClients) -> None:
    _asg(moto.url)
    with pytest.raises(ProviderError, match="has no desired_capacity") as caught:
        act.undo(_scale(), {"min_size": 1, "max_size": 4, "desired": 2})
    assert caught.value.code == "UndoUnsupported"
    assert clients.calls["autoscaling.UpdateAutoScalingGroup"] == 0


def test_scale_with_a_bad_recurrence_changes_nothing(moto: MotoServer, act: AwsActuator, clients: AwsClients) -> None:
    _asg(moto.url)
    with pytest.raises(ProviderError, match="not five cron fields") as caught:
        act.execute(_scale(NIGHT, {**MORNING, "recurrence": "every morning"}))
    assert caught.value.code == "InvalidParameter"
    assert clients.calls["autoscaling.UpdateAutoScalingGroup"] == 0 and _sizes(moto.url) == (1, 4, 2)


def test_scale_of_a_missing_group_is_not_found(act: AwsActuator) -> None:
    with pytest.raises(NotFound, match="group train not found"):
        act.execute(_scale())


# --- tag ------------------------------------------------------------------------------------------------------


def test_preview_of_a_tag_is_a_dry_run(moto: MotoServer, act: AwsActuator, clients: AwsClients) -> None:
    [iid] = launch(raw("ec2", moto.url), "g5.xlarge", tags={"team": "llm"})

    preview = act.preview(_action("tag", iid, tags={"costagent:action": "stopped-idle"}))

    assert (preview.would_succeed, preview.native) == (True, True)
    assert clients.calls["ec2.CreateTags"] == 1
    assert {t["Key"] for t in _instance(moto.url, iid)["Tags"]} == {"team"}


def test_tag_and_its_undo_restore_changed_values_and_keep_new_keys(moto: MotoServer, act: AwsActuator) -> None:
    [iid] = launch(raw("ec2", moto.url), "g5.xlarge", tags={"team": "llm", "owner": "ana"})
    action = _action("tag", iid, tags={"owner": "costagent", "costagent:action": "stopped-idle"})

    done = act.execute(action)
    assert done.before == {"tags": {"team": "llm", "owner": "ana"}}
    assert done.after["tags"]["owner"] == "costagent"
    undone = act.undo(action, done.before)

    tags = {t["Key"]: t["Value"] for t in _instance(moto.url, iid)["Tags"]}
    assert tags == {"team": "llm", "owner": "ana", "costagent:action": "stopped-idle"}
    assert "costagent:action" in undone.note and "DeleteTags" in undone.note


# --- effect_seen ----------------------------------------------------------------------------------------------


EFFECTS = [
    ("stop", {}, {"state": "stopping"}, True),
    ("stop", {}, {"state": "stopped"}, True),
    ("stop", {}, {"state": "running"}, False),
    ("start", {}, {"state": "pending"}, True),
    ("start", {}, {"state": "running"}, True),
    ("start", {}, {"state": "stopped"}, False),
    ("resize", {"from_type": "g5.12xlarge", "to_type": "g5.xlarge"}, {"state": "stopped", "type": "g5.xlarge"}, True),
    ("resize", {"from_type": "g5.12xlarge", "to_type": "g5.xlarge"}, {"state": "stopped", "type": "g5.12xlarge"}, False),
    ("scale", {"min_size": 0, "max_size": 4, "desired_capacity": 0},
     {"min_size": 0, "max_size": 4, "desired_capacity": 0, "scheduled_actions": []}, True),
    ("scale", {"min_size": 0, "max_size": 4, "desired_capacity": 0},
     {"min_size": 1, "max_size": 4, "desired_capacity": 2, "scheduled_actions": []}, False),
    ("scale", {"min_size": 0, "max_size": 4, "desired_capacity": 0, "scheduled_actions": [NIGHT]},
     {"min_size": 1, "max_size": 4, "desired_capacity": 2, "scheduled_actions": [NIGHT]}, True),  # part done
    ("scale", {"min_size": 0, "max_size": 4, "desired_capacity": 0, "scheduled_actions": [NIGHT]},
     {"min_size": 1, "max_size": 4, "desired_capacity": 2,
      "scheduled_actions": [{**NIGHT, "recurrence": "0 21 * * *"}]}, False),
    ("tag", {"tags": {"a": "1"}}, {"tags": {"a": "1", "b": "2"}}, True),
    ("tag", {"tags": {"a": "1"}}, {"tags": {"a": "0"}}, False),
]


@pytest.mark.parametrize(("kind", "params", "state", "seen"), EFFECTS)
def test_effect_seen(kind: str, params: dict[str, Any], state: dict[str, Any], seen: bool) -> None:
    offline = AwsActuator(make_clients("http://127.0.0.1:9"))
    assert offline.effect_seen(_action(kind, "x", **params), state) is seen
    assert not offline.clients.calls


def test_effect_seen_after_each_execute(moto: MotoServer, act: AwsActuator) -> None:
    [iid] = launch(raw("ec2", moto.url), "g5.xlarge")
    _asg(moto.url)
    for action in (_action("stop", iid), _action("resize", iid, to_type="g5.2xlarge"), _action("start", iid),
                   _action("tag", iid, tags={"k": "v"}), _scale(NIGHT)):
        assert not act.effect_seen(action, act.read(action))
        assert act.effect_seen(action, act.execute(action).after), action.kind


# --- the calls ------------------------------------------------------------------------------------------------


def test_each_kind_makes_only_the_calls_its_permissions_cover(moto: MotoServer, clients: AwsClients) -> None:
    [iid] = launch(raw("ec2", moto.url), "g5.12xlarge")
    _asg(moto.url)
    for action in (_action("stop", iid), _action("resize", _stopped(moto.url), to_type="g5.xlarge"),
                   _action("start", _stopped(moto.url)), _action("tag", iid, tags={"k": "v"}), _scale(NIGHT, MORNING)):
        fresh = make_clients(moto.url)
        act = AwsActuator(fresh, delay=0, max_attempts=3)
        act.preview(action)
        act.undo(action, act.execute(action).before)
        assert set(fresh.calls) <= set(ACTUATOR_CALLS[action.kind]), (action.kind, dict(fresh.calls))
        assert not [c for c in fresh.calls if "Terminate" in c or "Delete" in c]

"""EC2 and Auto Scaling mutation primitives for the guarded apply: stop, start, change instance type,
set a group's capacity or schedule, tag. Nothing here terminates or deletes anything.

Everything goes through ``AwsClients``: its event hook counts each request (waiter polls included, as
``ec2.DescribeInstances``) and SDK errors arrive as ``providers.errors`` through ``translated``.
The guards (what may be changed, and when) belong to the caller.

Real API behaviour followed:

- ``StopInstances`` / ``StartInstances`` return at once with the instance ``stopping`` / ``pending``;
  the ``instance_stopped`` / ``instance_running`` waiters poll ``DescribeInstances`` (15 s apart, 40
  tries by default) until the state is reached.
- ``DryRun=True`` makes EC2 check the request and the caller's permission without doing it: the answer
  is always an error, ``DryRunOperation`` when it would have succeeded, ``UnauthorizedOperation`` when
  the caller lacks the permission (raised here as ``AuthError``).
- ``ModifyInstanceAttribute`` changes ``InstanceType`` of stopped instances only (EC2 answers
  ``IncorrectInstanceState`` otherwise): ``modify_instance_type`` reads the state first and refuses
  with ``ProviderError`` rather than stopping the instance on the caller's behalf.
- Auto Scaling answers an unknown group with ``ValidationError`` ("... not found"), raised here as
  ``NotFound``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from providers.aws.client import AwsClients, translated
from providers.errors import NotFound, ProviderError

log = logging.getLogger(__name__)

#: botocore's EC2 waiter defaults (seconds between polls, polls before giving up).
WAIT_DELAY = 15.0
WAIT_ATTEMPTS = 40


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an instance change did, or (``dry_run``) would do.

    ``would_succeed`` is True once a real change finished, or when EC2 answered a dry run with
    ``DryRunOperation``. ``state`` is the instance state afterwards (None for a dry run).
    """

    operation: str  # the counted name, e.g. "ec2.StopInstances"
    instance_id: str
    dry_run: bool
    would_succeed: bool
    state: str | None = None


def _where(operation: str, region: str, target: str) -> str:
    return f"aws {operation} in {region}: {target}"


def _send(clients: AwsClients, region: str, operation: str, target: str, dry_run: bool, **params: Any) -> Outcome | None:
    """Send one EC2 call; for a dry run return its outcome (``DryRunOperation`` is the success answer)."""
    ec2 = clients.client("ec2", region)
    method = getattr(ec2, re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower())  # StopInstances -> stop_instances
    if not dry_run:
        with translated("ec2", operation, region):
            method(**params)
        return None
    try:
        with translated("ec2", operation, region):
            method(DryRun=True, **params)
    except ProviderError as exc:
        if exc.code == "DryRunOperation":
            log.info("event=aws_dry_run operation=ec2.%s target=%s region=%s result=would_succeed",
                     operation, target, region)
            return Outcome(f"ec2.{operation}", target, True, True)
        raise
    # An endpoint that ignored DryRun has just made the change: say so loudly rather than report a preview.
    raise ProviderError(f"{_where('ec2.' + operation, region, target)} was applied: the endpoint ignored DryRun",
                        code="DryRunIgnored", hint="check AWS_ENDPOINT_URL; this endpoint is not EC2")


def _wait(clients: AwsClients, region: str, waiter: str, instance_id: str, delay: float, max_attempts: int) -> None:
    """Poll ``DescribeInstances`` with botocore's waiter; a failing poll is translated like the call itself."""
    ec2 = clients.client("ec2", region)
    try:
        with translated("ec2", "DescribeInstances", region):
            ec2.get_waiter(waiter).wait(InstanceIds=[instance_id],
                                        WaiterConfig={"Delay": delay, "MaxAttempts": max_attempts})
    except ProviderError as exc:
        cause = exc.__cause__
        if not hasattr(cause, "last_response"):  # not botocore's WaiterError (which translated() made a ProviderError)
            raise
        response = getattr(cause, "last_response", None) or {}
        if (response.get("Error") or {}).get("Code"):  # a poll itself failed (auth, not found, throttled)
            with translated("ec2", "DescribeInstances", region):
                raise ec2.exceptions.ClientError(response, "DescribeInstances") from exc
        raise ProviderError(f"aws ec2 waiter {waiter} in {region}: {instance_id}: "
                            f"{getattr(cause, 'kwargs', {}).get('reason', cause)}",
                            code="WaiterFailed",
                            hint="the instance may still get there; check it with DescribeInstances") from exc


def instance_state(clients: AwsClients, region: str, instance_id: str) -> tuple[str, str]:
    """The instance's (state name, instance type) from ``DescribeInstances``; ``NotFound`` when unknown."""
    with translated("ec2", "DescribeInstances", region):
        answer = clients.client("ec2", region).describe_instances(InstanceIds=[instance_id])
    found = [i for r in answer.get("Reservations", []) for i in r.get("Instances", [])
             if i.get("InstanceId") == instance_id]
    if not found:
        raise NotFound(f"aws ec2.DescribeInstances in {region}: {instance_id} not found", code="InvalidInstanceID.NotFound")
    return str(found[0].get("State", {}).get("Name", "")), str(found[0].get("InstanceType", ""))


def _power(clients: AwsClients, region: str, instance_id: str, operation: str, waiter: str, dry_run: bool,
           delay: float, max_attempts: int) -> Outcome:
    preview = _send(clients, region, operation, instance_id, dry_run, InstanceIds=[instance_id])
    if preview is not None:
        return preview
    _wait(clients, region, waiter, instance_id, delay, max_attempts)
    state = "stopped" if waiter == "instance_stopped" else "running"
    log.info("event=aws_%s instance=%s region=%s", operation.lower(), instance_id, region)
    return Outcome(f"ec2.{operation}", instance_id, False, True, state)


def stop_instance(clients: AwsClients, region: str, instance_id: str, *, dry_run: bool = False,
                  delay: float = WAIT_DELAY, max_attempts: int = WAIT_ATTEMPTS) -> Outcome:
    """Stop an instance (``StopInstances``, never ``TerminateInstances``) and wait until it is ``stopped``.

    A stopped EBS-backed instance keeps its volumes (still billed) but no longer bills compute.
    """
    return _power(clients, region, instance_id, "StopInstances", "instance_stopped", dry_run, delay, max_attempts)


def start_instance(clients: AwsClients, region: str, instance_id: str, *, dry_run: bool = False,
                   delay: float = WAIT_DELAY, max_attempts: int = WAIT_ATTEMPTS) -> Outcome:
    """Start a stopped instance (``StartInstances``) and wait until it is ``running``."""
    return _power(clients, region, instance_id, "StartInstances", "instance_running", dry_run, delay, max_attempts)


def modify_instance_type(clients: AwsClients, region: str, instance_id: str, instance_type: str, *,
                         dry_run: bool = False) -> Outcome:
    """Change a stopped instance's type (``ModifyInstanceAttribute`` ``InstanceType={"Value": ...}``).

    Reads the state first (``DescribeInstances``) and raises ``ProviderError`` unless it is ``stopped``:
    EC2 refuses the change on any other state (``IncorrectInstanceState``).
    """
    where = _where("ec2.ModifyInstanceAttribute", region, instance_id)
    if not instance_type:
        raise ProviderError(f"{where}: no instance type given", code="InvalidParameterValue")
    state, current = instance_state(clients, region, instance_id)
    if state != "stopped":
        raise ProviderError(f"{where} is {state or 'in an unknown state'}; EC2 changes the instance type of "
                            "stopped instances only", code="IncorrectInstanceState", hint="stop the instance first")
    preview = _send(clients, region, "ModifyInstanceAttribute", instance_id, dry_run,
                    InstanceId=instance_id, InstanceType={"Value": instance_type})
    if preview is not None:
        return preview
    log.info("event=aws_modify_instance_type instance=%s region=%s from=%s to=%s", instance_id, region, current,
             instance_type)
    return Outcome("ec2.ModifyInstanceAttribute", instance_id, False, True, state)


@contextmanager
def _group_call(operation: str, region: str, group_name: str) -> Iterator[None]:
    """``translated`` plus Auto Scaling's unknown-group answer (``ValidationError`` "... not found") as NotFound."""
    try:
        with translated("autoscaling", operation, region):
            yield
    except ProviderError as exc:
        if exc.code == "ValidationError" and "not found" in str(exc).lower() and not isinstance(exc, NotFound):
            raise NotFound(f"aws autoscaling.{operation} in {region}: group {group_name} not found",
                           code="ValidationError") from exc
        raise


def _sizes(where: str, min_size: int | None, max_size: int | None, desired: int | None) -> dict[str, int]:
    sizes = {k: v for k, v in (("MinSize", min_size), ("MaxSize", max_size), ("DesiredCapacity", desired))
             if v is not None}
    if not sizes:
        raise ProviderError(f"{where}: give at least one of min_size, max_size, desired", code="InvalidParameter")
    if any(v < 0 for v in sizes.values()):
        raise ProviderError(f"{where}: sizes must be >= 0, not {sizes}", code="InvalidParameter")
    return sizes


def set_group_capacity(clients: AwsClients, region: str, group_name: str, *, min_size: int | None = None,
                       max_size: int | None = None, desired: int | None = None) -> None:
    """Set an Auto Scaling group's sizes (``UpdateAutoScalingGroup``); sizes left None are kept.

    The group then launches or terminates members itself; its scaling policies and scheduled actions
    may move the desired capacity again within the new bounds.
    """
    sizes = _sizes(_where("autoscaling.UpdateAutoScalingGroup", region, group_name), min_size, max_size, desired)
    with _group_call("UpdateAutoScalingGroup", region, group_name):
        clients.client("autoscaling", region).update_auto_scaling_group(AutoScalingGroupName=group_name, **sizes)
    log.info("event=aws_group_capacity group=%s region=%s sizes=%s", group_name, region, sizes)


_CRON = re.compile(r"^\S+(\s+\S+){4}$")


def put_scheduled_action(clients: AwsClients, region: str, group_name: str, action_name: str, recurrence: str, *,
                         min_size: int | None = None, max_size: int | None = None, desired: int | None = None,
                         time_zone: str = "UTC") -> None:
    """Create or replace a recurring scheduled action (``PutScheduledUpdateGroupAction``).

    ``recurrence`` is Unix cron (five fields, ``"0 20 * * 1-5"``), read in ``time_zone`` (an IANA
    name such as ``"Europe/Berlin"``; Auto Scaling defaults to UTC). An action of the same name on the
    group is replaced.
    """
    where = _where("autoscaling.PutScheduledUpdateGroupAction", region, f"{group_name}/{action_name}")
    sizes = _sizes(where, min_size, max_size, desired)
    if not _CRON.match(recurrence.strip()):
        raise ProviderError(f"{where}: recurrence {recurrence!r} is not five cron fields", code="InvalidParameter",
                            hint='write e.g. "0 20 * * 1-5"')
    with _group_call("PutScheduledUpdateGroupAction", region, group_name):
        clients.client("autoscaling", region).put_scheduled_update_group_action(
            AutoScalingGroupName=group_name, ScheduledActionName=action_name, Recurrence=recurrence.strip(),
            TimeZone=time_zone, **sizes)
    log.info("event=aws_scheduled_action group=%s action=%s region=%s recurrence=%r tz=%s sizes=%s", group_name,
             action_name, region, recurrence, time_zone, sizes)


def set_tags(clients: AwsClients, region: str, resource_id: str, tags: Mapping[str, str]) -> None:
    """Add or overwrite tags on an EC2 resource (``CreateTags``); other tags are kept. No tags, no call."""
    if not tags:
        return
    with translated("ec2", "CreateTags", region):
        clients.client("ec2", region).create_tags(
            Resources=[resource_id], Tags=[{"Key": str(k), "Value": str(v)} for k, v in tags.items()])
    log.info("event=aws_tags resource=%s region=%s keys=%s", resource_id, region, sorted(tags))


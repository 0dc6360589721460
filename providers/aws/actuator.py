"""EC2 and Auto Scaling mutation primitives for the guarded apply (stop, start, change instance type, set a
group's capacity, put a group's scheduled action, tag) and ``AwsActuator``, the ``providers.base.Actuator``
over them. Nothing here terminates or deletes anything: no ``TerminateInstances``, no
``DeleteScheduledAction``, no ``DeleteTags``.

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
  ``IncorrectInstanceState`` otherwise; moto lets it through, and its ``DryRun`` checks no state at all):
  ``modify_instance_type`` and ``AwsActuator`` read the state first and refuse rather than stopping the
  instance on the caller's behalf.
- ``PutScheduledUpdateGroupAction`` creates or overwrites an action by name; on an overwrite a size left
  out keeps its old value. Auto Scaling answers an unknown group with ``ValidationError`` ("... not
  found"), raised here as ``NotFound``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from providers.aws.actuator_state import (CRON, SIZE_KEYS, group_call, group_sizes, instance_state, instance_tags,
                                          resize_problem, same_schedule, scale_schedule, scale_sizes,
                                          scheduled_actions, sizes_problem, sizes_text, undo_schedule)
from providers.aws.client import AwsClients, translated
from providers.aws.permissions import ACTUATOR_CALLS, kind_actions
from providers.base import DeclaredActuator, Outcome as Change, Preview
from providers.errors import ProviderError, Throttled
from providers.model import Action, Cloud

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
    with group_call("UpdateAutoScalingGroup", region, group_name):
        clients.client("autoscaling", region).update_auto_scaling_group(AutoScalingGroupName=group_name, **sizes)
    log.info("event=aws_group_capacity group=%s region=%s sizes=%s", group_name, region, sizes)


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
    if not CRON.match(recurrence.strip()):
        raise ProviderError(f"{where}: recurrence {recurrence!r} is not five cron fields", code="InvalidParameter",
                            hint='write e.g. "0 20 * * 1-5"')
    with group_call("PutScheduledUpdateGroupAction", region, group_name):
        clients.client("autoscaling", region).put_scheduled_update_group_action(
            AutoScalingGroupName=group_name, ScheduledActionName=action_name, Recurrence=recurrence.strip(),
            TimeZone=time_zone, **sizes)
    log.info("event=aws_scheduled_action group=%s action=%s region=%s recurrence=%r tz=%s sizes=%s", group_name,
             action_name, region, recurrence, time_zone, sizes)


def set_tags(clients: AwsClients, region: str, resource_id: str, tags: Mapping[str, str], *,
             dry_run: bool = False) -> Outcome | None:
    """Add or overwrite tags on an EC2 resource (``CreateTags``); other tags are kept. No tags, no call.
    A dry run returns its outcome (EC2 checks ``CreateTags`` with ``DryRun``)."""
    if not tags:
        return None
    pairs = [{"Key": str(k), "Value": str(v)} for k, v in tags.items()]
    preview = _send(clients, region, "CreateTags", resource_id, dry_run, Resources=[resource_id], Tags=pairs)
    if preview is None:
        log.info("event=aws_tags resource=%s region=%s keys=%s", resource_id, region, sorted(tags))
    return preview


_POWER = {"stop": ("StopInstances", "running", "stopping", "stopped"),
          "start": ("StartInstances", "stopped", "pending", "running")}  # (operation, from, under way, done)


class AwsActuator(DeclaredActuator):
    """``providers.base.Actuator`` over the primitives above. ``Action.ref``: region and the instance id (the Auto
    Scaling group name for ``scale``). Params: ``resize`` ``{"from_type", "to_type"}`` (``from_type`` checked when
    given); ``scale`` any of ``min_size``, ``max_size``, ``desired_capacity`` and ``scheduled_actions`` (each
    ``{"name", "recurrence", "min_size", "max_size", "desired_capacity", "time_zone"}``); ``tag`` ``{"tags": {...}}``.
    Kinds and permissions come from ``permissions.ACTUATOR_CALLS``."""

    cloud = Cloud.AWS
    NAME = "AWS"
    CALLS = ACTUATOR_CALLS

    REASONS: Mapping[str, str] = {
        "deallocate": "an Azure state: an EC2 stop already releases the host (use stop)",
        "power_off": "EC2 has no power-off apart from stop (use stop)",
        "schedule": "an instance's off-hours schedule belongs to AWS's own scheduler: deploy AWS Instance Scheduler "
                    "or an EventBridge Scheduler schedule calling StopInstances/StartInstances (an Auto Scaling "
                    "group's scheduled actions are part of scale)",
        "spot": "spot moves are advice only: a relaunch",
        "commitment": "commitments are advice only",
        "consolidate": "consolidation is advice only: it moves workloads",
    }

    def __init__(self, clients: AwsClients, *, delay: float = WAIT_DELAY, max_attempts: int = WAIT_ATTEMPTS) -> None:
        self.clients = clients
        self.wait = {"delay": delay, "max_attempts": max_attempts}

    def kind_permissions(self, kind: str) -> tuple[str, ...]:
        return kind_actions(kind)

    def read(self, action: Action) -> dict[str, Any]:
        """An instance's ``{"state", "type"}``, its ``{"tags"}`` for a tag, a group's sizes and ``scheduled_actions``
        (the existing ones named in the params, which an undo restores)."""
        self._check(action)
        region, target = action.ref.region, action.ref.id
        if action.kind == "scale":
            names = [str(s.get("name")) for s in action.params.get("scheduled_actions") or []]
            return {**group_sizes(self.clients, region, target),
                    "scheduled_actions": scheduled_actions(self.clients, region, target, names)}
        if action.kind == "tag":
            return {"tags": instance_tags(self.clients, region, target)}
        state, instance_type = instance_state(self.clients, region, target)
        return {"state": state, "type": instance_type}

    def effect_seen(self, action: Action, state: Mapping[str, Any]) -> bool:
        """stop: stopping/stopped; start: pending/running; resize: the new type; tag: the tags; scale: the sizes
        equal the params', or a scheduled action costagent puts is there as it puts it (part done: undo it all)."""
        self._check(action)
        kind, params = action.kind, action.params
        if kind in _POWER:
            return state.get("state") in _POWER[kind][2:]
        if kind == "resize":
            return bool(params.get("to_type")) and state.get("type") == params["to_type"]
        if kind == "tag":
            tags = dict(params.get("tags") or {})
            return bool(tags) and all((state.get("tags") or {}).get(k) == str(v) for k, v in tags.items())
        sizes = scale_sizes(f"scale of {action.ref.id}", params)
        seen = {s["name"]: s for s in state.get("scheduled_actions") or []}
        return (bool(sizes) and all(state.get(k) == v for k, v in sizes.items())) or any(
            same_schedule(seen.get(s["name"]), s) for s in scale_schedule(f"scale of {action.ref.id}", params))

    def preview(self, action: Action) -> Preview:
        """EC2 ``DryRun`` for stop, start, resize and tag (the caller's permission checked too: ``native``), once
        the state read allows the change; a group's change is judged from its sizes (Auto Scaling has no dry run)."""
        state = self.read(action)
        region, target, kind, params = action.ref.region, action.ref.id, action.kind, action.params
        if kind == "scale":
            where = f"scale of {target}"
            sizes, schedule = scale_sizes(where, params), scale_schedule(where, params)
            problem = sizes_problem(state, sizes) or (None if sizes or schedule else "the params set no size")
            if problem:
                return Preview(action, False, False, state, problem)
            old = {s["name"] for s in state["scheduled_actions"]}
            puts = [f"{s['name']} ({'replaces' if s['name'] in old else 'new'})" for s in schedule]
            return Preview(action, True, False, state, f"sizes {sizes_text(state)} -> {sizes_text(sizes) or 'kept'}"
                           + (f"; scheduled actions put: {', '.join(puts)}" if puts else ""))
        if kind in _POWER and state["state"] != _POWER[kind][1]:
            return Preview(action, False, False, state, f"the instance is {state['state']}, not {_POWER[kind][1]}")
        problem = resize_problem(action.params, state) if kind == "resize" else None
        if problem:
            return Preview(action, False, False, state, problem[1])
        try:
            if kind in _POWER:
                _send(self.clients, region, _POWER[kind][0], target, True, InstanceIds=[target])
            elif kind == "resize":
                _send(self.clients, region, "ModifyInstanceAttribute", target, True, InstanceId=target,
                      InstanceType={"Value": str(params["to_type"])})
            elif not set_tags(self.clients, region, target, dict(params.get("tags") or {}), dry_run=True):
                return Preview(action, False, False, state, "no tags given")
        except Throttled:
            raise
        except ProviderError as exc:
            if exc.code == "DryRunIgnored":
                raise
            return Preview(action, False, True, state, exc.one_line())
        detail = {"stop": "the instance would stop (its EBS volumes stay, still billed)",
                  "start": "the instance would start", "tag": "the tags would be set",
                  "resize": f"the type would change from {state.get('type')} to {params.get('to_type')}"}[kind]
        return Preview(action, True, True, state, f"EC2 DryRun: {detail}")

    def execute(self, action: Action) -> Change:
        before = self.read(action)
        region, target, params = action.ref.region, action.ref.id, action.params
        if action.kind in _POWER:
            primitive = stop_instance if action.kind == "stop" else start_instance
            primitive(self.clients, region, target, **self.wait)
        elif action.kind == "resize":
            problem = resize_problem(params, before)
            if problem:
                raise ProviderError(f"aws: cannot resize {target}: {problem[1]}", code=problem[0])
            modify_instance_type(self.clients, region, target, str(params["to_type"]))
        elif action.kind == "tag":
            if not params.get("tags"):
                raise ProviderError(f"aws: tag of {target}: no tags given", code="InvalidParameter")
            set_tags(self.clients, region, target, dict(params["tags"]))
        else:
            self._scale(action, before)
        return Change(action, before, self.read(action))

    def _scale(self, action: Action, before: Mapping[str, Any]) -> None:
        where, region, group = f"scale of {action.ref.id}", action.ref.region, action.ref.id
        sizes, schedule = scale_sizes(where, action.params), scale_schedule(where, action.params)  # all checked first
        problem = sizes_problem(before, sizes) or (None if sizes or schedule else "the params set no size")
        if problem:
            raise ProviderError(f"aws: {where}: {problem}", code="InvalidParameter")
        if sizes:
            set_group_capacity(self.clients, region, group, min_size=sizes.get("min_size"),
                               max_size=sizes.get("max_size"), desired=sizes.get("desired_capacity"))
        for s in schedule:
            self._put(group, region, s)

    def _put(self, group: str, region: str, s: Mapping[str, Any]) -> None:
        put_scheduled_action(self.clients, region, group, s["name"], s["recurrence"], min_size=s.get("min_size"),
                             max_size=s.get("max_size"), desired=s.get("desired_capacity"), time_zone=s["time_zone"])

    def undo(self, action: Action, before: Mapping[str, Any]) -> Change:
        """Back to ``before``: start (stop) an instance stopped (started), wait first when it is still on its way;
        the old type of a stopped instance (a running one: refused); the group's sizes, and each scheduled action
        costagent put overwritten with its old definition or, when it had none, with the group's old sizes."""
        now = self.read(action)
        region, target, kind, note = action.ref.region, action.ref.id, action.kind, ""
        if kind in _POWER:
            back = {"running": "start", "stopped": "stop"}.get(str(before.get("state")))
            if back is None:
                raise ProviderError(f"aws: cannot undo {kind} of {target}: it was {before.get('state')}",
                                    code="UndoUnsupported")
            if now.get("state") != before.get("state"):
                if now.get("state") in ("stopping", "pending"):  # still on its way: the reverse call would be refused
                    _wait(self.clients, region, "instance_stopped" if now["state"] == "stopping" else "instance_running",
                          target, self.wait["delay"], self.wait["max_attempts"])
                (start_instance if back == "start" else stop_instance)(self.clients, region, target, **self.wait)
        elif kind == "resize" and now.get("type") != before.get("type"):
            if now.get("state") != "stopped":
                raise ProviderError(f"aws: cannot undo the resize of {target} to {before.get('type')}: it is "
                                    f"{now.get('state')}; EC2 changes the type of stopped instances only",
                                    code="IncorrectInstanceState", hint="stop it, then undo again")
            modify_instance_type(self.clients, region, target, str(before["type"]))
        elif kind == "tag":
            old, ours = dict(before.get("tags") or {}), dict(action.params.get("tags") or {})
            set_tags(self.clients, region, target, {k: old[k] for k in ours if k in old and now["tags"].get(k) != old[k]})
            added = sorted(set(ours) - set(old))
            note = f"tags {added} stay: removing them would need ec2:DeleteTags, which costagent never calls" if added else ""
        elif kind == "scale":
            note = self._unscale(action, before, now)
        return Change(action, now, self.read(action), note)

    def _unscale(self, action: Action, before: Mapping[str, Any], now: Mapping[str, Any]) -> str:
        region, group = action.ref.region, action.ref.id
        seen = {s["name"]: s for s in now.get("scheduled_actions") or []}
        targets, note = undo_schedule(scale_schedule(f"scale of {group}", action.params), before, set(seen))
        for target in targets:
            if not same_schedule(seen.get(target["name"]), target):
                self._put(group, region, target)
        sizes = {k: before[k] for k in SIZE_KEYS}
        if any(now.get(k) != v for k, v in sizes.items()):
            set_group_capacity(self.clients, region, group, min_size=sizes["min_size"], max_size=sizes["max_size"],
                               desired=sizes["desired_capacity"])
        return note

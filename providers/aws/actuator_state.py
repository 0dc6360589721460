"""What ``AwsActuator`` reads and checks: an instance's state, type and tags; an Auto Scaling group's sizes and
the scheduled actions a ``scale`` names; the ``scale`` params, checked before any call. Reads only.

Shapes (``AwsActuator.read``): an instance ``{"state": "running", "type": "g5.xlarge"}``; its tags
``{"tags": {...}}``; a group ``{"min_size", "max_size", "desired_capacity", "scheduled_actions": [...]}``,
each scheduled action as the plan writes one: ``{"name", "recurrence", "min_size", "max_size",
"desired_capacity", "time_zone"}`` (a size the action leaves alone is None; a one-time action has
``recurrence`` None and its ``start_time``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from providers.aws.client import AwsClients, pages, translated
from providers.errors import NotFound, ProviderError

#: A group's sizes, as the plan (and ``read``) name them, with Auto Scaling's own names.
SIZE_KEYS = ("min_size", "max_size", "desired_capacity")
API_SIZES = {"min_size": "MinSize", "max_size": "MaxSize", "desired_capacity": "DesiredCapacity"}
#: DescribeScheduledActions takes at most this many ScheduledActionNames.
NAMES_PER_CALL = 50

CRON = re.compile(r"^\S+(\s+\S+){4}$")


@contextmanager
def group_call(operation: str, region: str, group_name: str) -> Iterator[None]:
    """``translated`` plus Auto Scaling's unknown-group answer (``ValidationError`` "... not found") as NotFound."""
    try:
        with translated("autoscaling", operation, region):
            yield
    except ProviderError as exc:
        if exc.code == "ValidationError" and "not found" in str(exc).lower() and not isinstance(exc, NotFound):
            raise NotFound(f"aws autoscaling.{operation} in {region}: group {group_name} not found",
                           code="ValidationError") from exc
        raise


def describe_instance(clients: AwsClients, region: str, instance_id: str) -> dict[str, Any]:
    """The instance as ``DescribeInstances`` gives it; ``NotFound`` when unknown."""
    with translated("ec2", "DescribeInstances", region):
        answer = clients.client("ec2", region).describe_instances(InstanceIds=[instance_id])
    found = [i for r in answer.get("Reservations", []) for i in r.get("Instances", [])
             if i.get("InstanceId") == instance_id]
    if not found:
        raise NotFound(f"aws ec2.DescribeInstances in {region}: {instance_id} not found",
                       code="InvalidInstanceID.NotFound")
    return found[0]


def instance_state(clients: AwsClients, region: str, instance_id: str) -> tuple[str, str]:
    """The instance's (state name, instance type) from ``DescribeInstances``; ``NotFound`` when unknown."""
    found = describe_instance(clients, region, instance_id)
    return str(found.get("State", {}).get("Name", "")), str(found.get("InstanceType", ""))


def instance_tags(clients: AwsClients, region: str, instance_id: str) -> dict[str, str]:
    found = describe_instance(clients, region, instance_id)
    return {str(t["Key"]): str(t.get("Value", "")) for t in found.get("Tags", []) or []}


def group_sizes(clients: AwsClients, region: str, group_name: str) -> dict[str, int]:
    """An Auto Scaling group's ``min_size``, ``max_size``, ``desired_capacity`` (``DescribeAutoScalingGroups``)."""
    with group_call("DescribeAutoScalingGroups", region, group_name):
        answer = clients.client("autoscaling", region).describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])
    found = answer.get("AutoScalingGroups", [])
    if not found:
        raise NotFound(f"aws autoscaling.DescribeAutoScalingGroups in {region}: group {group_name} not found",
                       code="ValidationError")
    return {key: int(found[0][api]) for key, api in API_SIZES.items()}


def scheduled_actions(clients: AwsClients, region: str, group_name: str, names: Sequence[str]) -> list[dict[str, Any]]:
    """The group's scheduled actions named ``names`` that exist (``DescribeScheduledActions``), sorted by name.

    No names, no call: an empty ``ScheduledActionNames`` would list every action of the group.
    """
    wanted = sorted(set(names))
    client = clients.client("autoscaling", region)
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), NAMES_PER_CALL):
        chunk = wanted[start : start + NAMES_PER_CALL]
        with group_call("DescribeScheduledActions", region, group_name):
            for page in pages(client, "DescribeScheduledActions", region, AutoScalingGroupName=group_name,
                              ScheduledActionNames=chunk):
                for item in page.get("ScheduledUpdateGroupActions", []):
                    if item.get("ScheduledActionName") in chunk:
                        found[str(item["ScheduledActionName"])] = definition(item)
    return [found[n] for n in sorted(found)]


def definition(item: Mapping[str, Any]) -> dict[str, Any]:
    """A ``ScheduledUpdateGroupAction`` in the plan's shape."""
    out: dict[str, Any] = {
        "name": str(item.get("ScheduledActionName", "")),
        "recurrence": str(item["Recurrence"]) if item.get("Recurrence") else None,
        **{key: (int(item[api]) if item.get(api) is not None else None) for key, api in API_SIZES.items()},
        "time_zone": str(item.get("TimeZone") or "UTC"),
    }
    if out["recurrence"] is None and item.get("StartTime") is not None:
        start = item["StartTime"]
        out["start_time"] = start.isoformat() if hasattr(start, "isoformat") else str(start)
    return out


def _invalid(where: str, text: str, hint: str | None = None) -> ProviderError:
    return ProviderError(f"aws: {where}: {text}", code="InvalidParameter", hint=hint)


def _size(where: str, key: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _invalid(where, f"{key} must be a whole number >= 0, not {value!r}")
    return value


def scale_sizes(where: str, params: Mapping[str, Any]) -> dict[str, int]:
    """The group sizes a ``scale`` sets (those given), checked."""
    sizes = {key: _size(where, key, params.get(key)) for key in SIZE_KEYS}
    return {k: v for k, v in sizes.items() if v is not None}


def scale_schedule(where: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The scheduled actions a ``scale`` puts, checked and completed (``time_zone`` UTC by default)."""
    out = []
    for item in params.get("scheduled_actions") or []:
        name, recurrence = str(item.get("name") or ""), str(item.get("recurrence") or "").strip()
        if not name:
            raise _invalid(where, f"a scheduled action has no name: {dict(item)}")
        if not CRON.match(recurrence):
            raise _invalid(where, f"scheduled action {name}: recurrence {recurrence!r} is not five cron fields",
                           'write e.g. "0 20 * * 1-5"')
        sizes = {key: _size(f"{where}: scheduled action {name}", key, item.get(key)) for key in SIZE_KEYS}
        if all(v is None for v in sizes.values()):
            raise _invalid(where, f"scheduled action {name} sets no size")
        out.append({"name": name, "recurrence": recurrence, **sizes, "time_zone": str(item.get("time_zone") or "UTC")})
    names = [s["name"] for s in out]
    if len(set(names)) != len(names):
        raise _invalid(where, f"scheduled action names repeat: {sorted(names)}")
    return out


def sizes_problem(current: Mapping[str, Any], sizes: Mapping[str, int]) -> str | None:
    """Why the group cannot take ``sizes`` (min <= desired <= max once merged with ``current``), else None."""
    merged = {k: sizes.get(k, current.get(k)) for k in SIZE_KEYS}
    low, high, desired = merged["min_size"], merged["max_size"], merged["desired_capacity"]
    if None not in (low, high, desired) and not low <= desired <= high:
        return f"the sizes would be min {low}, desired {desired}, max {high}: Auto Scaling needs min <= desired <= max"
    return None


def same_schedule(seen: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    """Whether scheduled action ``seen`` (``definition``) has ``wanted``'s recurrence, time zone and sizes."""
    if seen is None:
        return False
    return all(seen.get(k) == wanted.get(k) for k in ("recurrence", "time_zone", *SIZE_KEYS)
               if wanted.get(k) is not None)


def sizes_text(sizes: Mapping[str, Any]) -> str:
    return ", ".join(f"{k.split('_')[0]} {sizes[k]}" for k in SIZE_KEYS if sizes.get(k) is not None)


def resize_problem(params: Mapping[str, Any], state: Mapping[str, Any]) -> tuple[str, str] | None:
    """(code, why) a resize with ``params`` cannot go ahead on an instance in ``state``, else None."""
    wanted, expected, now = str(params.get("to_type") or ""), params.get("from_type"), state.get("type")
    if not wanted:
        return "InvalidParameter", "no to_type given"
    if expected and expected != now:
        return "StaleAction", f"the instance is {now}, not {expected} (audit again)"
    if wanted == now:
        return "NoChange", f"the instance is already {wanted}"
    if state.get("state") != "stopped":
        return "IncorrectInstanceState", (f"the instance is {state.get('state')}; EC2 changes the instance type of "
                                          "stopped instances only (IncorrectInstanceState): stop it first")
    return None


def undo_schedule(schedule: Sequence[Mapping[str, Any]], before: Mapping[str, Any],
                  present: Collection[str]) -> tuple[list[dict[str, Any]], str]:
    """What an undo puts for each scheduled action a ``scale`` put, and the note saying so.

    An action that existed ``before`` (recurring) gets its old definition back; one costagent created
    (of those ``present`` now) is overwritten with the group's ``before`` sizes (costagent never deletes),
    so it still fires but changes nothing. A size the old definition left unset cannot be unset by an
    overwrite: named in the note.
    """
    missing = [k for k in SIZE_KEYS if not isinstance(before.get(k), int)]
    if missing:
        raise ProviderError(f"aws: cannot undo the scale: the state before has no {', '.join(missing)}",
                            code="UndoUnsupported", hint="undo needs the Outcome.before of AwsActuator.execute")
    old = {s["name"]: s for s in before.get("scheduled_actions") or []}
    sizes = {k: before[k] for k in SIZE_KEYS}
    targets, restored, neutral, kept = [], [], [], []
    for s in schedule:
        prior = old.get(s["name"])
        if prior is not None and prior.get("recurrence"):
            targets.append(dict(prior))
            restored.append(s["name"])
            kept += [f"{s['name']} {k}" for k in SIZE_KEYS if prior.get(k) is None and s.get(k) is not None]
        elif s["name"] in present:  # one never put (the execute stopped before it) is left absent
            targets.append({**s, **sizes})
            neutral.append(s["name"])
    parts = [f"scheduled actions restored to their old definitions: {', '.join(restored)}"] if restored else []
    if kept:
        parts.append(f"sizes an old definition left unset keep costagent's value (an overwrite cannot unset them): "
                     f"{', '.join(kept)}")
    if neutral:
        parts.append(f"scheduled actions costagent created were overwritten with the group's old sizes "
                     f"({sizes_text(sizes)}), not deleted, and still fire on their schedule: {', '.join(neutral)}; "
                     "costagent never deletes: remove them with `aws autoscaling delete-scheduled-action` if unwanted")
    return targets, "; ".join(parts)

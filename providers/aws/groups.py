"""Auto Scaling groups as ``Group`` records, and the GPU instance types a region offers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from providers.aws.client import AwsClients, pages
from providers.model import Cloud, Group, ResourceRef, ScheduledCapacity

#: DescribeInstanceTypeOfferings takes at most this many values in one filter.
OFFERING_FILTER_VALUES = 200


def list_groups(clients: AwsClients, region: str, account: str) -> list[Group]:
    """Every Auto Scaling group in ``region`` with its sizes, members and scheduled actions."""
    client = clients.client("autoscaling", region)
    raw = [g for page in pages(client, "DescribeAutoScalingGroups", region) for g in page.get("AutoScalingGroups", [])]
    if not raw:
        return []
    scheduled: dict[str, list[ScheduledCapacity]] = {}
    for page in pages(client, "DescribeScheduledActions", region):
        for item in page.get("ScheduledUpdateGroupActions", []):
            if not item.get("Recurrence"):
                continue  # one-off actions are not part of a recurring plan
            scheduled.setdefault(str(item["AutoScalingGroupName"]), []).append(ScheduledCapacity(
                name=str(item.get("ScheduledActionName", "")),
                recurrence=str(item["Recurrence"]),
                min_size=item.get("MinSize"),
                max_size=item.get("MaxSize"),
                desired=item.get("DesiredCapacity"),
                time_zone=str(item.get("TimeZone") or "UTC"),
            ))
    return [_group(g, region, account, scheduled.get(str(g["AutoScalingGroupName"]), [])) for g in raw]


def _is_member(state: str) -> bool:
    """In service, on its way in, or in standby (still running, still billed); not leaving the group."""
    return not state.startswith(("Terminat", "Detach"))


def _group(item: dict[str, Any], region: str, account: str, scheduled: list[ScheduledCapacity]) -> Group:
    name = str(item["AutoScalingGroupName"])
    members = [m for m in item.get("Instances", []) or [] if _is_member(str(m.get("LifecycleState", "")))]
    types = {str(m["InstanceType"]) for m in members if m.get("InstanceType")}
    arn = str(item.get("AutoScalingGroupARN", ""))
    owner = arn.split(":")[4] if arn.count(":") >= 5 else account
    # The declared warm-up, else the health-check grace period (AWS's API default is 0, the console's
    # and moto's 300 s); the recommender takes its own start-up setting as a floor either way.
    warmup = item.get("DefaultInstanceWarmup") or item.get("HealthCheckGracePeriod")
    return Group(
        ref=ResourceRef(Cloud.AWS, owner or account, region, name),
        kind="aws-asg",
        instance_type=types.pop() if len(types) == 1 else None,
        min_size=int(item.get("MinSize", 0)),
        max_size=int(item.get("MaxSize", 0)),
        desired=int(item.get("DesiredCapacity", 0)),
        members=tuple(sorted(str(m["InstanceId"]) for m in members)),
        warmup_seconds=int(warmup) if warmup else None,
        tags={str(t["Key"]): str(t.get("Value", "")) for t in item.get("Tags", []) or []},
        scheduled=tuple(scheduled),
    )


def offered_types(clients: AwsClients, region: str, instance_types: Sequence[str]) -> set[str]:
    """Which of ``instance_types`` ``DescribeInstanceTypeOfferings`` says the region offers (exact names)."""
    wanted = sorted(set(instance_types))
    client = clients.client("ec2", region)
    found: set[str] = set()
    for start in range(0, len(wanted), OFFERING_FILTER_VALUES):
        chunk = wanted[start : start + OFFERING_FILTER_VALUES]
        for page in pages(client, "DescribeInstanceTypeOfferings", region, LocationType="region",
                          Filters=[{"Name": "instance-type", "Values": chunk}]):
            found |= {str(o["InstanceType"]) for o in page.get("InstanceTypeOfferings", [])}
    return found & set(wanted)

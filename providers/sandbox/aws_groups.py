"""Seed simulated scaling groups into an AWS endpoint (a moto server) through the public APIs, with boto3.

Per group: a launch template (the demo image, the group's instance type), then an Auto Scaling group
with its sizes and tags (``PropagateAtLaunch``; the warm-up as ``DefaultInstanceWarmup`` and
``HealthCheckGracePeriod`` when the group declares one). The endpoint launches the members itself
(moto does so at once, tagging each with ``aws:autoscaling:groupName``). Each member's telemetry is
then published exactly as ``aws_seed`` publishes an instance's: ``CWAgent`` ``nvidia_smi_*`` per GPU
with ``InstanceId`` / ``index`` / ``name`` / ``host`` dimensions, ``AWS/EC2`` CPU and network, one
sample every ``cadence`` anchored at the newest.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pandas as pd

from providers.sandbox.aws_seed import DEMO_AMI, PUT_BATCH, series_datums
from providers.sandbox.fleet import SIM_PERIOD, grid
from providers.sandbox.groups import SimGroup, simulate_group


def seed_groups(session: Any, groups: Sequence[SimGroup], end: pd.Timestamp, lookback: timedelta,
                cadence: timedelta = timedelta(hours=1), endpoint_url: str | None = None) -> dict[str, list[str]]:
    """Create every group and publish its members' telemetry; returns group name -> member instance ids
    (sorted; member ``i`` of the simulation is the ``i``-th id)."""
    times = grid(end, lookback, SIM_PERIOD)
    every = max(1, int(cadence / SIM_PERIOD))
    members: dict[str, list[str]] = {}
    for region in sorted({g.region for g in groups}):
        ec2 = session.client("ec2", region_name=region, endpoint_url=endpoint_url)
        asg = session.client("autoscaling", region_name=region, endpoint_url=endpoint_url)
        cw = session.client("cloudwatch", region_name=region, endpoint_url=endpoint_url)
        for group in (g for g in groups if g.region == region):
            ids = _create(ec2, asg, group, region)
            described = {i["InstanceId"]: i for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
                         for i in r["Instances"]} if ids else {}
            series = simulate_group(group, times)
            for iid, member in zip(ids, series.members, strict=False):
                host = described[iid].get("PrivateDnsName") or iid
                data = list(series_datums(iid, host, member, group.instance_type, group.gpus, group.gpu_memory_mib, every))
                for namespace in ("CWAgent", "AWS/EC2"):
                    chunk = [d for ns, d in data if ns == namespace]
                    for start in range(0, len(chunk), PUT_BATCH):
                        cw.put_metric_data(Namespace=namespace, MetricData=chunk[start : start + PUT_BATCH])
            members[group.name] = ids
    return members


def _create(ec2: Any, asg: Any, group: SimGroup, region: str) -> list[str]:
    template = f"{group.name}-template"
    ec2.create_launch_template(LaunchTemplateName=template,
                               LaunchTemplateData={"ImageId": DEMO_AMI, "InstanceType": group.instance_type})
    kwargs: dict[str, Any] = {
        "AutoScalingGroupName": group.name,
        "LaunchTemplate": {"LaunchTemplateName": template, "Version": "$Latest"},
        "MinSize": group.min_size,
        "MaxSize": group.max_size,
        "DesiredCapacity": group.desired,
        "AvailabilityZones": [f"{region}a"],
        "Tags": [{"Key": k, "Value": v, "PropagateAtLaunch": True, "ResourceId": group.name,
                  "ResourceType": "auto-scaling-group"} for k, v in group.tags.items()],
    }
    if group.warmup_seconds is not None:
        kwargs["DefaultInstanceWarmup"] = group.warmup_seconds
        kwargs["HealthCheckGracePeriod"] = group.warmup_seconds
    asg.create_auto_scaling_group(**kwargs)
    described = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group.name])["AutoScalingGroups"]
    return sorted(str(m["InstanceId"]) for g in described for m in g.get("Instances", []))

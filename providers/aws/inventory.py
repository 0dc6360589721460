"""EC2 instances and their instance-type specs (GPU model, count and memory) as records."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from providers.aws.client import AwsClients, pages
from providers.model import (
    Accelerators,
    Cloud,
    InstanceTypeSpec,
    PricingModel,
    Resource,
    ResourceRef,
    ResourceState,
)

#: Instances in these states exist and may cost money; terminated ones are history.
LISTED_STATES = ("pending", "running", "stopping", "stopped")

_STATES = {
    "pending": ResourceState.PENDING,
    "running": ResourceState.RUNNING,
    "stopping": ResourceState.STOPPING,
    "stopped": ResourceState.STOPPED,
}

#: DescribeInstanceTypes accepts at most 100 names per call.
TYPES_PER_CALL = 100


class InstanceTypeCache:
    """``DescribeInstanceTypes`` answers, cached for one run (specs do not differ by region)."""

    def __init__(self, clients: AwsClients) -> None:
        self._clients = clients
        self._specs: dict[str, InstanceTypeSpec] = {}

    def specs(self, region: str, instance_types: Iterable[str]) -> dict[str, InstanceTypeSpec]:
        wanted = sorted(set(instance_types))
        missing = [t for t in wanted if t not in self._specs]
        client = self._clients.client("ec2", region)
        for start in range(0, len(missing), TYPES_PER_CALL):
            chunk = missing[start : start + TYPES_PER_CALL]
            for page in pages(client, "DescribeInstanceTypes", region, InstanceTypes=chunk):
                for item in page.get("InstanceTypes", []):
                    spec = parse_instance_type(item)
                    self._specs[spec.instance_type] = spec
        return {t: self._specs[t] for t in wanted if t in self._specs}


def parse_instance_type(item: dict[str, Any]) -> InstanceTypeSpec:
    gpus = (item.get("GpuInfo") or {}).get("Gpus") or []
    accelerators = None
    if gpus:
        first = gpus[0]
        count = sum(int(g.get("Count", 0)) for g in gpus)
        memory_mib = float((first.get("MemoryInfo") or {}).get("SizeInMiB", 0))
        accelerators = Accelerators(
            model=str(first.get("Name", "unknown")),
            count=count,
            memory_gib=round(memory_mib / 1024, 2),
            manufacturer=str(first.get("Manufacturer", "NVIDIA")),
        )
    return InstanceTypeSpec(
        instance_type=str(item["InstanceType"]),
        vcpu=int((item.get("VCpuInfo") or {}).get("DefaultVCpus", 0)),
        memory_gib=round(float((item.get("MemoryInfo") or {}).get("SizeInMiB", 0)) / 1024, 2),
        accelerators=accelerators,
    )


def list_instances(clients: AwsClients, types: InstanceTypeCache, region: str) -> list[Resource]:
    """Every non-terminated instance in ``region``, with its type's GPU spec attached."""
    client = clients.client("ec2", region)
    raw: list[tuple[str, dict[str, Any]]] = []
    filters = [{"Name": "instance-state-name", "Values": list(LISTED_STATES)}]
    for page in pages(client, "DescribeInstances", region, Filters=filters):
        for reservation in page.get("Reservations", []):
            owner = str(reservation.get("OwnerId", ""))
            raw.extend((owner, inst) for inst in reservation.get("Instances", []))
    specs = types.specs(region, {inst["InstanceType"] for _, inst in raw})
    return [_resource(owner, inst, region, specs.get(inst["InstanceType"])) for owner, inst in raw]


def _resource(owner: str, inst: dict[str, Any], region: str, spec: InstanceTypeSpec | None) -> Resource:
    tags = {t["Key"]: t.get("Value", "") for t in inst.get("Tags", []) or []}
    lifecycle = inst.get("InstanceLifecycle")
    pricing = PricingModel.SPOT if lifecycle == "spot" else PricingModel.ON_DEMAND
    state = _STATES.get((inst.get("State") or {}).get("Name", ""), ResourceState.OTHER)
    return Resource(
        ref=ResourceRef(Cloud.AWS, owner, region, str(inst["InstanceId"])),
        instance_type=str(inst["InstanceType"]),
        state=state,
        pricing_model=pricing,
        accelerators=spec.accelerators if spec else None,
        tags=tags,
        launched_at=inst.get("LaunchTime"),
        zone=(inst.get("Placement") or {}).get("AvailabilityZone"),
        vcpu=spec.vcpu if spec else None,
        memory_gib=spec.memory_gib if spec else None,
        group=tags.get("aws:autoscaling:groupName"),
    )


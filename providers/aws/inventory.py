"""EC2 instances and their instance-type specs (GPU model, count and memory) as records."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from providers.aws.client import AwsClients, pages
from providers.errors import ProviderError
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

log = logging.getLogger(__name__)

#: DescribeInstanceTypes accepts at most 100 names per call.
TYPES_PER_CALL = 100


class InstanceTypeCache:
    """``DescribeInstanceTypes`` answers, cached for one run (specs do not differ by region)."""

    def __init__(self, clients: AwsClients, fallback: Callable[[str], InstanceTypeSpec | None] = lambda _: None) -> None:
        self._clients = clients
        self._fallback = fallback
        self._specs: dict[str, InstanceTypeSpec] = {}
        self._unknown: set[str] = set()

    def specs(self, region: str, instance_types: Iterable[str]) -> dict[str, InstanceTypeSpec]:
        wanted = sorted(set(instance_types))
        missing = [t for t in wanted if t not in self._specs and t not in self._unknown]
        for start in range(0, len(missing), TYPES_PER_CALL):
            self._describe(region, missing[start : start + TYPES_PER_CALL])
        for itype in set(wanted) & self._unknown - set(self._specs):
            spec = self._fallback(itype)
            if spec is not None:
                self._specs[itype] = spec
        return {t: self._specs[t] for t in wanted if t in self._specs}

    def _describe(self, region: str, chunk: list[str]) -> None:
        """One call for the chunk; types the region does not know are set aside and the rest retried."""
        client = self._clients.client("ec2", region)
        while chunk:
            try:
                for page in pages(client, "DescribeInstanceTypes", region, InstanceTypes=chunk):
                    for item in page.get("InstanceTypes", []):
                        spec = parse_instance_type(item)
                        self._specs[spec.instance_type] = spec
                return
            except ProviderError as exc:
                if exc.code != "InvalidInstanceType":
                    raise
                named = set(re.findall(r"[a-z0-9-]+\.[a-z0-9-]+", str(exc).split(":", 2)[-1])) & set(chunk)
                bad = named or set(chunk[:1])  # unparseable message: drop one at a time
                log.info("event=unknown_instance_types region=%s types=%s", region, ",".join(sorted(bad)))
                self._unknown |= bad
                chunk = [t for t in chunk if t not in bad]


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


"""Azure VMs and scale set instances as ``Resource`` records, with their GPU shape.

Follows Compute's REST behaviour: ``virtualMachines.listAll?statusOnly=true`` pages every VM of a
subscription (standalone and Flexible scale set members, the latter carrying
``virtualMachineScaleSet.id``) with ``instanceView.statuses``; the power state is the
``PowerState/*`` status. Uniform scale set instances are not in that list: they come from
``virtualMachineScaleSets/{name}/virtualMachines?$expand=instanceView``, one listing per scale set.

Power states: running -> RUNNING, starting -> PENDING, stopping / deallocating -> STOPPING,
deallocated -> STOPPED (compute released, not billed), stopped -> STOPPED_ALLOCATED (powered off from
the guest or with powerOff, still allocated and still billed for compute).

GPU shape: the shipped catalog's spec where it knows the size, else the Resource SKUs API's
``vCPUs`` / ``MemoryGB`` / ``GPUs`` capabilities (one ``resourceSkus.list`` per location, cached for
the run on the clients) with the GPU model read from the size name (``GPU_MODELS``).
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from providers.azure.client import AzureClients, translated
from providers.catalog import PriceCatalog
from providers.model import (
    Accelerators,
    Cloud,
    InstanceTypeSpec,
    PricingModel,
    Resource,
    ResourceRef,
    ResourceState,
)

log = logging.getLogger(__name__)

LIST_ALL = "compute.VirtualMachines.ListAll"
SETS_LIST_ALL = "compute.VirtualMachineScaleSets.ListAll"
SET_VMS_LIST = "compute.VirtualMachineScaleSetVMs.List"
SKUS_LIST = "compute.ResourceSkus.List"

POWER_STATES: dict[str, ResourceState] = {
    "running": ResourceState.RUNNING,
    "starting": ResourceState.PENDING,
    "stopping": ResourceState.STOPPING,
    "deallocating": ResourceState.STOPPING,
    "deallocated": ResourceState.STOPPED,
    "stopped": ResourceState.STOPPED_ALLOCATED,  # powered off but still allocated: billed for compute
}

#: (pattern on the lower-cased size, GPU model, GiB per GPU, manufacturer): first match wins.
GPU_MODELS: tuple[tuple[str, str, float, str], ...] = (
    (r"_h200_", "H200", 141, "NVIDIA"),
    (r"_mi300x_", "MI300X", 192, "AMD"),
    (r"^standard_ncc?\d+\w*_h100_", "H100", 94, "NVIDIA"),  # NC / NCC H100 v5: H100 NVL 94 GB
    (r"h100", "H100", 80, "NVIDIA"),
    (r"^standard_nd96asr_v4$", "A100", 40, "NVIDIA"),  # ND A100 v4: 40 GB parts
    (r"a100", "A100", 80, "NVIDIA"),
    (r"_a10_", "A10", 24, "NVIDIA"),
    (r"_t4_", "T4", 16, "NVIDIA"),
    (r"^standard_nd40r?s_v[23]$", "V100", 32, "NVIDIA"),
    (r"^standard_nc\d+r?s_v3$", "V100", 16, "NVIDIA"),
    (r"^standard_nc\d+r?s_v2$", "P100", 16, "NVIDIA"),
    (r"^standard_nd\d+r?s$", "P40", 24, "NVIDIA"),
    (r"^standard_nv\d+s_v3$", "M60", 8, "NVIDIA"),
    (r"^standard_nc\d+r?(_promo)?$", "K80", 12, "NVIDIA"),
)
#: Partial-GPU sizes: GPU memory the size gets (the SKU API still reports 1 GPU).
PARTIAL_GPU_GIB = {"standard_nv6ads_a10_v5": 4.0, "standard_nv12ads_a10_v5": 8.0, "standard_nv18ads_a10_v5": 12.0,
                   "standard_nc8ads_a10_v4": 8.0, "standard_nc16ads_a10_v4": 16.0}

_sku_cache: weakref.WeakKeyDictionary[AzureClients, dict[tuple[str, str], list[Any]]] = weakref.WeakKeyDictionary()
_sku_lock = threading.Lock()


def gpu_model(size: str) -> tuple[str, float, str] | None:
    """(model, GiB per GPU, manufacturer) read from an Azure size name; None when it names no known GPU."""
    low = size.lower()
    for pattern, model, memory, maker in GPU_MODELS:
        if re.search(pattern, low):
            return model, PARTIAL_GPU_GIB.get(low, memory), maker
    return None


def region_of(location: str | None) -> str:
    """ARM locations as ``ResourceRef.region``: lower case, no spaces ("East US" -> "eastus")."""
    return (location or "").replace(" ", "").lower()


def resource_skus(clients: AzureClients, subscription: str, location: str) -> list[Any]:
    """The subscription's compute Resource SKUs in ``location`` (one paged call, cached on ``clients``)."""
    key = (subscription, region_of(location))
    with _sku_lock:
        cached = _sku_cache.setdefault(clients, {}).get(key)
    if cached is not None:
        return cached
    found: list[Any] = []
    with translated(SKUS_LIST, clients.where):
        for page in clients.compute(subscription).resource_skus.list(filter=f"location eq '{key[1]}'").by_page():
            clients.count(SKUS_LIST)
            found += [s for s in page if text(getattr(s, "resource_type", None)).lower() == "virtualmachines"]
    with _sku_lock:
        _sku_cache.setdefault(clients, {})[key] = found
    return found


def capabilities(sku: Any) -> dict[str, str]:
    return {str(c.name): str(c.value) for c in getattr(sku, "capabilities", None) or [] if c.name}


def sku_spec(sku: Any) -> InstanceTypeSpec:
    """A size's shape from its Resource SKU capabilities (``vCPUs``, ``MemoryGB``, ``GPUs``)."""
    caps = capabilities(sku)
    gpus = int(float(caps.get("GPUs", "0") or 0))
    accelerators = None
    if gpus > 0:
        model, memory, maker = gpu_model(str(sku.name)) or ("unknown", 0.0, "NVIDIA")
        accelerators = Accelerators(model, gpus, memory, maker)
    return InstanceTypeSpec(str(sku.name), int(float(caps.get("vCPUs", "0") or 0)),
                            float(caps.get("MemoryGB", "0") or 0), accelerators)


class _Specs:
    """Size -> spec for one subscription: the catalog first, else that location's Resource SKUs."""

    def __init__(self, clients: AzureClients, subscription: str, catalog: PriceCatalog) -> None:
        self._clients, self._subscription, self._catalog = clients, subscription, catalog
        self._by_location: dict[str, dict[str, InstanceTypeSpec]] = {}

    def spec(self, size: str, location: str) -> InstanceTypeSpec | None:
        known = self._catalog.spec(Cloud.AZURE, size)
        if known is not None:
            return known
        if location not in self._by_location:
            skus = resource_skus(self._clients, self._subscription, location)
            self._by_location[location] = {str(s.name).lower(): sku_spec(s) for s in skus if s.name}
        spec = self._by_location[location].get(size.lower())
        if spec is None:
            log.info("event=azure_unknown_size size=%s location=%s", size, location)
        return spec


def pages(clients: AzureClients, operation: str, pager: Any) -> Iterator[Any]:
    """Items of an ``ItemPaged``, each page counted, errors translated."""
    with translated(operation, clients.where):
        for page in pager.by_page():
            clients.count(operation)
            yield from page


def power_state(statuses: Iterable[Any] | None) -> ResourceState:
    """The ``PowerState/*`` status as a ``ResourceState`` (none while provisioning: PENDING if creating)."""
    codes = [str(getattr(s, "code", "") or "").lower() for s in statuses or []]
    for code in codes:
        if code.startswith("powerstate/"):
            return POWER_STATES.get(code.split("/", 1)[1], ResourceState.OTHER)
    return ResourceState.PENDING if "provisioningstate/creating" in codes else ResourceState.OTHER


def text(value: Any) -> str:
    """An SDK enum or string as its wire value ("Spot", "Flexible")."""
    return str(getattr(value, "value", value) or "")


def _pricing(priority: Any) -> PricingModel:
    return PricingModel.SPOT if text(priority).lower() in ("spot", "low") else PricingModel.ON_DEMAND


def _statuses(item: Any) -> list[Any]:
    view = getattr(item, "instance_view", None)
    return list(getattr(view, "statuses", None) or [])


def _resource(item: Any, subscription: str, size: str, location: str, specs: _Specs, *, priority: Any,
              group: str | None, tags: dict[str, str] | None) -> Resource:
    spec = specs.spec(size, location)
    zones = list(getattr(item, "zones", None) or [])
    created = getattr(item, "time_created", None)
    return Resource(
        ref=ResourceRef(Cloud.AZURE, subscription, location, str(item.id)),
        instance_type=size,
        state=power_state(_statuses(item)),
        pricing_model=_pricing(priority),
        accelerators=spec.accelerators if spec else None,
        tags=dict(tags or {}),
        launched_at=created if isinstance(created, datetime) and created.tzinfo else None,
        zone=str(zones[0]) if zones else None,
        vcpu=spec.vcpu if spec else None,
        memory_gib=spec.memory_gib if spec else None,
        group=group,
        native_id=getattr(item, "vm_id", None),
    )


def _last(resource_id: str | None) -> str | None:
    return resource_id.rstrip("/").rsplit("/", 1)[-1] if resource_id else None


def resource_group(resource_id: str) -> str:
    parts = resource_id.strip("/").split("/")
    low = [p.lower() for p in parts]
    return parts[low.index("resourcegroups") + 1]


def list_vms(clients: AzureClients, subscription: str, catalog: PriceCatalog) -> list[Resource]:
    """Every VM of ``subscription`` (all locations) and every Uniform scale set instance, as Resources."""
    compute = clients.compute(subscription)
    specs = _Specs(clients, subscription, catalog)
    out: list[Resource] = []
    for vm in pages(clients, LIST_ALL, compute.virtual_machines.list_all(status_only="true")):
        hardware = getattr(vm, "hardware_profile", None)
        scale_set = getattr(vm, "virtual_machine_scale_set", None)
        out.append(_resource(vm, subscription, text(getattr(hardware, "vm_size", None)), region_of(vm.location),
                             specs, priority=getattr(vm, "priority", None),
                             group=_last(getattr(scale_set, "id", None)), tags=vm.tags))
    for ss in list(pages(clients, SETS_LIST_ALL, compute.virtual_machine_scale_sets.list_all())):
        if text(getattr(ss, "orchestration_mode", None)).lower() == "flexible":
            continue  # Flexible members are VMs: already listed above
        profile = getattr(ss, "virtual_machine_profile", None)
        pager = compute.virtual_machine_scale_set_vms.list(resource_group(ss.id), ss.name, expand="instanceView")
        for member in pages(clients, SET_VMS_LIST, pager):
            hardware = getattr(member, "hardware_profile", None)
            size = text(getattr(getattr(member, "sku", None), "name", None) or getattr(hardware, "vm_size", None)
                        or getattr(ss.sku, "name", None))
            out.append(_resource(member, subscription, size, region_of(member.location or ss.location), specs,
                                 priority=getattr(profile, "priority", None), group=str(ss.name),
                                 tags=member.tags if member.tags is not None else ss.tags))
    log.info("event=azure_inventory subscription=%s resources=%d", subscription, len(out))
    return out

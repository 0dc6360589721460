"""Compute Engine VMs as ``Resource`` records, and machine shapes (vCPU, memory, GPUs) per project.

One ``instances.aggregatedList`` pass per project covers every zone (pages counted as
``compute.Instances.AggregatedList``). GPUs come in two ways on Compute Engine: accelerator-optimized
machine types (A2, A3, A4, G2, G4) carry their GPUs (the machine type's ``accelerators``), N1 VMs get
GPUs attached (the instance's ``guestAccelerators``). The first keep the bare machine type as
``instance_type``; the second are named ``<machine>+<N>x<acceleratorType>`` like the shipped catalog
(``n1-standard-8+1xnvidia-tesla-t4``). GPU model, count and memory come from the catalog when it
knows the type, else from the accelerator type (``GPU_MEMORY``). Machine shapes come from
``machineTypes.aggregatedList`` once per project (filtered to the GPU families, plus once more for
other types the fleet uses), cached on the clients object for the run.
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from providers.catalog import PriceCatalog
from providers.gcp.client import GcpClients, translated
from providers.hardware import gpu_model
from providers.model import (
    Accelerators,
    Cloud,
    PricingModel,
    Resource,
    ResourceRef,
    ResourceState,
)

log = logging.getLogger(__name__)

PAGE_SIZE = 500  # the API's maximum ``maxResults``

#: Accelerator type -> (GPU model, GiB per GPU), from cloud.google.com/compute/docs/gpus (GPU models table).
GPU_MEMORY: dict[str, tuple[str, float]] = {
    "nvidia-tesla-t4": ("T4", 16), "nvidia-tesla-t4-vws": ("T4", 16),
    "nvidia-l4": ("L4", 24), "nvidia-l4-vws": ("L4", 24),
    "nvidia-tesla-v100": ("V100", 16),
    "nvidia-tesla-p100": ("P100", 16), "nvidia-tesla-p100-vws": ("P100", 16),
    "nvidia-tesla-p4": ("P4", 8), "nvidia-tesla-p4-vws": ("P4", 8),
    "nvidia-tesla-a100": ("A100", 40), "nvidia-a100-80gb": ("A100", 80),
    "nvidia-h100-80gb": ("H100", 80), "nvidia-h100-mega-80gb": ("H100", 80),
    "nvidia-h200-141gb": ("H200", 141),
    "nvidia-b200": ("B200", 180),
    "nvidia-rtx-pro-6000": ("RTX PRO 6000", 96),
}

#: Machine series whose GPUs come with the machine type (never attached separately).
BUNDLED_SERIES = frozenset({"a2", "a3", "a4", "a4x", "g2", "g4"})
#: The families read in the one filtered ``machineTypes.aggregatedList`` per project.
GPU_FAMILIES = ("a2", "a3", "a4", "a4x", "g2", "g4", "n1")

_STATES = {
    "PROVISIONING": ResourceState.PENDING, "STAGING": ResourceState.PENDING,
    "RUNNING": ResourceState.RUNNING,
    "STOPPING": ResourceState.STOPPING, "SUSPENDING": ResourceState.STOPPING,
    "TERMINATED": ResourceState.STOPPED, "SUSPENDED": ResourceState.STOPPED,
}
_CUSTOM = re.compile(r"(?:([a-z0-9]+)-)?custom-(\d+)-(\d+)(?:-ext)?")


@dataclass(frozen=True, slots=True)
class MachineShape:
    name: str
    vcpu: int
    memory_gib: float
    accelerators: tuple[tuple[str, int], ...] = ()  # bundled GPUs: (accelerator type, count)


def last(url: str) -> str:
    """The last path segment of a Compute Engine URL (``.../machineTypes/n1-standard-8`` -> ``n1-standard-8``)."""
    return url.rstrip("/").rsplit("/", 1)[-1]


def zone_region(zone: str) -> str:
    """``us-central1-a`` -> ``us-central1``."""
    return zone.rsplit("-", 1)[0]


def series(machine_type: str) -> str:
    return machine_type.split("-", 1)[0]


def custom_shape(name: str) -> MachineShape | None:
    """Custom machine types (``n1-custom-8-30720``, ``custom-4-5120``) carry their shape in the name."""
    m = _CUSTOM.fullmatch(name)
    return MachineShape(name, int(m.group(2)), round(int(m.group(3)) / 1024, 2)) if m else None


def instance_type_name(machine_type: str, accelerators: Iterable[tuple[str, int]],
                       shape: MachineShape | None = None) -> str:
    """The catalog's name: the machine type, ``+<N>x<type>`` appended when the GPUs are attached (N1)."""
    accels = [(t, c) for t, c in accelerators if c > 0]
    bundled = bool(shape and shape.accelerators) or series(machine_type) in BUNDLED_SERIES
    if not accels or bundled:
        return machine_type
    kind = accels[0][0]
    return f"{machine_type}+{sum(c for t, c in accels if t == kind)}x{kind}"


def accelerators_of(accels: Iterable[tuple[str, int]]) -> Accelerators | None:
    """GPU model, count and memory of (accelerator type, count) pairs; the first type names the model."""
    pairs = [(t, c) for t, c in accels if c > 0]
    if not pairs:
        return None
    kind = pairs[0][0]
    count = sum(c for t, c in pairs if t == kind)
    if kind in GPU_MEMORY:
        model, gib = GPU_MEMORY[kind]
        return Accelerators(model, count, gib)
    name = re.sub(r"^nvidia-(tesla-)?", "", kind).upper()
    known = gpu_model(name)
    log.info("event=unknown_accelerator_type type=%s model=%s", kind, known.model if known else name)
    return Accelerators(known.model if known else name, count, known.memory_gib if known else 0.0)


class MachineTypes:
    """One project's machine types (shapes, and which zone offers which) and accelerator types, read once."""

    def __init__(self, clients: GcpClients, project: str) -> None:
        self._clients, self._project = clients, project
        self._lock = threading.Lock()
        self.shapes: dict[str, MachineShape] = {}
        self.offered: dict[str, set[str]] = {}  # zone -> machine types
        self._families_loaded = False
        self._asked: set[str] = set()
        self._accelerators: dict[str, dict[str, int]] | None = None  # zone -> type -> max cards per VM

    def shape(self, name: str) -> MachineShape | None:
        """A shape already read (or a custom type's), without calling the API."""
        return self.shapes.get(name) or custom_shape(name)

    def shapes_for(self, names: Iterable[str]) -> dict[str, MachineShape]:
        """Shapes of ``names``: the GPU families once, then one more filtered call for other types seen."""
        wanted = set(names)
        with self._lock:
            if not self._families_loaded:
                self._read(f"name eq '({'|'.join(GPU_FAMILIES)})-.*'")
                self._families_loaded = True
            missing = sorted(n for n in wanted if n not in self.shapes and n not in self._asked
                             and custom_shape(n) is None and series(n) not in GPU_FAMILIES)
            if missing:
                self._read(f"name eq '({'|'.join(re.escape(n) for n in missing)})'")
                self._asked |= set(missing)
        return {n: s for n in wanted if (s := self.shape(n)) is not None}

    def _read(self, filter_: str) -> None:
        client = self._clients.compute("MachineTypesClient")
        with translated("compute.MachineTypes.AggregatedList", self._clients.where("compute")):
            pager = client.aggregated_list(request={"project": self._project, "max_results": PAGE_SIZE,
                                                    "filter": filter_},
                                           retry=self._clients.retry, timeout=self._clients.timeout)
            for page in pager.pages:
                self._clients.count("compute.MachineTypes.AggregatedList")
                for scope, scoped in page.items.items():
                    for mt in scoped.machine_types:
                        accels = tuple((a.guest_accelerator_type, int(a.guest_accelerator_count))
                                       for a in mt.accelerators)
                        self.shapes[mt.name] = MachineShape(mt.name, int(mt.guest_cpus),
                                                            round(int(mt.memory_mb) / 1024, 2), accels)
                        self.offered.setdefault(last(mt.zone or scope), set()).add(mt.name)

    def accelerator_zones(self, region: str) -> dict[str, dict[str, int]]:
        """Zones of ``region`` -> GPU types attachable there -> the most cards one VM takes (read once)."""
        with self._lock:
            if self._accelerators is None:
                found: dict[str, dict[str, int]] = {}
                client = self._clients.compute("AcceleratorTypesClient")
                with translated("compute.AcceleratorTypes.AggregatedList", self._clients.where("compute")):
                    pager = client.aggregated_list(request={"project": self._project, "max_results": PAGE_SIZE},
                                                   retry=self._clients.retry, timeout=self._clients.timeout)
                    for page in pager.pages:
                        self._clients.count("compute.AcceleratorTypes.AggregatedList")
                        for scope, scoped in page.items.items():
                            for at in scoped.accelerator_types:
                                zone = last(at.zone or scope)
                                found.setdefault(zone, {})[at.name] = int(at.maximum_cards_per_instance)
                self._accelerators = found
            return {z: dict(t) for z, t in self._accelerators.items() if zone_region(z) == region}


_CACHES: weakref.WeakKeyDictionary[GcpClients, dict[str, MachineTypes]] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def machine_types(clients: GcpClients, project: str) -> MachineTypes:
    """The run's machine type cache of ``project`` (one per clients object)."""
    with _CACHES_LOCK:
        per_project = _CACHES.setdefault(clients, {})
        if project not in per_project:
            per_project[project] = MachineTypes(clients, project)
        return per_project[project]


def list_instances(clients: GcpClients, project: str, catalog: PriceCatalog) -> list[Resource]:
    """Every VM of ``project`` in every zone, whatever its status (a TERMINATED VM still has disks)."""
    client = clients.compute("InstancesClient")
    raw: list[Any] = []
    with translated("compute.Instances.AggregatedList", clients.where("compute")):
        pager = client.aggregated_list(request={"project": project, "max_results": PAGE_SIZE},
                                       retry=clients.retry, timeout=clients.timeout)
        for page in pager.pages:
            clients.count("compute.Instances.AggregatedList")
            for scoped in page.items.values():
                raw.extend(scoped.instances)
    shapes = machine_types(clients, project).shapes_for({last(i.machine_type) for i in raw}) if raw else {}
    out = [_resource(project, inst, shapes, catalog) for inst in raw]
    log.info("event=gcp_instances_listed project=%s instances=%d gpu=%d", project, len(out),
             sum(r.has_gpu for r in out))
    return out


def _resource(project: str, inst: Any, shapes: dict[str, MachineShape], catalog: PriceCatalog) -> Resource:
    machine = last(inst.machine_type)
    shape = shapes.get(machine)
    attached = [(last(a.accelerator_type), int(a.accelerator_count)) for a in inst.guest_accelerators]
    itype = instance_type_name(machine, attached, shape)
    spec = catalog.spec(Cloud.GCP, itype)
    if spec is not None:
        gpus, vcpu, memory = spec.accelerators, spec.vcpu, spec.memory_gib
    else:
        gpus = accelerators_of(shape.accelerators if shape and shape.accelerators else attached)
        vcpu, memory = (shape.vcpu, shape.memory_gib) if shape else (None, None)
    zone = last(inst.zone)
    sched = inst.scheduling
    spot = sched.provisioning_model == "SPOT" or bool(sched.preemptible)
    meta = {item.key: item.value for item in inst.metadata.items}
    created_by = meta.get("created-by", "")
    return Resource(
        ref=ResourceRef(Cloud.GCP, project, zone_region(zone), inst.name),
        instance_type=itype,
        state=_STATES.get(inst.status, ResourceState.OTHER),
        pricing_model=PricingModel.SPOT if spot else PricingModel.ON_DEMAND,
        accelerators=gpus,
        tags=dict(inst.labels),
        launched_at=_time(inst.last_start_timestamp) or _time(inst.creation_timestamp),
        zone=zone,
        vcpu=vcpu,
        memory_gib=memory,
        group=last(created_by) if "/instanceGroupManagers/" in created_by else None,
        native_id=str(inst.id) if inst.id else None,
    )


def _time(text: str) -> datetime | None:
    """RFC 3339 as the API writes it (``2018-05-19T05:15:46.024-07:00``); None when absent or unreadable."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else None


def regions_of(resources: Iterable[Resource]) -> list[str]:
    """The regions holding these resources, sorted."""
    return sorted({r.ref.region for r in resources})

"""Machine and accelerator types of the ``gcp_compute`` emulator: the built-in tables, their seeding and routes.

The built-in machine types (A2, A3, G2 with their GPUs; N1 for attached GPUs) carry vCPUs, memory and GPUs
from cloud.google.com/compute/docs/gpus and .../general-purpose-machines; they and the accelerator types
are offered in zones approximating the public "GPU regions and zones" page. ``MachineTypesMixin`` (mixed
into ``GcpComputeEmulator``) seeds types (``add_machine_type``, ``add_accelerator_type``) and answers
``aggregated/machineTypes``, ``zones/{z}/machineTypes[/{name}]`` and ``aggregated/acceleratorTypes`` in the
shapes of the Compute Engine v1 reference (``filter`` honoured only as ``name eq 'RE2 regex'``, full match).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from providers.sandbox.gcp_compute_rest import BASE, ApiError
from providers.sandbox.json_server import Request

DEFAULT_ZONES = ("us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f", "us-east1-b", "us-east1-c",
                 "us-east1-d", "us-east4-a", "us-east4-c", "us-west1-a", "us-west1-b", "europe-west4-a",
                 "europe-west4-b", "europe-west4-c", "asia-southeast1-b", "asia-southeast1-c")
_A100 = ("us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f", "us-east1-b", "us-west1-b",
         "europe-west4-a", "europe-west4-b", "asia-southeast1-b", "asia-southeast1-c")
_A100_80 = ("us-central1-a", "us-central1-c", "us-east4-c", "europe-west4-a", "asia-southeast1-c")
_H100 = ("us-central1-a", "us-central1-c", "us-east4-a", "us-east4-c", "europe-west4-b", "europe-west4-c",
         "asia-southeast1-b", "asia-southeast1-c")
_L4 = ("us-central1-a", "us-central1-b", "us-central1-c", "us-east1-b", "us-east1-c", "us-east1-d", "us-east4-a",
       "us-east4-c", "us-west1-a", "us-west1-b", "europe-west4-a", "europe-west4-b", "europe-west4-c",
       "asia-southeast1-b", "asia-southeast1-c")
_T4 = ("us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f", "us-east1-c", "us-east1-d", "us-east4-a",
       "us-east4-c", "us-west1-a", "us-west1-b", "europe-west4-b", "europe-west4-c", "asia-southeast1-b",
       "asia-southeast1-c")
_V100 = ("us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f", "us-west1-a", "us-west1-b",
         "europe-west4-a", "europe-west4-b", "europe-west4-c")

#: accelerator type -> (description, max cards per instance, zones)
BUILTIN_ACCELERATOR_TYPES: dict[str, tuple[str, int, tuple[str, ...]]] = {
    "nvidia-tesla-t4": ("NVIDIA T4", 4, _T4),
    "nvidia-tesla-v100": ("NVIDIA V100", 8, _V100),
    "nvidia-tesla-p4": ("NVIDIA P4", 4, ("us-central1-a", "us-central1-c", "us-east4-a", "europe-west4-b")),
    "nvidia-tesla-a100": ("NVIDIA A100 40GB", 16, _A100),
    "nvidia-a100-80gb": ("NVIDIA A100 80GB", 8, _A100_80),
    "nvidia-h100-80gb": ("NVIDIA H100 80GB", 8, _H100),
    "nvidia-h100-mega-80gb": ("NVIDIA H100 80GB Mega", 8, _H100),
    "nvidia-l4": ("NVIDIA L4", 8, _L4),
}


def builtin_machine_types() -> list[tuple[str, int, int, tuple[tuple[str, int], ...], tuple[str, ...]]]:
    """(name, vCPUs, memory MB, ((accelerator type, count),), zones) of the built-in machine types."""
    out = []
    for n, gib in ((1, 85), (2, 170), (4, 340), (8, 680)):
        out.append((f"a2-highgpu-{n}g", 12 * n, gib * 1024, (("nvidia-tesla-a100", n),), _A100))
        out.append((f"a2-ultragpu-{n}g", 12 * n, gib * 2048, (("nvidia-a100-80gb", n),), _A100_80))
        out.append((f"a3-highgpu-{n}g", 26 * n, 234 * n * 1024, (("nvidia-h100-80gb", n),), _H100))
    out.append(("a2-megagpu-16g", 96, 1360 * 1024, (("nvidia-tesla-a100", 16),), _A100))
    out.append(("a3-megagpu-8g", 208, 1872 * 1024, (("nvidia-h100-mega-80gb", 8),), _H100))
    for cpus, gpus in ((4, 1), (8, 1), (12, 1), (16, 1), (24, 2), (32, 1), (48, 4), (96, 8)):
        out.append((f"g2-standard-{cpus}", cpus, cpus * 4096, (("nvidia-l4", gpus),), _L4))
    for cpus in (1, 2, 4, 8, 16, 32, 64, 96):
        out.append((f"n1-standard-{cpus}", cpus, cpus * 3840, (), DEFAULT_ZONES))  # 3.75 GB per vCPU
        if cpus > 1:
            out.append((f"n1-highmem-{cpus}", cpus, cpus * 6656, (), DEFAULT_ZONES))  # 6.5 GB per vCPU
    return out


class MachineTypesMixin:
    """Seeding and routes of machine and accelerator types; the host (``GcpComputeEmulator``) holds the state
    and the paging helpers annotated below."""

    zones: list[str]
    machine_types: dict[tuple[str, str], dict[str, Any]]  # (zone, name), every project alike
    accelerator_types: dict[tuple[str, str], dict[str, Any]]
    types_page_size: int
    _id: Callable[[], str]
    _zone: Callable[[str], None]
    _list: Callable[..., dict[str, Any]]
    _aggregated: Callable[..., dict[str, Any]]
    _zone_scopes: Callable[[], list[str]]

    # -- seeding -------------------------------------------------------------------------------
    def add_machine_type(self, name: str, *, guest_cpus: int, memory_mb: int,
                         accelerators: Iterable[tuple[str, int]] = (), zones: Iterable[str] | None = None) -> None:
        """Offer machine type ``name`` in ``zones`` (default: every known zone); ``accelerators`` are the GPUs
        bundled with it as (accelerator type, count), e.g. ``[("nvidia-tesla-a100", 1)]``."""
        accels = [{"guestAcceleratorType": t, "guestAcceleratorCount": c} for t, c in accelerators]
        gpus = sum(c for _, c in accelerators)
        for zone in self.zones if zones is None else zones:
            self._zone(zone)
            body = {"kind": "compute#machineType", "id": self._id(), "creationTimestamp": "1969-12-31T16:00:00.000-08:00",
                    "name": name, "description": f"{guest_cpus} vCPUs, {memory_mb / 1024:g} GB RAM"
                    + (f", {gpus} GPU{'s' if gpus > 1 else ''}" if gpus else ""),
                    "guestCpus": guest_cpus, "memoryMb": memory_mb, "imageSpaceGb": 0, "maximumPersistentDisks": 128,
                    "maximumPersistentDisksSizeGb": "263168", "zone": zone, "isSharedCpu": False,
                    "architecture": "X86_64", "selfLink": f"{BASE}/projects/emulator/zones/{zone}/machineTypes/{name}"}
            if accels:
                body["accelerators"] = accels
            self.machine_types[(zone, name)] = body

    def add_accelerator_type(self, name: str, *, zones: Iterable[str], max_cards: int = 8,
                             description: str | None = None) -> None:
        """Offer GPU ``name`` (e.g. ``nvidia-tesla-t4``) for attachment in ``zones``."""
        for zone in zones:
            self._zone(zone)
            self.accelerator_types[(zone, name)] = {
                "kind": "compute#acceleratorType", "id": self._id(), "creationTimestamp": "1969-12-31T16:00:00.000-08:00",
                "name": name, "description": description or name, "zone": f"{BASE}/projects/emulator/zones/{zone}",
                "maximumCardsPerInstance": max_cards,
                "selfLink": f"{BASE}/projects/emulator/zones/{zone}/acceleratorTypes/{name}"}

    # -- routes --------------------------------------------------------------------------------
    def _name_filter(self, request: Request) -> Callable[[str], bool]:
        m = re.fullmatch(r"\s*name\s+eq\s+(['\"]?)(.+)\1\s*", request.arg("filter") or "")
        if not m:
            return lambda _: True  # other filters are ignored (documented)
        pattern = re.compile(m.group(2))
        return lambda name: pattern.fullmatch(name) is not None

    def _aggregated_machine_types(self, request: Request, project: str) -> dict[str, Any]:
        keep = self._name_filter(request)
        scoped = [(f"zones/{z}", self._typed(project, t)) for (z, n), t in self.machine_types.items() if keep(n)]
        return self._aggregated(request, project, "compute#machineTypeAggregatedList", "machineTypes", scoped,
                                self._zone_scopes(), self.types_page_size)

    def _typed(self, project: str, body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "selfLink": body["selfLink"].replace("/projects/emulator/", f"/projects/{project}/"),
                **({"zone": body["zone"].replace("/projects/emulator/", f"/projects/{project}/")}
                   if body["zone"].startswith("http") else {})}

    def _list_machine_types(self, request: Request, project: str, zone: str) -> dict[str, Any]:
        keep = self._name_filter(request)
        items = sorted((self._typed(project, t) for (z, n), t in self.machine_types.items() if z == zone and keep(n)),
                       key=lambda t: t["name"])
        return self._list(request, "compute#machineTypeList", f"projects/{project}/zones/{zone}/machineTypes", items,
                          self.types_page_size)

    def _get_machine_type(self, request: Request, project: str, zone: str, name: str) -> dict[str, Any]:
        if (zone, name) not in self.machine_types:
            raise ApiError(404, f"The resource 'projects/{project}/zones/{zone}/machineTypes/{name}' was not found")
        return self._typed(project, self.machine_types[(zone, name)])

    def _aggregated_accelerator_types(self, request: Request, project: str) -> dict[str, Any]:
        scoped = [(f"zones/{z}", self._typed(project, t)) for (z, _), t in self.accelerator_types.items()]
        return self._aggregated(request, project, "compute#acceleratorTypeAggregatedList", "acceleratorTypes",
                                scoped, self._zone_scopes(), self.types_page_size)

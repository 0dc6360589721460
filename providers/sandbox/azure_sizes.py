"""The VM sizes the Resource Manager emulator (``azure_arm``) sells: the built-in table, Resource SKUs, size checks.

Built-in VM sizes (``SIZES``): vCPUs, memory (GiB) and GPU count from the Azure size pages
(learn.microsoft.com/azure/virtual-machines/sizes/gpu-accelerated/*: NCasT4_v3, NCv3, NC A100 v4,
ND A100 v4, NDm A100 v4, NC/NCC H100 v5, ND H100 v5, ND H200 v5, ND MI300X v5, NVadsA10_v5, NCads A10 v4).
Partial-GPU sizes (NV6/12/18ads_A10_v5 at 1/6, 1/3, 1/2 of an A10; NC8/16ads_A10_v4) report ``GPUs`` 1,
as catalogs built from the Resource SKUs API show them (skypilot-org/skypilot issue #3708). Every size is
offered in every location of ``LOCATIONS`` unless seeded otherwise (``AzureArmEmulator.add_sku``).

``GET .../providers/Microsoft.Compute/skus`` (Resource SKUs 2021-07-01, ``$filter=location eq 'x'``) lists
one item per size and location (``sku_json``): capabilities ``vCPUs``, ``MemoryGB``, ``GPUs`` (GPU sizes
only), and a ``Location`` restriction ``NotAvailableForSubscription`` where ``restrict_sku`` marked it.
A resize to a size the location does not sell, or marks NotAvailableForSubscription, is refused with 409
OperationNotAllowed (``SkuCatalog._check_size``), as Azure refuses a size the VM's location or cluster lacks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from providers.sandbox.azure_arm_shapes import ArmError
from providers.sandbox.json_server import Request

LOCATIONS = ("eastus", "eastus2", "westus2", "westus3", "southcentralus", "westeurope")

#: (size, vCPUs, MemoryGB, GPUs, family)
SIZES: tuple[tuple[str, int, float, int, str], ...] = (
    ("Standard_NC4as_T4_v3", 4, 28, 1, "standardNCASv3_T4Family"),
    ("Standard_NC8as_T4_v3", 8, 56, 1, "standardNCASv3_T4Family"),
    ("Standard_NC16as_T4_v3", 16, 110, 1, "standardNCASv3_T4Family"),
    ("Standard_NC64as_T4_v3", 64, 440, 4, "standardNCASv3_T4Family"),
    ("Standard_NC6s_v3", 6, 112, 1, "standardNCSv3Family"),
    ("Standard_NC12s_v3", 12, 224, 2, "standardNCSv3Family"),
    ("Standard_NC24s_v3", 24, 448, 4, "standardNCSv3Family"),
    ("Standard_NC24rs_v3", 24, 448, 4, "standardNCSv3Family"),
    ("Standard_NC24ads_A100_v4", 24, 220, 1, "StandardNCADSA100v4Family"),
    ("Standard_NC48ads_A100_v4", 48, 440, 2, "StandardNCADSA100v4Family"),
    ("Standard_NC96ads_A100_v4", 96, 880, 4, "StandardNCADSA100v4Family"),
    ("Standard_ND96asr_v4", 96, 900, 8, "standardNDASv4_A100Family"),
    ("Standard_ND96amsr_A100_v4", 96, 1900, 8, "standardNDAMSv4_A100Family"),
    ("Standard_NC40ads_H100_v5", 40, 320, 1, "StandardNCadsH100v5Family"),
    ("Standard_NC80adis_H100_v5", 80, 640, 2, "StandardNCadsH100v5Family"),
    ("Standard_NCC40ads_H100_v5", 40, 320, 1, "StandardNCCadsH100v5Family"),
    ("Standard_ND96isr_H100_v5", 96, 1900, 8, "standardNDSH100v5Family"),
    ("Standard_ND96isr_H200_v5", 96, 1850, 8, "standardNDSH200v5Family"),
    ("Standard_ND96isr_MI300X_v5", 96, 1850, 8, "standardNDISRMI300Xv5Family"),
    ("Standard_NV6ads_A10_v5", 6, 55, 1, "StandardNVADSA10v5Family"),
    ("Standard_NV12ads_A10_v5", 12, 110, 1, "StandardNVADSA10v5Family"),
    ("Standard_NV18ads_A10_v5", 18, 220, 1, "StandardNVADSA10v5Family"),
    ("Standard_NV36ads_A10_v5", 36, 440, 1, "StandardNVADSA10v5Family"),
    ("Standard_NV36adms_A10_v5", 36, 880, 1, "StandardNVADSA10v5Family"),
    ("Standard_NV72ads_A10_v5", 72, 880, 2, "StandardNVADSA10v5Family"),
    ("Standard_NC8ads_A10_v4", 8, 100, 1, "StandardNCADSA10v4Family"),
    ("Standard_NC16ads_A10_v4", 16, 200, 1, "StandardNCADSA10v4Family"),
    ("Standard_NC32ads_A10_v4", 32, 400, 1, "StandardNCADSA10v4Family"),
    ("Standard_A1_v2", 1, 2, 0, "standardAv2Family"),
    ("Standard_DS1_v2", 1, 3.5, 0, "standardDSv2Family"),
    ("Standard_D2s_v3", 2, 8, 0, "standardDSv3Family"),
    ("Standard_D4ds_v5", 4, 16, 0, "standardDDSv5Family"),
    ("Standard_D8s_v5", 8, 32, 0, "standardDSv5Family"),
)


def sku_json(size: str, spec: tuple[int, float, int, str], location: str, restricted: bool) -> dict[str, Any]:
    """One Resource SKUs item: ``size`` with ``spec`` (vCPUs, MemoryGB, GPUs, family) in ``location``,
    marked NotAvailableForSubscription there when ``restricted``."""
    vcpus, memory, gpus, family = spec
    caps = [("MaxResourceVolumeMB", "0"), ("vCPUs", str(vcpus)), ("MemoryGB", f"{memory:g}"),
            ("LowPriorityCapable", "True"), ("vCPUsAvailable", str(vcpus)), ("HyperVGenerations", "V1,V2")]
    if gpus:
        caps.append(("GPUs", str(gpus)))
    restrictions = []
    if restricted:
        restrictions.append({"type": "Location", "values": [location], "reasonCode": "NotAvailableForSubscription",
                             "restrictionInfo": {"locations": [location]}})
    return {"resourceType": "virtualMachines", "name": size, "tier": "Standard", "size": size.split("_", 1)[-1],
            "family": family, "locations": [location],
            "locationInfo": [{"location": location, "zones": ["1", "2", "3"], "zoneDetails": []}],
            "capabilities": [{"name": n, "value": v} for n, v in caps], "restrictions": restrictions}


class SkuCatalog:
    """The size part of ``AzureArmEmulator`` (a mixin). The emulator sets ``skus`` (size -> (vCPUs, MemoryGB,
    GPUs, family), from ``SIZES``), ``sku_locations`` (size -> locations; default ``LOCATIONS``) and
    ``restricted`` ((location, size) lower-cased, NotAvailableForSubscription)."""

    skus: dict[str, tuple[int, float, int, str]]
    sku_locations: dict[str, tuple[str, ...]]
    restricted: set[tuple[str, str]]

    def add_sku(self, size: str, vcpus: int, memory_gb: float, gpus: int = 0, *, family: str = "standardCustomFamily",
                locations: Sequence[str] | None = None) -> None:
        """Another VM size for the Resource SKUs route (default: offered in every location of ``LOCATIONS``)."""
        self.skus[size] = (vcpus, memory_gb, gpus, family)
        if locations is not None:
            self.sku_locations[size] = tuple(locations)

    def restrict_sku(self, location: str, size: str) -> None:
        """Mark ``size`` NotAvailableForSubscription in ``location`` (listed, with a Location restriction)."""
        self.restricted.add((location.lower(), size.lower()))

    def _sku_items(self, request: Request) -> list[dict[str, Any]]:
        """The Resource SKUs items ``GET .../skus`` lists (before paging), filtered by ``location eq 'x'``."""
        wanted = request.arg("$filter")
        location = None
        if wanted:
            head, _, value = wanted.partition(" eq ")
            if head.strip().lower() != "location" or not value:
                raise ArmError(400, "InvalidFilter", f"The filter '{wanted}' is not supported; use location eq 'x'.")
            location = value.strip().strip("'").lower()
        return [sku_json(size, self.skus[size], loc, (loc.lower(), size.lower()) in self.restricted)
                for size in self.skus
                for loc in self.sku_locations.get(size, LOCATIONS) if location in (None, loc.lower())]

    def _check_size(self, size: str, location: str, name: str) -> None:
        known = size in self.skus and location.lower() in [x.lower() for x in self.sku_locations.get(size, LOCATIONS)]
        if not known or (location.lower(), size.lower()) in self.restricted:
            raise ArmError(409, "OperationNotAllowed", f"Unable to resize the VM '{name}' since the requested size "
                                                       f"{size} is not available in the current region ({location}).")

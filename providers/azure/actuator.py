"""Mutation primitives on Azure VMs and scale sets for the guarded apply. Nothing here deletes anything.

Each call starts Compute's long-running operation and waits on its poller (``.result()``): the
operation's ``Azure-AsyncOperation`` status until ``Succeeded``, errors translated into
``providers.errors``. Build the clients with ``polling_interval=0`` in tests (polls otherwise wait
30 s when the service sends no ``Retry-After``). Every request is counted: the mutation under its
operation name, each status poll and final read as ``compute.Operations.Poll``.

Stopping a VM is ``deallocate``, never ``powerOff`` alone: a powered-off VM keeps its hardware
allocated and is still billed for compute; only deallocation releases it ("You are not billed for
the compute resources", Compute REST reference for virtualMachines/deallocate).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from providers.azure.client import AzureClients, translated
from providers.errors import ProviderError

log = logging.getLogger(__name__)

POLL = "compute.Operations.Poll"


@dataclass(frozen=True)
class ArmId:
    """The parts of a Compute ARM id: a VM, a scale set, or a scale set instance (``instance_id`` set)."""

    subscription: str
    resource_group: str
    kind: str  # "virtualMachines" | "virtualMachineScaleSets"
    name: str
    instance_id: str | None = None


def parse_id(resource_id: str) -> ArmId:
    """Parse ``/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Compute/{kind}/{name}``.

    Scale set instances add ``/virtualMachines/{instance id}`` to their scale set's id.
    """
    parts = resource_id.strip("/").split("/")
    low = [p.lower() for p in parts]
    ok = (len(parts) in (8, 10) and low[0] == "subscriptions" and low[2] == "resourcegroups"
          and low[4] == "providers" and low[5] == "microsoft.compute"
          and low[6] in ("virtualmachines", "virtualmachinescalesets")
          and (len(parts) == 8 or (low[6] == "virtualmachinescalesets" and low[8] == "virtualmachines")))
    if not ok:
        raise ProviderError(f"azure: not a Compute VM or scale set id: {resource_id!r}", code="InvalidResourceId",
                            hint="pass the id as the inventory lists it (ResourceRef.id)")
    kind = "virtualMachines" if low[6] == "virtualmachines" else "virtualMachineScaleSets"
    return ArmId(parts[1], parts[3], kind, parts[7], parts[9] if len(parts) == 10 else None)


def _counter(clients: AzureClients, operation: str) -> Callable[[Any], None]:
    """A ``raw_response_hook`` counting the mutation once and every later request as a poll."""
    seen = [0]

    def hook(_response: Any) -> None:
        clients.count(operation if seen[0] == 0 else POLL)
        seen[0] += 1

    return hook


def _vm(resource_id: str) -> ArmId:
    arm = parse_id(resource_id)
    if arm.kind == "virtualMachineScaleSets" and arm.instance_id is None:
        raise ProviderError(f"azure: {resource_id} is a scale set, not a VM", code="InvalidResourceId",
                            hint="use set_scale_set_capacity for scale sets")
    return arm


def _power(clients: AzureClients, vm_id: str, action: str) -> None:
    arm = _vm(vm_id)
    compute = clients.compute(arm.subscription)
    if arm.instance_id is None:
        operation = f"compute.VirtualMachines.{action.capitalize()}"
        begin = getattr(compute.virtual_machines, f"begin_{action}")
        args: tuple[str, ...] = (arm.resource_group, arm.name)
    else:
        operation = f"compute.VirtualMachineScaleSetVMs.{action.capitalize()}"
        begin = getattr(compute.virtual_machine_scale_set_vms, f"begin_{action}")
        args = (arm.resource_group, arm.name, arm.instance_id)
    with translated(operation, clients.where):
        begin(*args, raw_response_hook=_counter(clients, operation)).result()
    log.info("event=azure_%s resource=%s", action, vm_id)


def deallocate(clients: AzureClients, vm_id: str) -> None:
    """Deallocate a VM (or a Uniform scale set instance): compute released, compute billing stops."""
    _power(clients, vm_id, "deallocate")


def start(clients: AzureClients, vm_id: str) -> None:
    """Start a VM (or a Uniform scale set instance) again."""
    _power(clients, vm_id, "start")


def resize(clients: AzureClients, vm_id: str, size: str) -> str:
    """Change a VM's size (``hardwareProfile.vmSize``); returns the size Azure reports afterwards.

    Azure resizes a running VM by restarting it; a size its current hardware cluster lacks is
    refused (409) until the VM is deallocated. The caller decides which to do.
    """
    arm = _vm(vm_id)
    if arm.instance_id is not None:
        raise ProviderError(f"azure: {vm_id} is a scale set instance; resize its scale set's model instead",
                            code="InvalidResourceId")
    operation = "compute.VirtualMachines.Update"
    with translated(operation, clients.where):
        poller = clients.compute(arm.subscription).virtual_machines.begin_update(
            arm.resource_group, arm.name, {"properties": {"hardwareProfile": {"vmSize": size}}},
            raw_response_hook=_counter(clients, operation))
        result = poller.result()
    log.info("event=azure_resize resource=%s size=%s", vm_id, size)
    reported = getattr(getattr(result, "hardware_profile", None), "vm_size", None)
    return str(getattr(reported, "value", reported) or size)


def set_scale_set_capacity(clients: AzureClients, scale_set_id: str, capacity: int) -> int:
    """Set a scale set's instance count (``sku.capacity``); returns the capacity Azure reports afterwards.

    An enabled autoscale setting on the scale set may move it again: the caller changes that setting
    (Azure Monitor) when the new size must hold.
    """
    arm = parse_id(scale_set_id)
    if arm.kind != "virtualMachineScaleSets" or arm.instance_id is not None:
        raise ProviderError(f"azure: not a scale set id: {scale_set_id!r}", code="InvalidResourceId")
    if capacity < 0:
        raise ProviderError(f"azure: capacity must be >= 0, not {capacity}", code="InvalidParameter")
    sets = clients.compute(arm.subscription).virtual_machine_scale_sets
    with translated("compute.VirtualMachineScaleSets.Get", clients.where):
        current = sets.get(arm.resource_group, arm.name)
    clients.count("compute.VirtualMachineScaleSets.Get")
    sku = {"name": current.sku.name, "tier": current.sku.tier, "capacity": capacity}
    operation = "compute.VirtualMachineScaleSets.Update"
    with translated(operation, clients.where):
        poller = sets.begin_update(arm.resource_group, arm.name, {"sku": sku},
                                   raw_response_hook=_counter(clients, operation))
        result = poller.result()
    log.info("event=azure_scale_set_capacity resource=%s capacity=%d", scale_set_id, capacity)
    return int(getattr(getattr(result, "sku", None), "capacity", None) or capacity)

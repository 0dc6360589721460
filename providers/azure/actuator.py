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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from providers.azure.client import AzureClients, translated
from providers.azure.inventory import text
from providers.azure.permissions import ACTUATOR_CALLS, kind_actions
from providers.base import DeclaredActuator, Outcome, Preview, int_param
from providers.errors import ProviderError
from providers.model import Action, Cloud

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


def vm_state(clients: AzureClients, vm_id: str) -> dict[str, Any]:
    """A VM's power ``state`` (the ``PowerState/*`` code: running, deallocated, stopped, ...) and ``size``."""
    arm = _vm(vm_id)
    if arm.instance_id is not None:
        raise ProviderError(f"azure: {vm_id} is a scale set instance; act on its scale set", code="InvalidResourceId")
    with translated("compute.VirtualMachines.Get", clients.where):
        vm = clients.compute(arm.subscription).virtual_machines.get(arm.resource_group, arm.name,
                                                                    expand="instanceView")
    clients.count("compute.VirtualMachines.Get")
    statuses = getattr(getattr(vm, "instance_view", None), "statuses", None) or []
    codes = [str(getattr(s, "code", "") or "") for s in statuses]
    power = next((c.split("/", 1)[1] for c in codes if c.lower().startswith("powerstate/")), "")
    return {"state": power.lower(), "size": text(getattr(getattr(vm, "hardware_profile", None), "vm_size", None))}


def scale_set_capacity(clients: AzureClients, scale_set_id: str) -> dict[str, Any]:
    arm = parse_id(scale_set_id)
    if arm.kind != "virtualMachineScaleSets" or arm.instance_id is not None:
        raise ProviderError(f"azure: not a scale set id: {scale_set_id!r}", code="InvalidResourceId")
    with translated("compute.VirtualMachineScaleSets.Get", clients.where):
        current = clients.compute(arm.subscription).virtual_machine_scale_sets.get(arm.resource_group, arm.name)
    clients.count("compute.VirtualMachineScaleSets.Get")
    return {"capacity": int(getattr(current.sku, "capacity", 0) or 0)}


#: Azure power states a stop (a deallocation) is done or under way in, a start is.
_DEALLOCATING = ("deallocating", "deallocated")
_STARTING = ("starting", "running")
_TRANSITIONAL = ("starting", "stopping", "deallocating")


class AzureActuator(DeclaredActuator):
    """``providers.base.Actuator`` over the primitives above. ``Action.ref.id`` is the ARM id of a VM (or, for
    ``scale``, a scale set). A ``stop`` (or ``deallocate``) always deallocates, never a plain power-off (a
    powered-off VM, PowerState/stopped, is still billed for compute: it is deallocated too). Params: ``resize``
    ``from_type``, ``to_type`` (``hardwareProfile.vmSize``; a running VM restarts); ``scale`` ``capacity``
    (``sku.capacity``). State: ``{"state": power state, "size": vmSize}`` for a VM, ``{"capacity": n}`` for a
    scale set. ARM has no dry run: ``preview`` reads the resource. Undo never powers off. Kinds and permissions
    come from ``permissions.ACTUATOR_CALLS``."""

    cloud = Cloud.AZURE
    NAME = "Azure"
    CALLS = ACTUATOR_CALLS

    REASONS: Mapping[str, str] = {
        "power_off": "never a plain power-off: a powered-off VM is still billed for compute (stop deallocates)",
        "schedule": "off-hours schedules belong to Azure's own schedulers (the VM's auto-shutdown, or Start/Stop "
                    "VMs v2 for start and stop), not to costagent",
        "tag": "tags are not changed by costagent on Azure",
        "spot": "spot moves are advice only: a relaunch",
        "commitment": "commitments are advice only",
        "consolidate": "consolidation is advice only: it moves workloads",
    }

    def __init__(self, clients: AzureClients) -> None:
        self.clients = clients

    def kind_permissions(self, kind: str) -> tuple[str, ...]:
        return kind_actions(kind)

    def read(self, action: Action) -> dict[str, Any]:
        self._check(action)
        if action.kind == "scale":
            return scale_set_capacity(self.clients, action.ref.id)
        return vm_state(self.clients, action.ref.id)

    def effect_seen(self, action: Action, state: Mapping[str, Any]) -> bool:
        self._check(action)
        if action.kind in ("stop", "deallocate"):
            return state.get("state") in _DEALLOCATING
        if action.kind == "start":
            return state.get("state") in _STARTING
        if action.kind == "resize":
            return state.get("size") == action.params.get("to_type")
        return state.get("capacity") == int_param(action, "capacity")

    def _refusal(self, action: Action, state: Mapping[str, Any]) -> tuple[str, str]:
        """Why ``action`` cannot be done on a resource in ``state``: (code, reason), ("", "") when it can."""
        power, params = state.get("state"), action.params
        if action.kind in ("stop", "deallocate") and power in _DEALLOCATING:
            return "IncorrectState", f"the VM is {power} already"
        if action.kind == "start" and power in _STARTING:
            return "IncorrectState", f"the VM is {power} already"
        if action.kind in ("stop", "deallocate", "start") and power in _TRANSITIONAL:
            return "IncorrectState", f"the VM is {power}: wait until that operation ends"
        if action.kind == "resize":
            to_size = str(params.get("to_type") or "")
            if not to_size:
                return "InvalidParameter", 'no params["to_type"]'
            if params.get("from_type") and params["from_type"] != state.get("size"):
                return "StaleAction", f"the VM is {state.get('size')}, not {params['from_type']}: audit again"
            if to_size == state.get("size"):
                return "NoChange", f"the VM is {to_size} already"
        if action.kind == "scale":
            capacity = int_param(action, "capacity")
            if capacity is None or capacity < 0:
                return "InvalidParameter", (f'params["capacity"] must be a non-negative integer, not '
                                            f'{params.get("capacity")!r}')
            if capacity == state.get("capacity"):
                return "NoChange", f"the scale set's capacity is {capacity} already"
        return "", ""

    def preview(self, action: Action) -> Preview:
        state = self.read(action)
        _, why = self._refusal(action, state)
        if why:
            return Preview(action, False, False, state, why)
        power, detail = state.get("state"), ""
        if action.kind in ("stop", "deallocate"):
            detail = ("powered off but still allocated (billed for compute): deallocating releases it"
                      if power == "stopped" else "deallocates the VM (compute released, no longer billed)")
        elif action.kind == "resize":
            detail = f"{state['size']} -> {action.params['to_type']}" + (
                "; Azure restarts a running VM to resize it" if power == "running" else "")
        elif action.kind == "scale":
            detail = f"capacity {state['capacity']} -> {int_param(action, 'capacity')}"
        return Preview(action, True, False, state, detail)

    def _apply(self, action: Action, kind: str, params: Mapping[str, Any]) -> None:
        if kind in ("stop", "deallocate"):
            deallocate(self.clients, action.ref.id)
        elif kind == "start":
            start(self.clients, action.ref.id)
        elif kind == "resize":
            resize(self.clients, action.ref.id, str(params["to_type"]))
        elif kind == "scale":
            set_scale_set_capacity(self.clients, action.ref.id, int(params["capacity"]))

    def undo(self, action: Action, before: Mapping[str, Any]) -> Outcome:
        """Bring the resource back to ``before``: start a VM a stop deallocated, deallocate a VM a start started
        (never a power-off: a VM that was powered off comes back deallocated, said in ``Outcome.note``), the
        size back (a running VM restarts), the capacity back. Nothing to do is no call."""
        now = self.read(action)
        kind, params, note = action.kind, dict(action.params), ""
        if kind in ("stop", "deallocate", "start"):
            was = str(before.get("state"))
            if self.effect_seen(action, before):  # so before the action: it changed nothing
                kind, note = "", f"it was {was} before the {action.kind}: nothing to undo"
            elif kind == "start" and was in ("deallocated", "stopped"):
                kind = "deallocate"
                if was == "stopped":
                    note = "it was powered off (stopped, still billed); it is deallocated instead: costagent never " \
                           "powers off"
                if now.get("state") in _DEALLOCATING:
                    kind = ""
            elif kind != "start" and was == "stopped":
                kind, note = "", ("it was powered off (stopped, still billed); it stays deallocated: costagent "
                                  "never powers off")
            elif kind != "start" and was == "running":
                kind = "start"
                if now.get("state") in _STARTING:
                    kind, note = "", f"it is {now.get('state')} already"
            else:
                raise ProviderError(f"azure: cannot undo {action.kind} of {action.ref.id}: it was {was}",
                                    code="UndoUnsupported")
        elif kind == "resize":
            params = {"to_type": before["size"]}
            if now.get("size") == before["size"]:
                kind, note = "", f"it is {before['size']} already"
            elif now.get("state") == "running":
                note = "Azure restarted the running VM to resize it back"
        elif kind == "scale":
            params = {"capacity": before["capacity"]}
            if now.get("capacity") == before["capacity"]:
                kind, note = "", f"its capacity is {before['capacity']} already"
        if kind:
            self._apply(action, kind, params)
        return Outcome(action, now, self.read(action), note)


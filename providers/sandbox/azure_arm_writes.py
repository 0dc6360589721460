"""The Compute write routes of the Resource Manager emulator (``azure_arm``): power actions, updates, resizes.

Written from the public REST reference (Compute 2024-11-01 .. 2026-04-01), each change a long-running
operation (``azure_lro``) that lands at completion:

- ``POST .../virtualMachines/{vm}/{deallocate|start|powerOff}`` and the same on a Uniform scale set's
  instance: 202; until completion the VM shows the transitional power state (deallocating, starting,
  stopping). ``powerOff`` of a deallocated (or deallocating) VM is 409 OperationNotAllowed.
- ``PATCH``/``PUT .../virtualMachines/{vm}``: ``hardwareProfile.vmSize`` (a resize) and ``tags``; 200 with
  the VM (``provisioningState`` Updating, the new size already shown). A ``PUT`` of an unknown VM creates it
  (201, Creating; ``location`` and ``hardwareProfile.vmSize`` required).
- ``PATCH``/``PUT .../virtualMachineScaleSets/{ss}``: ``sku.capacity`` (scale out/in), ``sku.name`` (a
  resize), ``tags``; 200 with the scale set (Updating).

Resizes are allowed in any power state and recorded in the emulator's ``resizes`` (``Resize``) with the
power state at the time; a size the location does not sell is refused with 409 (``azure_sizes``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from providers.sandbox.azure_arm_shapes import ArmError, ScaleSet, Vm, rid, vm_json
from providers.sandbox.json_server import Request, Response


@dataclass(frozen=True)
class Resize:
    """A resize the emulator accepted: what tests and the demo check after an apply."""

    resource_id: str
    old_size: str
    new_size: str
    power_state: str  # the VM's power state when the resize was asked for


class ComputeWrites:
    """The write part of ``AzureArmEmulator`` (a mixin). The emulator provides its state (``_vms``,
    ``resizes``), seeding (``add_vm``, ``_set_capacity``, ``_set_json``), operations (``_start``,
    ``LongRunningOperations``) and size checks (``_check_size``, ``SkuCatalog``)."""

    _vms: dict[str, Vm]
    resizes: list[Resize]
    add_vm: Callable[..., dict[str, Any]]
    _set_capacity: Callable[[ScaleSet, int], None]
    _set_json: Callable[[ScaleSet], dict[str, Any]]
    _start: Callable[[Request, Vm | ScaleSet, Callable[[], None]], dict[str, str]]
    _check_size: Callable[[str, str, str], None]

    def _vm_action(self, request: Request, vm: Vm, action: str) -> Response:
        final = {"deallocate": "deallocated", "poweroff": "stopped", "start": "running"}.get(action)
        if final is None:
            raise ArmError(404, "ResourceNotFound", f"Action '{action}' is not emulated.")
        if action == "poweroff" and vm.power in ("deallocated", "deallocating"):
            raise ArmError(409, "OperationNotAllowed", f"Operation 'powerOff' is not allowed on VM '{vm.name}' "
                                                       "since the VM is deallocated or marked to be deallocated.")
        transitional = {"deallocated": "deallocating", "stopped": "stopping", "running": "starting"}[final]

        def apply() -> None:
            vm.power = final

        headers = self._start(request, vm, apply)
        if vm.power != final:
            vm.power = transitional
        return Response(202, None, headers)

    def _update_vm(self, request: Request, sub: str, rg: str, name: str, vm: Vm | None) -> Response:
        body = request.json() or {}
        props = body.get("properties") or {}
        new_size = (props.get("hardwareProfile") or {}).get("vmSize")
        created = vm is None
        if vm is None:  # PUT of a new VM
            if not body.get("location") or not new_size:
                raise ArmError(400, "InvalidParameter", "A new VM needs 'location' and 'hardwareProfile.vmSize'.")
            self.add_vm(sub, rg, name, new_size, body["location"], tags=body.get("tags"),
                        priority=props.get("priority") or "Regular", zones=body.get("zones"))
            vm = self._vms[rid(sub, rg, "virtualMachines", name).lower()]
            vm.provisioning = "Creating"
        elif new_size and new_size != vm.size:
            self._check_size(new_size, vm.location, vm.name)
            self.resizes.append(Resize(vm.id, vm.size, new_size, vm.power))
        target, tags = vm, body.get("tags")

        def apply() -> None:
            if new_size:
                target.size = new_size
            if tags is not None and not created:
                target.tags = dict(tags)

        headers = self._start(request, vm, apply)
        headers.pop("Location")
        if not created:
            vm.provisioning = "Updating"
        answer = vm_json(vm)
        if new_size:
            answer["properties"]["hardwareProfile"]["vmSize"] = new_size
        return Response(201 if created else 200, answer, headers)

    def _update_set(self, request: Request, ss: ScaleSet) -> Response:
        body = request.json() or {}
        sku = body.get("sku") or {}
        capacity, new_size, tags = sku.get("capacity"), sku.get("name"), body.get("tags")
        if capacity is not None and (not isinstance(capacity, int) or capacity < 0):
            raise ArmError(400, "InvalidParameter", "sku.capacity must be a non-negative integer.")
        if new_size and new_size != ss.size:
            self._check_size(new_size, ss.location, ss.name)
            self.resizes.append(Resize(ss.id, ss.size, new_size, ss.power))

        def apply() -> None:
            if new_size:
                ss.size = new_size
            if capacity is not None:
                self._set_capacity(ss, capacity)
            if tags is not None:
                ss.tags = dict(tags)

        headers = self._start(request, ss, apply)
        headers.pop("Location")
        ss.provisioning = "Updating"
        return Response(200, self._set_json(ss), headers)

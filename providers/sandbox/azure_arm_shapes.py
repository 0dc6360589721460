"""The records and wire shapes of the Resource Manager emulator (``azure_arm``): VMs, scale sets, ARM errors.

- ``Vm`` / ``ScaleSet``: the state the emulator holds per VM (standalone, Flexible member or Uniform
  instance) and per scale set, with their ARM ids (``rid``).
- The JSON Compute answers them in, shaped on recorded answers (cloud-custodian's c7n_azure cassettes: VM
  list / ``$expand=instanceView`` / scale set list): ``vm_json`` (``properties.instanceView.statuses``
  with ``ProvisioningState/...`` and ``PowerState/...`` when asked), ``member_json`` (a Uniform instance:
  ``instanceId``, ``sku`` instead of ``hardwareProfile``), ``set_json`` (``sku.capacity`` = instance count).
- ``ArmError``: what every route raises, answered as ARM's ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

COMPUTE = "Microsoft.Compute"
POWER_STATES = ("running", "deallocated", "stopped", "deallocating", "starting", "stopping")
_DISPLAY = {"running": "VM running", "deallocated": "VM deallocated", "stopped": "VM stopped",
            "deallocating": "VM deallocating", "starting": "VM starting", "stopping": "VM stopping"}


class ArmError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


@dataclass
class Vm:
    subscription: str
    resource_group: str
    name: str
    size: str
    location: str
    power: str = "running"
    tags: dict[str, str] = field(default_factory=dict)
    priority: str = "Regular"
    eviction_policy: str | None = None
    vm_id: str = ""
    created: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    zones: list[str] | None = None
    scale_set: str | None = None  # Flexible membership: the scale set's name (same resource group)
    instance_id: str | None = None  # Uniform member: its instance id
    provisioning: str = "Succeeded"
    busy: str | None = None  # the operation in progress

    @property
    def id(self) -> str:
        if self.instance_id is not None:
            return f"{rid(self.subscription, self.resource_group, 'virtualMachineScaleSets', self.scale_set or '')}" \
                   f"/virtualMachines/{self.instance_id}"
        return rid(self.subscription, self.resource_group, "virtualMachines", self.name)


@dataclass
class ScaleSet:
    subscription: str
    resource_group: str
    name: str
    size: str
    location: str
    tags: dict[str, str]
    priority: str
    eviction_policy: str | None
    orchestration: str
    power: str
    unique_id: str
    created: datetime
    members: dict[str, Vm] = field(default_factory=dict)  # Uniform: instance id -> member
    next_instance: int = 0
    provisioning: str = "Succeeded"
    busy: str | None = None

    @property
    def id(self) -> str:
        return rid(self.subscription, self.resource_group, "virtualMachineScaleSets", self.name)


def rid(sub: str, rg: str, kind: str, name: str) -> str:
    """A Compute resource's ARM id: ``/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/...``."""
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{COMPUTE}/{kind}/{name}"


def iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def statuses(target: Vm | ScaleSet, power: str | None) -> list[dict[str, Any]]:
    prov = target.provisioning
    out: list[dict[str, Any]] = [{"code": f"ProvisioningState/{prov.lower()}", "level": "Info",
                                  "displayStatus": "Provisioning succeeded" if prov == "Succeeded" else prov,
                                  "time": iso(target.created)}]
    if power:
        out.append({"code": f"PowerState/{power}", "level": "Info", "displayStatus": _DISPLAY[power]})
    return out


def vm_properties(vm: Vm, instance_view: bool) -> dict[str, Any]:
    props: dict[str, Any] = {
        "vmId": vm.vm_id, "hardwareProfile": {"vmSize": vm.size},
        "storageProfile": {"osDisk": {"osType": "Linux", "name": f"{vm.name}_OsDisk_1", "createOption": "FromImage",
                                      "caching": "ReadWrite", "managedDisk": {"storageAccountType": "Premium_LRS"},
                                      "diskSizeGB": 30}},
        "osProfile": {"computerName": vm.name.replace("_", "")[:15], "adminUsername": "azureuser"},
        "provisioningState": vm.provisioning, "timeCreated": iso(vm.created)}
    if vm.priority != "Regular":
        props.update(priority=vm.priority, evictionPolicy=vm.eviction_policy, billingProfile={"maxPrice": -1})
    if vm.scale_set and vm.instance_id is None:
        props["virtualMachineScaleSet"] = {"id": rid(vm.subscription, vm.resource_group,
                                                     "virtualMachineScaleSets", vm.scale_set)}
    if instance_view:
        props["instanceView"] = {"computerName": props["osProfile"]["computerName"], "osName": "ubuntu",
                                 "statuses": statuses(vm, vm.power)}
    return props


def vm_json(vm: Vm, instance_view: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"name": vm.name, "id": vm.id, "type": f"{COMPUTE}/virtualMachines",
                           "location": vm.location, "tags": dict(vm.tags),
                           "properties": vm_properties(vm, instance_view)}
    if vm.zones:
        out["zones"] = list(vm.zones)
    return out


def member_json(vm: Vm, instance_view: bool) -> dict[str, Any]:
    props = vm_properties(vm, instance_view)
    props.pop("hardwareProfile")
    props["latestModelApplied"] = True
    return {"name": vm.name, "id": vm.id, "type": f"{COMPUTE}/virtualMachineScaleSets/virtualMachines",
            "location": vm.location, "tags": dict(vm.tags), "instanceId": vm.instance_id,
            "sku": {"name": vm.size, "tier": "Standard"}, "properties": props}


def set_json(ss: ScaleSet, capacity: int) -> dict[str, Any]:
    """The scale set's JSON; ``capacity`` is its current instance count (``sku.capacity``)."""
    profile: dict[str, Any] = {"osProfile": {"computerNamePrefix": ss.name[:9], "adminUsername": "azureuser"},
                               "storageProfile": {"osDisk": {"createOption": "FromImage", "caching": "ReadWrite",
                                                             "managedDisk": {"storageAccountType": "Premium_LRS"}}},
                               "priority": ss.priority}
    if ss.eviction_policy:
        profile.update(evictionPolicy=ss.eviction_policy, billingProfile={"maxPrice": -1})
    props: dict[str, Any] = {"orchestrationMode": ss.orchestration, "virtualMachineProfile": profile,
                             "provisioningState": ss.provisioning, "uniqueId": ss.unique_id,
                             "timeCreated": iso(ss.created)}
    if ss.orchestration == "Uniform":
        props.update(singlePlacementGroup=True, overprovision=False, upgradePolicy={"mode": "Manual"})
    else:
        props["platformFaultDomainCount"] = 1
    return {"id": ss.id, "name": ss.name, "type": f"{COMPUTE}/virtualMachineScaleSets", "location": ss.location,
            "tags": dict(ss.tags), "sku": {"name": ss.size, "tier": "Standard", "capacity": capacity},
            "properties": props}

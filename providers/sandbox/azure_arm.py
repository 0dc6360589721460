"""A local emulator of Azure Resource Manager: login, subscriptions, Compute VMs and scale sets, resource SKUs.

Written from the public REST reference (Compute 2024-11-01 .. 2026-04-01, Resource SKUs 2021-07-01,
Subscriptions 2016-06-01, Autoscale Settings 2022-10-01) and shaped on recorded answers
(cloud-custodian's c7n_azure cassettes: VM list / ``$expand=instanceView`` / scale set list / autoscale):

- Login: ``GET /{tenant}/v2.0/.well-known/openid-configuration`` and ``POST /{tenant}/oauth2/v2.0/token``
  (client credentials), enough for a real ``azure.identity.ClientSecretCredential(authority=url,
  disable_instance_discovery=True, connection_verify=ca_path)``.
- ``GET /subscriptions``; ``.../providers/Microsoft.Compute/virtualMachines`` (``statusOnly=true`` adds
  ``properties.instanceView.statuses``; ``$filter='virtualMachineScaleSet/id' eq '...'``), per resource
  group list, ``GET`` one VM (``$expand=instanceView``), ``.../instanceView``; ``POST`` ``deallocate``,
  ``start``, ``powerOff``; ``PATCH``/``PUT`` (resize through ``hardwareProfile.vmSize``, tags).
- Scale sets: list (subscription / resource group), ``GET``, ``PATCH`` (``sku.capacity``, ``sku.name``),
  ``GET .../virtualMachineScaleSets/{n}/virtualMachines`` (Uniform members; ``$expand=instanceView``), a
  member's ``GET`` and ``deallocate``/``start``/``powerOff``. Flexible members are ordinary VMs carrying
  ``properties.virtualMachineScaleSet.id``; scaling in removes the highest instance ids first.
- ``GET .../providers/Microsoft.Compute/skus`` (one item per size and location, capabilities ``vCPUs``,
  ``MemoryGB``, ``GPUs``, restrictions ``NotAvailableForSubscription``; ``$filter=location eq 'x'``).
- ``GET .../providers/Microsoft.Insights/autoscalesettings`` (list by subscription).
- Long-running operations as Compute answers them: ``POST`` actions -> 202 with absolute
  ``Azure-AsyncOperation`` and ``Location``; ``PATCH``/``PUT`` -> 200/201 with the resource
  (``provisioningState`` Updating/Creating) and ``Azure-AsyncOperation``. The operation reads
  ``InProgress`` for ``lro_polls`` polls, then ``Succeeded``; the change lands at completion (until then
  the VM shows the transitional power state: deallocating, stopping, starting).
- Every list pages by ``page_size`` with an absolute ``nextLink`` (``$skiptoken``) to this server.
- Resizes (VM ``hardwareProfile.vmSize``, scale set ``sku.name``) are allowed in any power state and
  recorded in ``resizes`` with the power state at the time; a size the location does not sell (or
  marks NotAvailableForSubscription) is refused with 409 OperationNotAllowed, as Azure refuses a size
  the VM's location or cluster lacks. ``powerOff`` of a deallocated VM is 409, a second operation on a
  resource whose first is still running is 409.

Seeding (plain Python, before or while serving): ``add_subscription``, ``add_resource_group``,
``add_vm``, ``add_scale_set``, ``add_autoscale_setting``, ``add_sku``, ``restrict_sku``, ``add_client``
(checked client secret), ``forbid`` (403 on a subscription), ``set_power_state`` (an eviction, a guest
shutdown), ``fail_next`` (any status, e.g. 429, 500). Reading: ``vm``, ``vms``, ``power_state``,
``scale_set``, ``scale_set_members``, ``resizes``, ``tokens_issued``, ``count``/``requests``;
``complete_operations`` finishes operations nobody polled.
- Errors ``{"error": {"code", "message"}}``: 401 AuthenticationFailed / InvalidAuthenticationToken,
  403 AuthorizationFailed (``forbid(subscription)``), 404 SubscriptionNotFound / ResourceGroupNotFound /
  ResourceNotFound, 409 OperationNotAllowed, 429 TooManyRequests with ``Retry-After`` (``fail_next``).

Built-in VM sizes (``SIZES``): vCPUs, memory (GiB) and GPU count from the Azure size pages
(learn.microsoft.com/azure/virtual-machines/sizes/gpu-accelerated/*: NCasT4_v3, NCv3, NC A100 v4,
ND A100 v4, NDm A100 v4, NC/NCC H100 v5, ND H100 v5, ND H200 v5, ND MI300X v5, NVadsA10_v5, NCads A10 v4).
Partial-GPU sizes (NV6/12/18ads_A10_v5 at 1/6, 1/3, 1/2 of an A10; NC8/16ads_A10_v4) report ``GPUs`` 1,
as catalogs built from the Resource SKUs API show them (skypilot-org/skypilot issue #3708).
"""

from __future__ import annotations

import itertools
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol
from urllib.parse import parse_qs, quote, unquote, urlencode

from providers.sandbox.json_server import JsonApiServer, Request, Response

log = logging.getLogger(__name__)

COMPUTE = "Microsoft.Compute"
LOCATIONS = ("eastus", "eastus2", "westus2", "westus3", "southcentralus", "westeurope")
POWER_STATES = ("running", "deallocated", "stopped", "deallocating", "starting", "stopping")
_DISPLAY = {"running": "VM running", "deallocated": "VM deallocated", "stopped": "VM stopped",
            "deallocating": "VM deallocating", "starting": "VM starting", "stopping": "VM stopping"}
_CODES = {400: "BadRequest", 401: "InvalidAuthenticationToken", 403: "AuthorizationFailed", 404: "ResourceNotFound",
          409: "OperationNotAllowed", 429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable"}

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


class ArmExtension(Protocol):
    """A plug-in route set (Azure Monitor metrics, Cost Management): tried before the built-in routes."""

    def handle(self, arm: AzureArmEmulator, request: Request) -> Response | None:
        """The answer, or None when the request is not this extension's."""
        ...


class ArmError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


@dataclass
class _Vm:
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
            return f"{_rid(self.subscription, self.resource_group, 'virtualMachineScaleSets', self.scale_set or '')}" \
                   f"/virtualMachines/{self.instance_id}"
        return _rid(self.subscription, self.resource_group, "virtualMachines", self.name)


@dataclass
class _ScaleSet:
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
    members: dict[str, _Vm] = field(default_factory=dict)  # Uniform: instance id -> member
    next_instance: int = 0
    provisioning: str = "Succeeded"
    busy: str | None = None

    @property
    def id(self) -> str:
        return _rid(self.subscription, self.resource_group, "virtualMachineScaleSets", self.name)


@dataclass
class _Operation:
    id: str
    location: str
    subscription: str
    target: _Vm | _ScaleSet
    apply: Callable[[], None]
    started: datetime
    polls: int = 0
    ended: datetime | None = None


@dataclass(frozen=True)
class Resize:
    """A resize the emulator accepted: what tests and the demo check after an apply."""

    resource_id: str
    old_size: str
    new_size: str
    power_state: str  # the VM's power state when the resize was asked for


def _rid(sub: str, rg: str, kind: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{COMPUTE}/{kind}/{name}"


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


class AzureArmEmulator(JsonApiServer):
    """Azure Resource Manager on ``https://127.0.0.1:PORT``: seed with ``add_*``, read with ``vm``/``scale_set``."""

    name = "azure-arm"

    def __init__(self, *, extensions: Sequence[ArmExtension] = (), page_size: int = 2, lro_polls: int = 1) -> None:
        super().__init__(tls=True)
        self.extensions = list(extensions)
        self.page_size = page_size
        self.lro_polls = lro_polls
        self.tenant_id = "72f988bf-0000-4000-8000-000000000001"
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.resource_groups: dict[tuple[str, str], str] = {}  # (sub, rg lower) -> rg as created
        self.skus: dict[str, tuple[int, float, int, str]] = {s[0]: s[1:] for s in SIZES}
        self.sku_locations: dict[str, tuple[str, ...]] = {}  # size -> locations (default LOCATIONS)
        self.restricted: set[tuple[str, str]] = set()  # (location, size) NotAvailableForSubscription
        self.resizes: list[Resize] = []
        self.tokens_issued: list[str] = []
        self.client_secrets: dict[str, str] = {}
        self.forbidden: set[str] = set()
        self._vms: dict[str, _Vm] = {}
        self._sets: dict[str, _ScaleSet] = {}
        self._autoscale: dict[str, dict[str, Any]] = {}
        self._ops: dict[str, _Operation] = {}
        self._ids = itertools.count(1)
        self._state_lock = threading.RLock()

    # -- seeding -----------------------------------------------------------------------------------
    def add_subscription(self, sub: str, *, display_name: str | None = None, state: str = "Enabled") -> dict[str, Any]:
        """A subscription ``GET /subscriptions`` lists (``state``: Enabled, Disabled, Warned, PastDue)."""
        self.subscriptions[sub] = {
            "id": f"/subscriptions/{sub}", "authorizationSource": "RoleBased", "managedByTenants": [],
            "subscriptionId": sub, "tenantId": self.tenant_id, "displayName": display_name or f"Subscription {sub[:8]}",
            "state": state, "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01",
                                                     "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"}}
        return self.subscriptions[sub]

    def add_resource_group(self, subscription: str, resource_group: str) -> None:
        """A resource group (created implicitly by ``add_vm`` / ``add_scale_set``)."""
        if subscription not in self.subscriptions:
            self.add_subscription(subscription)
        self.resource_groups.setdefault((subscription, resource_group.lower()), resource_group)

    def add_client(self, client_id: str, secret: str) -> None:
        """Make the token route check this app's secret (unregistered apps get a token with any secret)."""
        self.client_secrets[client_id] = secret

    def add_vm(self, subscription: str, resource_group: str, name: str, size: str, location: str, *,
               power_state: str = "running", tags: dict[str, str] | None = None, priority: str = "Regular",
               eviction_policy: str | None = None, vm_id: str | None = None, created: datetime | None = None,
               zones: Sequence[str] | None = None, scale_set: str | None = None) -> dict[str, Any]:
        """A VM; returns its JSON as ``GET ...?$expand=instanceView`` answers.

        ``power_state``: one of ``POWER_STATES`` ("stopped" = powered off but still allocated, still
        billed for compute; "deallocated" = compute released). ``priority``: Regular, Spot or Low
        (Spot's ``eviction_policy`` defaults to Deallocate). ``scale_set``: the name of a Flexible scale
        set in the same resource group the VM belongs to. ``vm_id`` defaults to a UUID derived from the id.
        """
        if power_state not in POWER_STATES:
            raise ValueError(f"power_state {power_state!r} not in {POWER_STATES}")
        self.add_resource_group(subscription, resource_group)
        vm = _Vm(subscription, resource_group, name, size, location, power_state, dict(tags or {}), priority,
                 eviction_policy or ("Deallocate" if priority != "Regular" else None), vm_id or "",
                 created or datetime.now(timezone.utc), list(zones) if zones else None, scale_set)
        vm.vm_id = vm.vm_id or str(uuid.uuid5(uuid.NAMESPACE_URL, vm.id.lower()))
        with self._state_lock:
            self._vms[vm.id.lower()] = vm
        return self._vm_json(vm, instance_view=True)

    def add_scale_set(self, subscription: str, resource_group: str, name: str, size: str, location: str,
                      capacity: int, *, tags: dict[str, str] | None = None, priority: str = "Regular",
                      eviction_policy: str | None = None, orchestration: str = "Uniform",
                      power_state: str = "running", created: datetime | None = None) -> dict[str, Any]:
        """A scale set with ``capacity`` running instances; returns its JSON.

        Uniform (default): instances are listed under ``.../virtualMachineScaleSets/{name}/virtualMachines``
        with ids ``0, 1, ...``. Flexible: instances are VMs named ``{name}_{8 hex}`` that carry
        ``properties.virtualMachineScaleSet.id`` in the VM lists.
        """
        if orchestration not in ("Uniform", "Flexible"):
            raise ValueError("orchestration is Uniform or Flexible")
        self.add_resource_group(subscription, resource_group)
        ss = _ScaleSet(subscription, resource_group, name, size, location, dict(tags or {}), priority,
                       eviction_policy or ("Deallocate" if priority != "Regular" else None), orchestration,
                       power_state, "", created or datetime.now(timezone.utc))
        ss.unique_id = str(uuid.uuid5(uuid.NAMESPACE_URL, ss.id.lower()))
        with self._state_lock:
            self._sets[ss.id.lower()] = ss
            self._set_capacity(ss, capacity)
        return self._set_json(ss)

    def add_autoscale_setting(self, subscription: str, resource_group: str, name: str, target_id: str,
                              minimum: int, maximum: int, default: int, *, enabled: bool = True,
                              location: str = "eastus",
                              extra_profiles: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
        """An Azure Monitor autoscale setting on ``target_id`` (a scale set's ARM id).

        The first profile carries ``minimum``/``maximum``/``default``; ``extra_profiles`` are raw
        profiles as the API spells them (e.g. with ``recurrence``: {"frequency": "Week", "schedule":
        {"timeZone": "UTC", "days": ["Monday"], "hours": [8], "minutes": [0]}}).
        """
        self.add_resource_group(subscription, resource_group)
        profiles = [{"name": "Auto created default scale condition", "rules": [],
                     "capacity": {"minimum": str(minimum), "maximum": str(maximum), "default": str(default)}},
                    *extra_profiles]
        rid = (f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/microsoft.insights/"
               f"autoscalesettings/{name}")
        item = {"id": rid, "name": name, "type": "Microsoft.Insights/autoscaleSettings", "location": location,
                "tags": {}, "properties": {"profiles": profiles, "enabled": enabled, "name": name, "notifications": [],
                                           "targetResourceUri": target_id, "targetResourceLocation": location}}
        self._autoscale[rid.lower()] = item
        return item

    def add_sku(self, size: str, vcpus: int, memory_gb: float, gpus: int = 0, *, family: str = "standardCustomFamily",
                locations: Sequence[str] | None = None) -> None:
        """Another VM size for the Resource SKUs route (default: offered in every location of ``LOCATIONS``)."""
        self.skus[size] = (vcpus, memory_gb, gpus, family)
        if locations is not None:
            self.sku_locations[size] = tuple(locations)

    def restrict_sku(self, location: str, size: str) -> None:
        """Mark ``size`` NotAvailableForSubscription in ``location`` (listed, with a Location restriction)."""
        self.restricted.add((location.lower(), size.lower()))

    def forbid(self, subscription: str) -> None:
        """Every call on this subscription answers 403 AuthorizationFailed (a missing Reader role)."""
        self.forbidden.add(subscription.lower())

    # -- accessors for tests -----------------------------------------------------------------------
    def vm(self, subscription: str, resource_group: str, name: str) -> dict[str, Any]:
        """The VM's JSON as ``GET ...?$expand=instanceView`` answers (KeyError when absent)."""
        return self._vm_json(self._find_vm(_rid(subscription, resource_group, "virtualMachines", name)), True)

    def power_state(self, resource_id: str) -> str:
        """The power state ("running", "deallocated", ...) of a VM or scale set instance, by ARM id."""
        return self._find_vm(resource_id).power

    def set_power_state(self, resource_id: str, state: str) -> None:
        """Change a VM's power state out of band (a Spot eviction, a shutdown from inside the guest)."""
        if state not in POWER_STATES:
            raise ValueError(f"power_state {state!r} not in {POWER_STATES}")
        self._find_vm(resource_id).power = state

    def vms(self) -> list[dict[str, Any]]:
        """Every standalone and Flexible VM, as the subscription list answers them."""
        return [self._vm_json(v, True) for v in self._vms.values()]

    def scale_set(self, subscription: str, resource_group: str, name: str) -> dict[str, Any]:
        """The scale set's JSON (``sku.capacity`` is its current instance count)."""
        return self._set_json(self._sets[_rid(subscription, resource_group, "virtualMachineScaleSets", name).lower()])

    def scale_set_members(self, subscription: str, resource_group: str, name: str) -> list[str]:
        """ARM ids of the scale set's instances."""
        return [m.id for m in self._members(self._sets[_rid(subscription, resource_group,
                                                            "virtualMachineScaleSets", name).lower()])]

    def pending_operations(self) -> int:
        return sum(op.ended is None for op in self._ops.values())

    def complete_operations(self) -> None:
        """Finish every operation nobody polled to its end (a client that gave up, ``polling=False``)."""
        for op in list(self._ops.values()):
            if op.ended is None:
                self._finish(op)

    def _find_vm(self, resource_id: str) -> _Vm:
        key = resource_id.rstrip("/").lower()
        if key in self._vms:
            return self._vms[key]
        for ss in self._sets.values():
            for member in ss.members.values():
                if member.id.lower() == key:
                    return member
        raise KeyError(resource_id)

    def _members(self, ss: _ScaleSet) -> list[_Vm]:
        if ss.orchestration == "Uniform":
            return list(ss.members.values())
        return [v for v in self._vms.values() if v.scale_set and v.subscription == ss.subscription
                and v.resource_group.lower() == ss.resource_group.lower() and v.scale_set.lower() == ss.name.lower()]

    def _set_capacity(self, ss: _ScaleSet, capacity: int) -> None:
        members = self._members(ss)
        for gone in sorted(members, key=lambda m: (len(m.instance_id or m.name), m.instance_id or m.name))[capacity:]:
            if ss.orchestration == "Uniform":
                ss.members.pop(gone.instance_id or "", None)
            else:
                self._vms.pop(gone.id.lower(), None)
        for _ in range(capacity - len(members)):
            n = ss.next_instance
            ss.next_instance += 1
            if ss.orchestration == "Uniform":
                vm = _Vm(ss.subscription, ss.resource_group, f"{ss.name}_{n}", ss.size, ss.location, ss.power,
                         dict(ss.tags), ss.priority, ss.eviction_policy, scale_set=ss.name, instance_id=str(n))
                vm.vm_id = str(uuid.uuid5(uuid.NAMESPACE_URL, vm.id.lower()))
                ss.members[str(n)] = vm
            else:
                suffix = uuid.uuid5(uuid.NAMESPACE_URL, f"{ss.id}/{n}".lower()).hex[:8]
                self.add_vm(ss.subscription, ss.resource_group, f"{ss.name}_{suffix}", ss.size, ss.location,
                            power_state=ss.power, tags=ss.tags, priority=ss.priority,
                            eviction_policy=ss.eviction_policy, scale_set=ss.name)

    # -- JSON shapes -------------------------------------------------------------------------------
    def _statuses(self, target: _Vm | _ScaleSet, power: str | None) -> list[dict[str, Any]]:
        prov = target.provisioning
        out: list[dict[str, Any]] = [{"code": f"ProvisioningState/{prov.lower()}", "level": "Info",
                                      "displayStatus": "Provisioning succeeded" if prov == "Succeeded" else prov,
                                      "time": _iso(target.created)}]
        if power:
            out.append({"code": f"PowerState/{power}", "level": "Info", "displayStatus": _DISPLAY[power]})
        return out

    def _vm_properties(self, vm: _Vm, instance_view: bool) -> dict[str, Any]:
        props: dict[str, Any] = {
            "vmId": vm.vm_id, "hardwareProfile": {"vmSize": vm.size},
            "storageProfile": {"osDisk": {"osType": "Linux", "name": f"{vm.name}_OsDisk_1", "createOption": "FromImage",
                                          "caching": "ReadWrite", "managedDisk": {"storageAccountType": "Premium_LRS"},
                                          "diskSizeGB": 30}},
            "osProfile": {"computerName": vm.name.replace("_", "")[:15], "adminUsername": "azureuser"},
            "provisioningState": vm.provisioning, "timeCreated": _iso(vm.created)}
        if vm.priority != "Regular":
            props.update(priority=vm.priority, evictionPolicy=vm.eviction_policy, billingProfile={"maxPrice": -1})
        if vm.scale_set and vm.instance_id is None:
            props["virtualMachineScaleSet"] = {"id": _rid(vm.subscription, vm.resource_group,
                                                          "virtualMachineScaleSets", vm.scale_set)}
        if instance_view:
            props["instanceView"] = {"computerName": props["osProfile"]["computerName"], "osName": "ubuntu",
                                     "statuses": self._statuses(vm, vm.power)}
        return props

    def _vm_json(self, vm: _Vm, instance_view: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"name": vm.name, "id": vm.id, "type": f"{COMPUTE}/virtualMachines",
                               "location": vm.location, "tags": dict(vm.tags),
                               "properties": self._vm_properties(vm, instance_view)}
        if vm.zones:
            out["zones"] = list(vm.zones)
        return out

    def _member_json(self, vm: _Vm, instance_view: bool) -> dict[str, Any]:
        props = self._vm_properties(vm, instance_view)
        props.pop("hardwareProfile")
        props["latestModelApplied"] = True
        return {"name": vm.name, "id": vm.id, "type": f"{COMPUTE}/virtualMachineScaleSets/virtualMachines",
                "location": vm.location, "tags": dict(vm.tags), "instanceId": vm.instance_id,
                "sku": {"name": vm.size, "tier": "Standard"}, "properties": props}

    def _set_json(self, ss: _ScaleSet) -> dict[str, Any]:
        profile: dict[str, Any] = {"osProfile": {"computerNamePrefix": ss.name[:9], "adminUsername": "azureuser"},
                                   "storageProfile": {"osDisk": {"createOption": "FromImage", "caching": "ReadWrite",
                                                                 "managedDisk": {"storageAccountType": "Premium_LRS"}}},
                                   "priority": ss.priority}
        if ss.eviction_policy:
            profile.update(evictionPolicy=ss.eviction_policy, billingProfile={"maxPrice": -1})
        props: dict[str, Any] = {"orchestrationMode": ss.orchestration, "virtualMachineProfile": profile,
                                 "provisioningState": ss.provisioning, "uniqueId": ss.unique_id,
                                 "timeCreated": _iso(ss.created)}
        if ss.orchestration == "Uniform":
            props.update(singlePlacementGroup=True, overprovision=False, upgradePolicy={"mode": "Manual"})
        else:
            props["platformFaultDomainCount"] = 1
        return {"id": ss.id, "name": ss.name, "type": f"{COMPUTE}/virtualMachineScaleSets", "location": ss.location,
                "tags": dict(ss.tags), "sku": {"name": ss.size, "tier": "Standard", "capacity": len(self._members(ss))},
                "properties": props}

    def _sku_json(self, size: str, location: str) -> dict[str, Any]:
        vcpus, memory, gpus, family = self.skus[size]
        caps = [("MaxResourceVolumeMB", "0"), ("vCPUs", str(vcpus)), ("MemoryGB", f"{memory:g}"),
                ("LowPriorityCapable", "True"), ("vCPUsAvailable", str(vcpus)), ("HyperVGenerations", "V1,V2")]
        if gpus:
            caps.append(("GPUs", str(gpus)))
        restrictions = []
        if (location.lower(), size.lower()) in self.restricted:
            restrictions.append({"type": "Location", "values": [location], "reasonCode": "NotAvailableForSubscription",
                                 "restrictionInfo": {"locations": [location]}})
        return {"resourceType": "virtualMachines", "name": size, "tier": "Standard", "size": size.split("_", 1)[-1],
                "family": family, "locations": [location],
                "locationInfo": [{"location": location, "zones": ["1", "2", "3"], "zoneDetails": []}],
                "capabilities": [{"name": n, "value": v} for n, v in caps], "restrictions": restrictions}

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return {"error": {"code": _CODES.get(status, f"Http{status}"), "message": message}}

    # -- routing -----------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        for extension in self.extensions:
            answer = extension.handle(self, request)
            if answer is not None:
                return answer
        parts = [unquote(p) for p in request.path.strip("/").split("/") if p]
        low = [p.lower() for p in parts]
        try:
            with self._state_lock:
                if len(low) == 4 and low[1:] == ["v2.0", ".well-known", "openid-configuration"]:
                    return self._openid(request, parts[0])
                if len(low) == 4 and low[1:] == ["oauth2", "v2.0", "token"] and request.method == "POST":
                    return self._token(request)
                if not low or low[0] != "subscriptions":
                    raise ArmError(404, "NoRegisteredProviderFound", f"No route for {request.method} {request.path}")
                self._check_auth(request)
                if len(low) == 1:
                    return self._page(request, [s for _, s in sorted(self.subscriptions.items())])
                return self._subscription_routes(request, parts, low)
        except ArmError as exc:
            return Response(exc.status, {"error": {"code": exc.code, "message": exc.message}}, exc.headers)

    def _check_auth(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            raise ArmError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        if not request.arg("api-version"):
            raise ArmError(400, "MissingApiVersionParameter",
                           "The api-version query parameter (?api-version=) is required for all requests.")

    def _subscription_routes(self, request: Request, parts: list[str], low: list[str]) -> Response:
        sub = parts[1]
        if sub not in self.subscriptions:
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
        if sub.lower() in self.forbidden:
            raise ArmError(403, "AuthorizationFailed",
                           f"The client does not have authorization to perform action over scope "
                           f"'/subscriptions/{sub}' or the scope is invalid. If access was recently granted, "
                           "please refresh your credentials.")
        rest, rest_low = parts[2:], low[2:]
        if not rest:
            return Response(200, self.subscriptions[sub])
        if rest_low[0] == "providers" and len(rest_low) >= 3:
            return self._provider_routes(request, sub, rest, rest_low)
        if rest_low[0] == "resourcegroups" and len(rest_low) >= 2:
            rg = rest[1]
            if (sub, rg.lower()) not in self.resource_groups:
                raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
            if len(rest_low) >= 5 and rest_low[2] == "providers" and rest_low[3] == "microsoft.compute":
                return self._compute_routes(request, sub, rg, rest[4:], rest_low[4:])
        raise ArmError(404, "NoRegisteredProviderFound", f"No route for {request.method} {request.path}")

    def _provider_routes(self, request: Request, sub: str, rest: list[str], low: list[str]) -> Response:
        namespace, kind = low[1], low[2:]
        if namespace == "microsoft.insights" and kind == ["autoscalesettings"] and request.method == "GET":
            scope = f"/subscriptions/{sub.lower()}/"
            items = [a for a in self._autoscale.values() if a["id"].lower().startswith(scope)]
            return self._page(request, items)
        if namespace != "microsoft.compute" or request.method != "GET":
            raise ArmError(404, "NoRegisteredProviderFound", f"No route for {request.method} {request.path}")
        if kind == ["virtualmachines"]:
            return self._list_vms(request, [v for v in self._vms.values() if v.subscription == sub])
        if kind == ["virtualmachinescalesets"]:
            return self._page(request, [self._set_json(s) for s in self._sets.values() if s.subscription == sub])
        if kind == ["skus"]:
            return self._list_skus(request)
        if len(kind) == 4 and kind[0] == "locations" and kind[2] == "operations":
            return self._poll(request, rest[5])
        raise ArmError(404, "NoRegisteredProviderFound", f"No route for {request.method} {request.path}")

    def _compute_routes(self, request: Request, sub: str, rg: str, rest: list[str], low: list[str]) -> Response:
        method = request.method
        if low == ["virtualmachines"] and method == "GET":
            return self._list_vms(request, [v for v in self._vms.values()
                                            if v.subscription == sub and v.resource_group.lower() == rg.lower()])
        if low == ["virtualmachinescalesets"] and method == "GET":
            return self._page(request, [self._set_json(s) for s in self._sets.values()
                                        if s.subscription == sub and s.resource_group.lower() == rg.lower()])
        if low[0] == "virtualmachines" and len(low) >= 2:
            vm = self._vms.get(_rid(sub, rg, "virtualMachines", rest[1]).lower())
            if vm is None and not (len(low) == 2 and method == "PUT"):
                raise ArmError(404, "ResourceNotFound", f"The Resource '{COMPUTE}/virtualMachines/{rest[1]}' under "
                                                        f"resource group '{rg}' was not found.")
            if len(low) == 2 and method in ("PATCH", "PUT"):
                return self._update_vm(request, sub, rg, rest[1], vm)
            assert vm is not None
            if len(low) == 2 and method == "GET":
                expand = (request.arg("$expand") or "").lower() == "instanceview"
                return Response(200, self._vm_json(vm, expand))
            if low[2:] == ["instanceview"] and method == "GET":
                return Response(200, self._vm_properties(vm, True)["instanceView"])
            if len(low) == 3 and method == "POST":
                return self._vm_action(request, vm, low[2])
        if low[0] == "virtualmachinescalesets" and len(low) >= 2:
            ss = self._sets.get(_rid(sub, rg, "virtualMachineScaleSets", rest[1]).lower())
            if ss is None:
                raise ArmError(404, "ResourceNotFound", f"The Resource '{COMPUTE}/virtualMachineScaleSets/{rest[1]}' "
                                                        f"under resource group '{rg}' was not found.")
            if len(low) == 2 and method == "GET":
                return Response(200, self._set_json(ss))
            if len(low) == 2 and method in ("PATCH", "PUT"):
                return self._update_set(request, ss)
            if low[2:] == ["virtualmachines"] and method == "GET":
                if ss.orchestration != "Uniform":
                    raise ArmError(409, "OperationNotAllowed", "The operation is not supported for virtual machine "
                                                               "scale sets in Flexible orchestration mode.")
                expand = (request.arg("$expand") or "").lower() == "instanceview"
                members = sorted(ss.members.values(), key=lambda m: int(m.instance_id or 0))
                return self._page(request, [self._member_json(m, expand) for m in members])
            if len(low) == 4 and low[2] == "virtualmachines" and method == "GET" and rest[3] in ss.members:
                return Response(200, self._member_json(ss.members[rest[3]], True))
            if len(low) == 5 and low[2] == "virtualmachines" and method == "POST" and rest[3] in ss.members:
                return self._vm_action(request, ss.members[rest[3]], low[4])
        raise ArmError(404, "ResourceNotFound", f"No route for {request.method} {request.path}")

    # -- handlers ----------------------------------------------------------------------------------
    def _openid(self, request: Request, tenant: str) -> Response:
        base = f"{request.base_url}/{tenant}"
        return Response(200, {"token_endpoint": f"{base}/oauth2/v2.0/token",
                              "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                              "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                              "issuer": f"{base}/v2.0", "jwks_uri": f"{base}/discovery/v2.0/keys",
                              "tenant_region_scope": "NA", "response_types_supported": ["code", "token"],
                              "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"]})

    def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode(), keep_blank_values=True).items()}
        client, secret = form.get("client_id", ""), form.get("client_secret", "")
        if form.get("grant_type") != "client_credentials":
            return Response(400, {"error": "unsupported_grant_type", "error_description": "AADSTS70003: only "
                                  "client_credentials is emulated", "error_codes": [70003]})
        if not client or not secret or self.client_secrets.get(client, secret) != secret:
            return Response(401, {"error": "invalid_client", "error_codes": [7000215],
                                  "error_description": "AADSTS7000215: Invalid client secret provided."})
        token = f"emulated-{uuid.uuid4().hex}"
        self.tokens_issued.append(token)
        return Response(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                              "access_token": token})

    def _page(self, request: Request, items: list[dict[str, Any]]) -> Response:
        try:
            skip = int(request.arg("$skiptoken") or 0)
        except ValueError:
            raise ArmError(400, "InvalidSkipToken", "The $skiptoken is not valid.") from None
        body: dict[str, Any] = {"value": items[skip:skip + self.page_size]}
        if skip + self.page_size < len(items):
            query = {k: v[0] for k, v in request.query.items() if k != "$skiptoken"}
            query["$skiptoken"] = str(skip + self.page_size)
            body["nextLink"] = f"{request.base_url}{request.path}?{urlencode(query, safe='$', quote_via=quote)}"
        return Response(200, body)

    def _list_vms(self, request: Request, vms: list[_Vm]) -> Response:
        wanted = request.arg("$filter")
        if wanted:  # 'virtualMachineScaleSet/id' eq '/subscriptions/.../virtualMachineScaleSets/x'
            target = wanted.split(" eq ", 1)[-1].strip().strip("'").lower()
            vms = [v for v in vms if v.scale_set and _rid(v.subscription, v.resource_group, "virtualMachineScaleSets",
                                                          v.scale_set).lower() == target]
        status = (request.arg("statusOnly") or "").lower() == "true" or bool(request.arg("$expand"))
        return self._page(request, [self._vm_json(v, status) for v in vms])

    def _list_skus(self, request: Request) -> Response:
        wanted = request.arg("$filter")
        location = None
        if wanted:
            head, _, value = wanted.partition(" eq ")
            if head.strip().lower() != "location" or not value:
                raise ArmError(400, "InvalidFilter", f"The filter '{wanted}' is not supported; use location eq 'x'.")
            location = value.strip().strip("'").lower()
        items = [self._sku_json(size, loc) for size in self.skus
                 for loc in self.sku_locations.get(size, LOCATIONS) if location in (None, loc.lower())]
        return self._page(request, items)

    def _start(self, request: Request, target: _Vm | _ScaleSet, apply: Callable[[], None]) -> dict[str, str]:
        if target.busy is not None:
            raise ArmError(409, "OperationNotAllowed", f"Operation '{target.busy}' is still in progress on "
                                                       f"'{target.name}'; try again when it completes.")
        op = _Operation(str(uuid.UUID(int=next(self._ids))), target.location, target.subscription, target, apply,
                        datetime.now(timezone.utc))
        self._ops[op.id] = op
        target.busy = op.id
        base = (f"{request.base_url}/subscriptions/{op.subscription}/providers/{COMPUTE}/locations/{op.location}"
                f"/operations/{op.id}")
        return {"Azure-AsyncOperation": f"{base}?api-version={request.arg('api-version')}",
                "Location": f"{base}?monitor=true&api-version={request.arg('api-version')}"}

    def _finish(self, op: _Operation) -> None:
        op.apply()
        op.target.busy = None
        op.target.provisioning = "Succeeded"
        op.ended = datetime.now(timezone.utc)

    def _poll(self, request: Request, op_id: str) -> Response:
        op = self._ops.get(op_id)
        if op is None:
            raise ArmError(404, "ResourceNotFound", f"Operation {op_id} not found.")
        if op.ended is None:
            op.polls += 1
            if op.polls > self.lro_polls:
                self._finish(op)
        if (request.arg("monitor") or "").lower() == "true":  # the Location URL: 202 until done, then 200
            if op.ended:
                return Response(200, None)
            query = urlencode({k: v[0] for k, v in request.query.items()})
            return Response(202, {}, {"Location": f"{request.base_url}{request.path}?{query}"})
        body: dict[str, Any] = {"startTime": _iso(op.started), "status": "Succeeded" if op.ended else "InProgress",
                                "name": op.id}
        if op.ended:
            body["endTime"] = _iso(op.ended)
        return Response(200, body)

    def _vm_action(self, request: Request, vm: _Vm, action: str) -> Response:
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

    def _update_vm(self, request: Request, sub: str, rg: str, name: str, vm: _Vm | None) -> Response:
        body = request.json() or {}
        props = body.get("properties") or {}
        new_size = (props.get("hardwareProfile") or {}).get("vmSize")
        created = vm is None
        if vm is None:  # PUT of a new VM
            if not body.get("location") or not new_size:
                raise ArmError(400, "InvalidParameter", "A new VM needs 'location' and 'hardwareProfile.vmSize'.")
            self.add_vm(sub, rg, name, new_size, body["location"], tags=body.get("tags"),
                        priority=props.get("priority") or "Regular", zones=body.get("zones"))
            vm = self._vms[_rid(sub, rg, "virtualMachines", name).lower()]
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
        answer = self._vm_json(vm)
        if new_size:
            answer["properties"]["hardwareProfile"]["vmSize"] = new_size
        return Response(201 if created else 200, answer, headers)

    def _check_size(self, size: str, location: str, name: str) -> None:
        known = size in self.skus and location.lower() in [x.lower() for x in self.sku_locations.get(size, LOCATIONS)]
        if not known or (location.lower(), size.lower()) in self.restricted:
            raise ArmError(409, "OperationNotAllowed", f"Unable to resize the VM '{name}' since the requested size "
                                                       f"{size} is not available in the current region ({location}).")

    def _update_set(self, request: Request, ss: _ScaleSet) -> Response:
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

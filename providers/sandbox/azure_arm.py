"""A local emulator of Azure Resource Manager: login, subscriptions, Compute VMs and scale sets, resource SKUs.

Written from the public REST reference (Compute 2024-11-01 .. 2026-04-01, Resource SKUs 2021-07-01,
Subscriptions 2016-06-01, Autoscale Settings 2022-10-01) and shaped on recorded answers
(cloud-custodian's c7n_azure cassettes: VM list / ``$expand=instanceView`` / scale set list / autoscale).
This module holds the state, the seeding, the routing and the read routes; its parts:
``azure_login`` (Entra ID login), ``azure_arm_shapes`` (records, JSON shapes, ``ArmError``),
``azure_sizes`` (``SIZES``, Resource SKUs, size checks), ``azure_arm_writes`` (actions, updates,
resizes) and ``azure_lro`` (long-running operations).

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
"""

from __future__ import annotations

import itertools
import logging
import threading
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any, Protocol
from urllib.parse import quote, unquote, urlencode

from providers.sandbox.azure_arm_shapes import (
    COMPUTE,
    POWER_STATES,
    ArmError,
    ScaleSet,
    Vm,
    member_json,
    set_json,
    vm_json,
    vm_properties,
)
from providers.sandbox.azure_arm_shapes import rid as _rid
from providers.sandbox.azure_arm_writes import ComputeWrites, Resize
from providers.sandbox.azure_login import EntraLogin
from providers.sandbox.azure_lro import LongRunningOperations, Operation
from providers.sandbox.azure_sizes import LOCATIONS as LOCATIONS
from providers.sandbox.azure_sizes import SIZES, SkuCatalog
from providers.sandbox.json_server import JsonApiServer, Request, Response

log = logging.getLogger(__name__)

_CODES = {400: "BadRequest", 401: "InvalidAuthenticationToken", 403: "AuthorizationFailed", 404: "ResourceNotFound",
          409: "OperationNotAllowed", 429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable"}


class ArmExtension(Protocol):
    """A plug-in route set (Azure Monitor metrics, Cost Management): tried before the built-in routes."""

    def handle(self, arm: AzureArmEmulator, request: Request) -> Response | None:
        """The answer, or None when the request is not this extension's."""
        ...


class AzureArmEmulator(EntraLogin, SkuCatalog, LongRunningOperations, ComputeWrites, JsonApiServer):
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
        self._vms: dict[str, Vm] = {}
        self._sets: dict[str, ScaleSet] = {}
        self._autoscale: dict[str, dict[str, Any]] = {}
        self._ops: dict[str, Operation] = {}
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
        vm = Vm(subscription, resource_group, name, size, location, power_state, dict(tags or {}), priority,
                eviction_policy or ("Deallocate" if priority != "Regular" else None), vm_id or "",
                created or datetime.now(timezone.utc), list(zones) if zones else None, scale_set)
        vm.vm_id = vm.vm_id or str(uuid.uuid5(uuid.NAMESPACE_URL, vm.id.lower()))
        with self._state_lock:
            self._vms[vm.id.lower()] = vm
        return vm_json(vm, instance_view=True)

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
        ss = ScaleSet(subscription, resource_group, name, size, location, dict(tags or {}), priority,
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

    def forbid(self, subscription: str) -> None:
        """Every call on this subscription answers 403 AuthorizationFailed (a missing Reader role)."""
        self.forbidden.add(subscription.lower())

    # -- accessors for tests -----------------------------------------------------------------------
    def vm(self, subscription: str, resource_group: str, name: str) -> dict[str, Any]:
        """The VM's JSON as ``GET ...?$expand=instanceView`` answers (KeyError when absent)."""
        return vm_json(self._find_vm(_rid(subscription, resource_group, "virtualMachines", name)), True)

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
        return [vm_json(v, True) for v in self._vms.values()]

    def scale_set(self, subscription: str, resource_group: str, name: str) -> dict[str, Any]:
        """The scale set's JSON (``sku.capacity`` is its current instance count)."""
        return self._set_json(self._sets[_rid(subscription, resource_group, "virtualMachineScaleSets", name).lower()])

    def scale_set_members(self, subscription: str, resource_group: str, name: str) -> list[str]:
        """ARM ids of the scale set's instances."""
        return [m.id for m in self._members(self._sets[_rid(subscription, resource_group,
                                                            "virtualMachineScaleSets", name).lower()])]

    def _find_vm(self, resource_id: str) -> Vm:
        key = resource_id.rstrip("/").lower()
        if key in self._vms:
            return self._vms[key]
        for ss in self._sets.values():
            for member in ss.members.values():
                if member.id.lower() == key:
                    return member
        raise KeyError(resource_id)

    def _members(self, ss: ScaleSet) -> list[Vm]:
        if ss.orchestration == "Uniform":
            return list(ss.members.values())
        return [v for v in self._vms.values() if v.scale_set and v.subscription == ss.subscription
                and v.resource_group.lower() == ss.resource_group.lower() and v.scale_set.lower() == ss.name.lower()]

    def _set_capacity(self, ss: ScaleSet, capacity: int) -> None:
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
                vm = Vm(ss.subscription, ss.resource_group, f"{ss.name}_{n}", ss.size, ss.location, ss.power,
                        dict(ss.tags), ss.priority, ss.eviction_policy, scale_set=ss.name, instance_id=str(n))
                vm.vm_id = str(uuid.uuid5(uuid.NAMESPACE_URL, vm.id.lower()))
                ss.members[str(n)] = vm
            else:
                suffix = uuid.uuid5(uuid.NAMESPACE_URL, f"{ss.id}/{n}".lower()).hex[:8]
                self.add_vm(ss.subscription, ss.resource_group, f"{ss.name}_{suffix}", ss.size, ss.location,
                            power_state=ss.power, tags=ss.tags, priority=ss.priority,
                            eviction_policy=ss.eviction_policy, scale_set=ss.name)

    def _set_json(self, ss: ScaleSet) -> dict[str, Any]:
        return set_json(ss, len(self._members(ss)))

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
            return self._page(request, self._sku_items(request))
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
                return Response(200, vm_json(vm, expand))
            if low[2:] == ["instanceview"] and method == "GET":
                return Response(200, vm_properties(vm, True)["instanceView"])
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
                return self._page(request, [member_json(m, expand) for m in members])
            if len(low) == 4 and low[2] == "virtualmachines" and method == "GET" and rest[3] in ss.members:
                return Response(200, member_json(ss.members[rest[3]], True))
            if len(low) == 5 and low[2] == "virtualmachines" and method == "POST" and rest[3] in ss.members:
                return self._vm_action(request, ss.members[rest[3]], low[4])
        raise ArmError(404, "ResourceNotFound", f"No route for {request.method} {request.path}")

    # -- handlers ----------------------------------------------------------------------------------
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

    def _list_vms(self, request: Request, vms: list[Vm]) -> Response:
        wanted = request.arg("$filter")
        if wanted:  # 'virtualMachineScaleSet/id' eq '/subscriptions/.../virtualMachineScaleSets/x'
            target = wanted.split(" eq ", 1)[-1].strip().strip("'").lower()
            vms = [v for v in vms if v.scale_set and _rid(v.subscription, v.resource_group, "virtualMachineScaleSets",
                                                          v.scale_set).lower() == target]
        status = (request.arg("statusOnly") or "").lower() == "true" or bool(request.arg("$expand"))
        return self._page(request, [vm_json(v, status) for v in vms])

"""A small local emulator of Compute Engine v1 (REST JSON) and Resource Manager v3 ``projects.search``.

Written from the public API reference and shaped on recorded real answers (cloud-custodian's
``c7n-gcp-flights``: aggregated instances, instances.get/stop/start, aggregated commitments with their
``NO_RESULTS_ON_PAGE`` scope warnings). The google SDK clients point their ``api_endpoint`` at
``emulator.url`` with ``transport="rest"`` (``GcpClients(endpoints={"compute": url,
"cloudresourcemanager": url})``). Routes, under ``/compute/v1/projects/{project}/``:

- instances: ``aggregated/instances``, ``zones/{z}/instances`` (list), ``.../instances/{name}`` (get),
  ``.../{name}/stop``, ``/start``, ``/setMachineType`` (400 unless TERMINATED, as the real API) -> zonal
  Operations; ``zones/{z}/operations/{op}`` (get) and ``.../{op}/wait``. An operation finishes at once, or
  after ``operation_polls`` get/wait calls; until then a stopping instance shows STOPPING.
- ``aggregated/machineTypes``, ``zones/{z}/machineTypes[/{name}]``, ``aggregated/acceleratorTypes``;
- ``aggregated/instanceGroupManagers`` (zonal and regional MIGs), ``zones|regions/{s}/instanceGroupManagers/
  {m}`` (get), ``.../{m}/listManagedInstances``, zonal ``.../{m}/resize?size=N``;
- ``aggregated/autoscalers``; ``global/instanceTemplates/{t}``, ``regions/{r}/instanceTemplates/{t}``;
- ``GET /v3/projects:search`` (``query`` terms ``state:``/``id:`` honoured, others ignored).

Lists page with ``maxResults`` / ``pageToken`` -> ``nextPageToken``; the page size is capped at
``page_size`` (default 3; the real cap is 500) so every client pages. Aggregated lists carry every
known scope, the empty ones with a ``NO_RESULTS_ON_PAGE`` warning. ``filter`` is ignored except the
form ``name eq 'RE2 regex'`` (full match) on machine types; ``orderBy`` is ignored. Errors come in
Google's shape ``{"error": {"code", "message", "errors": [{"reason", "domain", "message"}], "status"}}``.
The emulator holds state (a stop shows in the next list) and counts requests (``count``).

Seeding (plain Python, see each docstring): ``add_project``, ``add_instance``, ``add_machine_type``,
``add_accelerator_type``, ``add_instance_template``, ``add_mig``, ``add_autoscaler``, ``deny``. The
built-in machine types (A2, A3, G2 with their GPUs, N1 for attached GPUs; vCPU, memory and GPUs from
cloud.google.com/compute/docs/gpus and .../general-purpose-machines) and accelerator types are offered in
zones approximating the public "GPU regions and zones" page; seed your own for exact scenarios.

The emulator is split by concept: ``gcp_compute_rest`` (REST conventions: selfLinks, timestamps, page
tokens, the error shape), ``gcp_machine_types`` (the built-in tables, machine and accelerator type seeding
and routes) and ``gcp_compute_groups`` (instance templates, MIGs, autoscalers); this module holds the
emulator itself: projects, instances, zonal operations, paging, routing and Resource Manager.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from providers.sandbox.gcp_compute_groups import InstanceGroupsMixin
from providers.sandbox.gcp_compute_rest import (BASE, MAX_RESULTS, ApiError, error_body, last_part, page_token,
                                                region_of, timestamp, token_offset)
from providers.sandbox.gcp_machine_types import (BUILTIN_ACCELERATOR_TYPES, DEFAULT_ZONES, MachineTypesMixin,
                                                 builtin_machine_types)
from providers.sandbox.json_server import JsonApiServer, Request, Response


class _Operation:
    """A zonal Operation: RUNNING for ``polls`` get/wait calls, then DONE with ``finish`` applied."""

    def __init__(self, body: dict[str, Any], polls: int, finish: Callable[[], None]) -> None:
        self.body, self.polls, self.finish = body, polls, finish

    def poll(self, now: str) -> dict[str, Any]:
        if self.body["status"] != "DONE":
            if self.polls <= 0:
                self.finish()
                self.body.update(status="DONE", progress=100, endTime=now)
            else:
                self.polls -= 1
                self.body.update(status="RUNNING", startTime=self.body.get("startTime") or now)
        return dict(self.body)


class GcpComputeEmulator(MachineTypesMixin, InstanceGroupsMixin, JsonApiServer):
    """Compute Engine + Resource Manager on 127.0.0.1; a context manager or ``start()``/``stop()``.

    ``page_size`` caps every page; ``types_page_size`` the pages of machine and accelerator types (hundreds
    of entries: pages of 3 would cost a test seconds of SDK overhead, ~15 ms a request); ``operation_polls``
    is how many get/wait calls an operation answers RUNNING before DONE (0: DONE in the answer to the
    mutation itself); ``zones`` the zones known (built-in types are offered in these only); ``now`` stamps
    timestamps.
    """

    name = "gcp-compute-emulator"
    content_type = "application/json; charset=UTF-8"

    def __init__(self, *, page_size: int = 3, types_page_size: int = 100, operation_polls: int = 0,
                 zones: Sequence[str] = DEFAULT_ZONES, builtin_types: bool = True,
                 now: Callable[[], datetime] | None = None) -> None:
        super().__init__()
        self.page_size = page_size
        self.types_page_size = types_page_size
        self.operation_polls = operation_polls
        self._now = now or (lambda: datetime.now(timezone.utc))
        self._ids = itertools.count(1)
        self.zones: list[str] = list(zones)
        self.projects: dict[str, dict[str, Any]] = {}
        self.instances: dict[tuple[str, str, str], dict[str, Any]] = {}  # (project, zone, name)
        self.machine_types: dict[tuple[str, str], dict[str, Any]] = {}  # (zone, name), every project alike
        self.accelerator_types: dict[tuple[str, str], dict[str, Any]] = {}
        self.templates: dict[str, dict[str, Any]] = {}  # selfLink -> template
        self.migs: dict[tuple[str, str, str], dict[str, Any]] = {}  # (project, "zones/z"|"regions/r", name)
        self.autoscalers: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.operations: dict[tuple[str, str, str], _Operation] = {}
        #: MIG member selfLink -> ``currentAction`` listManagedInstances shows (default NONE), e.g. DELETING.
        self.member_actions: dict[str, str] = {}
        self._denied: dict[str, tuple[int, str, str]] = {}
        if builtin_types:
            for name, cpus, mem, accels, type_zones in builtin_machine_types():
                self.add_machine_type(name, guest_cpus=cpus, memory_mb=mem, accelerators=accels,
                                      zones=[z for z in type_zones if z in self.zones])
            for name, (desc, cards, type_zones) in BUILTIN_ACCELERATOR_TYPES.items():
                self.add_accelerator_type(name, zones=[z for z in type_zones if z in self.zones],
                                          max_cards=cards, description=desc)

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return error_body(status, message)

    def _id(self) -> str:
        return str(4_000_000_000_000_000_000 + next(self._ids) * 7_919)

    # -- seeding -------------------------------------------------------------------------------
    def add_project(self, project_id: str, *, number: int | None = None, state: str = "ACTIVE",
                    display_name: str | None = None, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Register a project (Resource Manager ``Project``); ``state`` ACTIVE or DELETE_REQUESTED. Seeding
        anything into a project registers it; Compute calls on an unknown project answer 404."""
        with self._lock:
            if project_id not in self.projects:
                self.projects[project_id] = {
                    "name": f"projects/{number or 100_000_000_000 + len(self.projects) * 1_111}",
                    "parent": "organizations/123456789012", "projectId": project_id, "state": state,
                    "displayName": display_name or project_id, "createTime": "2024-01-15T10:00:00.000Z",
                    "updateTime": "2024-01-15T10:00:00.000Z", "etag": "W/\"emulator\"", "labels": dict(labels or {})}
            return self.projects[project_id]

    def add_instance(self, project: str, zone: str, name: str, machine_type: str, *, status: str = "RUNNING",
                     labels: Mapping[str, str] | None = None, accelerators: Iterable[tuple[str, int]] | None = None,
                     spot: bool = False, preemptible: bool = False, created: datetime | None = None,
                     last_start: datetime | None = None, metadata: Mapping[str, str] | None = None,
                     instance_id: str | None = None, group: str | None = None) -> dict[str, Any]:
        """Add a VM and return the stored resource (mutable: the emulator's own state).

        ``machine_type`` is the bare name (``a2-highgpu-1g``, ``n1-standard-8``). ``accelerators``: attached
        GPUs as (type, count), e.g. ``[("nvidia-tesla-t4", 1)]``; None gives a type with bundled GPUs (A2, A3,
        G2) its GPUs, as the real API lists them. ``spot``: provisioningModel SPOT (and preemptible, as the
        API shows Spot VMs); ``preemptible``: a legacy preemptible VM. ``group``: the name of a MIG added
        with ``add_mig`` this VM belongs to (sets the ``created-by`` metadata item). ``instance_id``: the
        numeric id (auto-assigned when None). ``status``: PROVISIONING, STAGING, RUNNING, STOPPING,
        TERMINATED, SUSPENDED, ...
        """
        with self._lock:
            self.add_project(project)
            self._zone(zone)
            now = self._now()
            created = created or now - timedelta(days=30)
            zone_url = f"{BASE}/projects/{project}/zones/{zone}"
            if accelerators is None:
                bundled = (self.machine_types.get((zone, machine_type)) or
                           next((m for (_, n), m in self.machine_types.items() if n == machine_type), {}))
                accelerators = [(a["guestAcceleratorType"], a["guestAcceleratorCount"])
                                for a in bundled.get("accelerators", [])]
            accelerators = list(accelerators)
            items = dict(metadata or {})
            if group is not None:
                mig = self._mig_named(project, group)
                items.setdefault("created-by", mig["_createdBy"])
                items.setdefault("instance-template", mig["instanceTemplate"])
            scheduling: dict[str, Any] = {"onHostMaintenance": "TERMINATE" if accelerators else "MIGRATE",
                                          "automaticRestart": not (spot or preemptible),
                                          "preemptible": spot or preemptible}
            if spot:
                scheduling.update(provisioningModel="SPOT", instanceTerminationAction="STOP")
            elif not preemptible:
                scheduling["provisioningModel"] = "STANDARD"
            body: dict[str, Any] = {
                "kind": "compute#instance", "id": instance_id or self._id(), "creationTimestamp": timestamp(created),
                "name": name, "description": "", "tags": {"fingerprint": "42WmSpB8rSM="},
                "machineType": f"{zone_url}/machineTypes/{machine_type}", "status": status, "zone": zone_url,
                "canIpForward": False,
                "networkInterfaces": [{"kind": "compute#networkInterface", "name": "nic0", "networkIP": "10.128.0.2",
                                       "network": f"{BASE}/projects/{project}/global/networks/default",
                                       "subnetwork": f"{BASE}/projects/{project}/regions/{region_of(zone)}"
                                                     "/subnetworks/default",
                                       "fingerprint": "xaZdc7J02TM="}],
                "disks": [{"kind": "compute#attachedDisk", "type": "PERSISTENT", "mode": "READ_WRITE", "index": 0,
                           "source": f"{zone_url}/disks/{name}", "deviceName": name, "boot": True, "autoDelete": True,
                           "interface": "SCSI", "diskSizeGb": "200"}],
                "metadata": {"kind": "compute#metadata", "fingerprint": "yXKwbjMeRA0=",
                             "items": [{"key": k, "value": v} for k, v in items.items()]},
                "selfLink": f"{zone_url}/instances/{name}", "scheduling": scheduling,
                "cpuPlatform": "Intel Cascade Lake" if status == "RUNNING" else "Unknown CPU Platform",
                "labels": dict(labels or {}), "labelFingerprint": "GHZ1Un204L0=", "startRestricted": False,
                "deletionProtection": False,
            }
            if accelerators:
                body["guestAccelerators"] = [{"acceleratorType": f"{zone_url}/acceleratorTypes/{t}", "acceleratorCount": c}
                                             for t, c in accelerators]
            if status in ("RUNNING", "STOPPING", "SUSPENDING", "SUSPENDED", "TERMINATED"):
                body["lastStartTimestamp"] = timestamp(last_start or created)
            if status == "TERMINATED":
                body["lastStopTimestamp"] = timestamp(now - timedelta(hours=1))
            self.instances[(project, zone, name)] = body
            return body

    def instance(self, project: str, zone: str, name: str) -> dict[str, Any]:
        """The stored resource of one VM (``KeyError`` when absent)."""
        return self.instances[(project, zone, name)]

    def deny(self, project: str, status: int = 403, reason: str = "accessNotConfigured", message: str | None = None) -> None:
        """Answer every Compute call on ``project`` with this error (default: the API is not enabled there)."""
        self._denied[project] = (status, reason, message or (
            f"Compute Engine API has not been used in project {project} before or it is disabled."))

    def _zone(self, zone: str) -> None:
        if zone not in self.zones:
            self.zones.append(zone)

    # -- API -----------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        try:
            with self._lock:
                status, body = self._route(request)
        except ApiError as exc:
            return Response(exc.status, error_body(exc.status, exc.message, exc.reason))
        except ValueError as exc:
            return Response(400, error_body(400, f"Invalid value: {exc}", "invalid"))
        return Response(status, body)

    def _route(self, request: Request) -> tuple[int, dict[str, Any]]:
        path = request.path.replace("%3A", ":").replace("%3a", ":")
        if path == "/v3/projects:search" and request.method == "GET":
            return 200, self._search_projects(request)
        m = re.fullmatch(r"/compute/v1/projects/([^/]+)/(.+)", path)
        if not m:
            raise ApiError(404, f"The requested URL {path} was not found on this server.")
        project, rest = m.groups()
        if project in self._denied:
            status, reason, message = self._denied[project]
            raise ApiError(status, message, reason)
        if project not in self.projects:
            raise ApiError(404, f"The resource 'projects/{project}' was not found")
        for method, pattern, handler in self._routes():
            hit = re.fullmatch(pattern, rest)
            if hit and method == request.method:
                return 200, handler(request, project, *hit.groups())
        raise ApiError(404, f"The requested URL {path} was not found on this server.")

    def _routes(self) -> list[tuple[str, str, Callable[..., dict[str, Any]]]]:
        return [
            ("GET", r"aggregated/instances", self._aggregated_instances),
            ("GET", r"zones/([^/]+)/instances", self._list_instances),
            ("GET", r"zones/([^/]+)/instances/([^/]+)", lambda r, p, z, n: dict(self._instance(p, z, n))),
            ("POST", r"zones/([^/]+)/instances/([^/]+)/(stop|start|setMachineType)", self._instance_action),
            ("GET", r"zones/([^/]+)/operations/([^/]+)", self._poll),
            ("POST", r"zones/([^/]+)/operations/([^/]+)/wait", self._poll),
            ("GET", r"aggregated/machineTypes", self._aggregated_machine_types),
            ("GET", r"zones/([^/]+)/machineTypes", self._list_machine_types),
            ("GET", r"zones/([^/]+)/machineTypes/([^/]+)", self._get_machine_type),
            ("GET", r"aggregated/acceleratorTypes", self._aggregated_accelerator_types),
            ("GET", r"aggregated/instanceGroupManagers", self._aggregated_migs),
            ("GET", r"((?:zones|regions)/[^/]+)/instanceGroupManagers/([^/]+)", lambda r, p, s, n: self._mig(p, s, n)),
            ("POST", r"((?:zones|regions)/[^/]+)/instanceGroupManagers/([^/]+)/listManagedInstances", self._managed),
            ("POST", r"zones/([^/]+)/instanceGroupManagers/([^/]+)/resize", self._resize),
            ("GET", r"aggregated/autoscalers", self._aggregated_autoscalers),
            ("GET", r"((?:global|regions/[^/]+))/instanceTemplates/([^/]+)", self._template),
        ]

    # paging
    def _page(self, request: Request, items: list[Any], cap: int | None = None) -> tuple[list[Any], dict[str, Any]]:
        try:
            start = token_offset(request.arg("pageToken"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, "Invalid value for field 'pageToken'.") from exc
        asked = int(request.arg("maxResults") or MAX_RESULTS)
        if not 0 <= asked <= MAX_RESULTS:
            raise ApiError(400, f"Invalid value for field 'maxResults': '{asked}'. Must be less than or equal to 500")
        size = min(asked or MAX_RESULTS, cap or self.page_size)
        extra = {"nextPageToken": page_token(start + size)} if start + size < len(items) else {}
        return items[start:start + size], extra

    def _list(self, request: Request, kind: str, ident: str, items: list[dict[str, Any]],
              cap: int | None = None) -> dict[str, Any]:
        page, extra = self._page(request, items, cap)
        return {"kind": kind, "id": ident, "items": page, "selfLink": f"{BASE}/{ident}", **extra}

    def _aggregated(self, request: Request, project: str, kind: str, key: str,
                    scoped: list[tuple[str, dict[str, Any]]], scopes: Iterable[str],
                    cap: int | None = None) -> dict[str, Any]:
        """One page over (scope, item) pairs; every scope appears, the empty ones with a warning."""
        scoped = sorted(scoped, key=lambda s: (s[0], s[1]["name"]))
        page, extra = self._page(request, scoped, cap)
        items: dict[str, dict[str, Any]] = {}
        for scope in sorted(set(scopes) | {s for s, _ in scoped}):
            found = [item for s, item in page if s == scope]
            items[scope] = {key: found} if found else {"warning": {
                "code": "NO_RESULTS_ON_PAGE", "message": f"There are no results for scope '{scope}' on this page.",
                "data": [{"key": "scope", "value": scope}]}}
        ident = f"projects/{project}/aggregated/{key}"
        return {"kind": kind, "id": ident, "items": items, "selfLink": f"{BASE}/{ident}", **extra}

    def _zone_scopes(self) -> list[str]:
        return [f"zones/{z}" for z in self.zones]

    def _all_scopes(self) -> list[str]:
        return self._zone_scopes() + sorted({f"regions/{region_of(z)}" for z in self.zones})

    # instances
    def _instance(self, project: str, zone: str, name: str) -> dict[str, Any]:
        inst = self.instances.get((project, zone, name))
        if inst is None:
            raise ApiError(404, f"The resource 'projects/{project}/zones/{zone}/instances/{name}' was not found")
        return inst

    def _aggregated_instances(self, request: Request, project: str) -> dict[str, Any]:
        scoped = [(f"zones/{z}", dict(i)) for (p, z, _), i in self.instances.items() if p == project]
        return self._aggregated(request, project, "compute#instanceAggregatedList", "instances", scoped,
                                self._zone_scopes())

    def _list_instances(self, request: Request, project: str, zone: str) -> dict[str, Any]:
        items = sorted((dict(i) for (p, z, _), i in self.instances.items() if p == project and z == zone),
                       key=lambda i: i["name"])
        return self._list(request, "compute#instanceList", f"projects/{project}/zones/{zone}/instances", items)

    def _instance_action(self, request: Request, project: str, zone: str, name: str, action: str) -> dict[str, Any]:
        inst = self._instance(project, zone, name)
        now = timestamp(self._now())
        if action == "stop":
            if inst["status"] not in ("TERMINATED", "STOPPING"):
                inst["status"] = "STOPPING"

            def finish() -> None:
                if inst["status"] != "TERMINATED":
                    inst.update(status="TERMINATED", lastStopTimestamp=timestamp(self._now()), cpuPlatform="Unknown CPU Platform")
        elif action == "start":
            if inst["status"] == "TERMINATED":
                inst["status"] = "STAGING"

            def finish() -> None:
                if inst["status"] != "RUNNING":
                    inst.update(status="RUNNING", lastStartTimestamp=timestamp(self._now()), cpuPlatform="Intel Cascade Lake")
        else:
            wanted = last_part(str((request.json() or {}).get("machineType") or ""))
            if not wanted:
                raise ApiError(400, "Required field 'machineType' not specified", "required")
            if inst["status"] != "TERMINATED":
                raise ApiError(400, f"Invalid resource usage: 'Instance '{name}' must be stopped before its machine "
                                    f"type can be changed; it is {inst['status']}.'", "invalidResourceUsage")
            if (zone, wanted) not in self.machine_types:
                raise ApiError(400, f"Invalid value for field 'resource.machineType': "
                                    f"'zones/{zone}/machineTypes/{wanted}'. Machine type does not exist in {zone}.")

            def finish() -> None:
                inst["machineType"] = f"{BASE}/projects/{project}/zones/{zone}/machineTypes/{wanted}"
        return self._operation(project, zone, action, inst, finish, now)

    def _operation(self, project: str, zone: str, op_type: str, target: dict[str, Any],
                   finish: Callable[[], None], now: str) -> dict[str, Any]:
        name = f"operation-{int(self._now().timestamp() * 1000)}-{next(self._ids):013x}-emulator"
        zone_url = f"{BASE}/projects/{project}/zones/{zone}"
        body = {"kind": "compute#operation", "id": self._id(), "name": name, "zone": zone_url,
                "operationType": op_type, "targetLink": target["selfLink"], "targetId": target["id"],
                "status": "PENDING", "user": "emulator@example.com", "progress": 0, "insertTime": now,
                "selfLink": f"{zone_url}/operations/{name}"}
        op = _Operation(body, self.operation_polls, finish)
        self.operations[(project, zone, name)] = op
        return op.poll(now) if self.operation_polls <= 0 else dict(body)

    def _poll(self, request: Request, project: str, zone: str, name: str) -> dict[str, Any]:
        op = self.operations.get((project, zone, name))
        if op is None:
            raise ApiError(404, f"The resource 'projects/{project}/zones/{zone}/operations/{name}' was not found")
        return op.poll(timestamp(self._now()))

    # Resource Manager
    def _search_projects(self, request: Request) -> dict[str, Any]:
        terms = dict(t.split(":", 1) for t in (request.arg("query") or "").split() if ":" in t)
        found = [p for p in self.projects.values()
                 if ("state" not in terms or p["state"] == terms["state"].upper())
                 and ("id" not in terms or p["projectId"] == terms["id"])]
        try:
            start = token_offset(request.arg("pageToken"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, "Request contains an invalid argument.") from exc
        size = min(int(request.arg("pageSize") or 0) or self.page_size, self.page_size)
        body: dict[str, Any] = {"projects": sorted(found, key=lambda p: p["projectId"])[start:start + size]}
        if start + size < len(found):
            body["nextPageToken"] = page_token(start + size)
        return body

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
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from providers.sandbox.json_server import JsonApiServer, Request, Response

BASE = "https://www.googleapis.com/compute/v1"  # what selfLinks say on the real API
MAX_RESULTS = 500  # the real API's cap
_PACIFIC = timezone(timedelta(hours=-7))  # the real API writes timestamps in US Pacific time
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
_REASON = {400: "invalid", 401: "authError", 403: "forbidden", 404: "notFound", 409: "alreadyExists",
           429: "rateLimitExceeded", 500: "backendError", 503: "backendError"}

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


def _builtin_machine_types() -> list[tuple[str, int, int, tuple[tuple[str, int], ...], tuple[str, ...]]]:
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


def _ts(value: datetime) -> str:
    return value.astimezone(_PACIFIC).isoformat(timespec="milliseconds")


def _region(zone: str) -> str:
    return zone.rsplit("-", 1)[0]


def _last(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    text = base64.urlsafe_b64decode(token.encode()).decode()
    if not text.startswith("offset:"):
        raise ValueError(token)
    return int(text.removeprefix("offset:"))


class ApiError(Exception):
    """An answer in the API's error shape (raised inside a route)."""

    def __init__(self, status: int, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.reason = status, message, reason


def error_body(status: int, message: str, reason: str | None = None) -> dict[str, Any]:
    """Google's JSON error shape (Compute Engine and Resource Manager alike)."""
    reason = reason or _REASON.get(status, "unknown")
    domain = "usageLimits" if status == 429 else "global"
    return {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN"),
                      "errors": [{"message": message, "domain": domain, "reason": reason}]}}


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


class GcpComputeEmulator(JsonApiServer):
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
            for name, cpus, mem, accels, type_zones in _builtin_machine_types():
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
                "kind": "compute#instance", "id": instance_id or self._id(), "creationTimestamp": _ts(created),
                "name": name, "description": "", "tags": {"fingerprint": "42WmSpB8rSM="},
                "machineType": f"{zone_url}/machineTypes/{machine_type}", "status": status, "zone": zone_url,
                "canIpForward": False,
                "networkInterfaces": [{"kind": "compute#networkInterface", "name": "nic0", "networkIP": "10.128.0.2",
                                       "network": f"{BASE}/projects/{project}/global/networks/default",
                                       "subnetwork": f"{BASE}/projects/{project}/regions/{_region(zone)}"
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
                body["lastStartTimestamp"] = _ts(last_start or created)
            if status == "TERMINATED":
                body["lastStopTimestamp"] = _ts(now - timedelta(hours=1))
            self.instances[(project, zone, name)] = body
            return body

    def instance(self, project: str, zone: str, name: str) -> dict[str, Any]:
        """The stored resource of one VM (``KeyError`` when absent)."""
        return self.instances[(project, zone, name)]

    def add_instance_template(self, project: str, name: str, machine_type: str, *,
                              accelerators: Iterable[tuple[str, int]] = (), spot: bool = False,
                              labels: Mapping[str, str] | None = None, region: str | None = None) -> dict[str, Any]:
        """A global (or, with ``region``, regional) instance template; properties as the API shows them
        (bare ``machineType`` and ``acceleratorType`` names)."""
        with self._lock:
            self.add_project(project)
            scope = f"regions/{region}" if region else "global"
            link = f"{BASE}/projects/{project}/{scope}/instanceTemplates/{name}"
            props: dict[str, Any] = {"machineType": machine_type, "labels": dict(labels or {}),
                                     "scheduling": {"provisioningModel": "SPOT" if spot else "STANDARD",
                                                    "preemptible": spot}}
            if accelerators:
                props["guestAccelerators"] = [{"acceleratorType": t, "acceleratorCount": c} for t, c in accelerators]
            body = {"kind": "compute#instanceTemplate", "id": self._id(), "name": name, "properties": props,
                    "creationTimestamp": _ts(self._now() - timedelta(days=60)), "selfLink": link}
            if region:
                body["region"] = f"{BASE}/projects/{project}/regions/{region}"
            self.templates[link] = body
            return body

    def add_mig(self, project: str, name: str, template: str, *, zone: str | None = None, region: str | None = None,
                target_size: int = 0, base_instance_name: str | None = None, create_instances: bool = True,
                initial_delay_sec: int | None = None, zones: Sequence[str] | None = None) -> dict[str, Any]:
        """A managed instance group, zonal (``zone``) or regional (``region``, spread over ``zones`` of it).

        ``template``: the name of a template added with ``add_instance_template`` (or a full URL).
        ``create_instances``: add ``target_size`` member VMs named ``{base_instance_name}-xxxx`` as the
        real MIG does, RUNNING, with the template's machine type, GPUs and labels. Members carry the
        ``created-by`` metadata item naming the MIG (projects/NUMBER/zones|regions/.../instanceGroupManagers/NAME).
        ``initial_delay_sec``: an autohealing policy's initial delay.
        """
        if (zone is None) == (region is None):
            raise ValueError("add_mig: give exactly one of zone and region")
        with self._lock:
            project_body = self.add_project(project)
            link = template if "/" in template else next(
                (u for u, t in self.templates.items() if t["name"] == template and f"/projects/{project}/" in u), None)
            if link is None or link not in self.templates:
                raise KeyError(f"add_mig: no instance template {template!r} in {project}")
            scope = f"zones/{zone}" if zone else f"regions/{region}"
            spread = [zone] if zone else list(zones or [z for z in self.zones if _region(z) == region][:3])
            for z in spread:
                self._zone(z)
            scope_url = f"{BASE}/projects/{project}/{scope}"
            body: dict[str, Any] = {
                "kind": "compute#instanceGroupManager", "id": self._id(), "name": name,
                "creationTimestamp": _ts(self._now() - timedelta(days=30)), "instanceTemplate": link,
                "versions": [{"instanceTemplate": link}], "instanceGroup": f"{scope_url}/instanceGroups/{name}",
                "baseInstanceName": base_instance_name or name, "fingerprint": "BJjgnP4YLbE=", "targetSize": target_size,
                "currentActions": {"none": target_size, "creating": 0, "deleting": 0, "recreating": 0},
                "status": {"isStable": True}, "selfLink": f"{scope_url}/instanceGroupManagers/{name}",
                "updatePolicy": {"type": "OPPORTUNISTIC", "minimalAction": "REPLACE"},
                "_createdBy": f"{project_body['name']}/{scope}/instanceGroupManagers/{name}", "_zones": spread,
            }
            body["zone" if zone else "region"] = scope_url
            if region:
                body["distributionPolicy"] = {"zones": [{"zone": f"{BASE}/projects/{project}/zones/{z}"} for z in spread],
                                              "targetShape": "EVEN"}
            if initial_delay_sec is not None:
                body["autoHealingPolicies"] = [{"healthCheck": f"{BASE}/projects/{project}/global/healthChecks/{name}-hc",
                                                "initialDelaySec": initial_delay_sec}]
            self.migs[(project, scope, name)] = body
            if create_instances:
                for i in range(target_size):
                    self._create_member(project, body, i)
            return body

    def _create_member(self, project: str, mig: dict[str, Any], i: int) -> dict[str, Any]:
        props = self.templates[mig["instanceTemplate"]]["properties"]
        suffix = hashlib.sha1(f"{mig['selfLink']}#{i}".encode()).hexdigest()[:4]
        zone = mig["_zones"][i % len(mig["_zones"])]
        spot = props["scheduling"]["provisioningModel"] == "SPOT"
        accels = [(a["acceleratorType"], a["acceleratorCount"]) for a in props.get("guestAccelerators", [])] or None
        return self.add_instance(project, zone, f"{mig['baseInstanceName']}-{suffix}", props["machineType"],
                                 labels=props.get("labels"), accelerators=accels, spot=spot, group=mig["name"])

    def add_autoscaler(self, project: str, mig: str, *, min_replicas: int, max_replicas: int,
                       cool_down_sec: int = 60, mode: str = "ON", name: str | None = None,
                       schedules: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
        """An autoscaler on MIG ``mig`` (by name). ``schedules``: name -> scaling schedule as the API
        spells it, e.g. ``{"workday": {"schedule": "0 8 * * 1-5", "timeZone": "Europe/Paris",
        "durationSec": 36000, "minRequiredReplicas": 4}}``. ``cool_down_sec`` is the API's
        ``coolDownPeriodSec`` (the console's "initialization period")."""
        with self._lock:
            target = self._mig_named(project, mig)
            scope = "/".join(target["selfLink"].split("/")[-4:-2])
            scope_url = f"{BASE}/projects/{project}/{scope}"
            name = name or f"{mig}-autoscaler"
            policy: dict[str, Any] = {"minNumReplicas": min_replicas, "maxNumReplicas": max_replicas,
                                      "coolDownPeriodSec": cool_down_sec, "mode": mode,
                                      "cpuUtilization": {"utilizationTarget": 0.6, "predictiveMethod": "NONE"}}
            if schedules:
                policy["scalingSchedules"] = {k: {"timeZone": "UTC", "disabled": False, "description": "", **v}
                                              for k, v in schedules.items()}
            body = {"kind": "compute#autoscaler", "id": self._id(), "name": name, "target": target["selfLink"],
                    "autoscalingPolicy": policy, "creationTimestamp": _ts(self._now() - timedelta(days=30)),
                    "selfLink": f"{scope_url}/autoscalers/{name}", "status": "ACTIVE",
                    "recommendedSize": target["targetSize"], "zone" if scope.startswith("zones/") else "region": scope_url}
            self.autoscalers[(project, scope, name)] = body
            return body

    def deny(self, project: str, status: int = 403, reason: str = "accessNotConfigured", message: str | None = None) -> None:
        """Answer every Compute call on ``project`` with this error (default: the API is not enabled there)."""
        self._denied[project] = (status, reason, message or (
            f"Compute Engine API has not been used in project {project} before or it is disabled."))

    def _zone(self, zone: str) -> None:
        if zone not in self.zones:
            self.zones.append(zone)

    def _mig_named(self, project: str, name: str) -> dict[str, Any]:
        found = [m for (p, _, n), m in self.migs.items() if p == project and n == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} MIGs named {name!r} in {project}")
        return found[0]

    def members(self, mig: dict[str, Any]) -> list[dict[str, Any]]:
        """The VMs whose ``created-by`` metadata names ``mig`` (what listManagedInstances lists)."""
        out = []
        for inst in self.instances.values():
            items = {i["key"]: i.get("value") for i in inst["metadata"].get("items", [])}
            if items.get("created-by") == mig["_createdBy"]:
                out.append(inst)
        return sorted(out, key=lambda i: i["name"])

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
            start = _offset(request.arg("pageToken"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, "Invalid value for field 'pageToken'.") from exc
        asked = int(request.arg("maxResults") or MAX_RESULTS)
        if not 0 <= asked <= MAX_RESULTS:
            raise ApiError(400, f"Invalid value for field 'maxResults': '{asked}'. Must be less than or equal to 500")
        size = min(asked or MAX_RESULTS, cap or self.page_size)
        extra = {"nextPageToken": _token(start + size)} if start + size < len(items) else {}
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
        return self._zone_scopes() + sorted({f"regions/{_region(z)}" for z in self.zones})

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
        now = _ts(self._now())
        if action == "stop":
            if inst["status"] not in ("TERMINATED", "STOPPING"):
                inst["status"] = "STOPPING"

            def finish() -> None:
                if inst["status"] != "TERMINATED":
                    inst.update(status="TERMINATED", lastStopTimestamp=_ts(self._now()), cpuPlatform="Unknown CPU Platform")
        elif action == "start":
            if inst["status"] == "TERMINATED":
                inst["status"] = "STAGING"

            def finish() -> None:
                if inst["status"] != "RUNNING":
                    inst.update(status="RUNNING", lastStartTimestamp=_ts(self._now()), cpuPlatform="Intel Cascade Lake")
        else:
            wanted = _last(str((request.json() or {}).get("machineType") or ""))
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
        return op.poll(_ts(self._now()))

    # types
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

    # groups
    @staticmethod
    def _public(body: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in body.items() if not k.startswith("_")}

    def _mig(self, project: str, scope: str, name: str) -> dict[str, Any]:
        mig = self.migs.get((project, scope, name))
        if mig is None:
            raise ApiError(404, f"The resource 'projects/{project}/{scope}/instanceGroupManagers/{name}' was not found")
        return self._public(mig)

    def _aggregated_migs(self, request: Request, project: str) -> dict[str, Any]:
        scoped = [(s, self._public(m)) for (p, s, _), m in self.migs.items() if p == project]
        return self._aggregated(request, project, "compute#instanceGroupManagerAggregatedList",
                                "instanceGroupManagers", scoped, self._all_scopes())

    def _managed(self, request: Request, project: str, scope: str, name: str) -> dict[str, Any]:
        self._mig(project, scope, name)
        mig = self.migs[(project, scope, name)]
        items = [{"instance": i["selfLink"], "id": i["id"], "name": i["name"], "instanceStatus": i["status"],
                  "currentAction": self.member_actions.get(i["selfLink"], "NONE"),
                  "version": {"instanceTemplate": mig["instanceTemplate"]}}
                 for i in self.members(mig)]
        page, extra = self._page(request, items)
        return {"managedInstances": page, **extra}

    def _resize(self, request: Request, project: str, zone: str, name: str) -> dict[str, Any]:
        scope = f"zones/{zone}"
        self._mig(project, scope, name)
        mig = self.migs[(project, scope, name)]
        size = int(request.arg("size") or -1)
        if size < 0:
            raise ApiError(400, "Invalid value for field 'size': must be a non-negative integer")

        def finish() -> None:
            members = self.members(mig)
            for inst in members[size:]:
                del self.instances[(project, _last(inst["zone"]), inst["name"])]
            i = 0
            while len(self.members(mig)) < size:
                self._create_member(project, mig, len(members) + i)
                i += 1
            mig["targetSize"] = size
            mig["currentActions"]["none"] = size
        return self._operation(project, zone, "compute.instanceGroupManagers.resize", mig, finish, _ts(self._now()))

    def _aggregated_autoscalers(self, request: Request, project: str) -> dict[str, Any]:
        scoped = [(s, dict(a)) for (p, s, _), a in self.autoscalers.items() if p == project]
        return self._aggregated(request, project, "compute#autoscalerAggregatedList", "autoscalers", scoped,
                                self._all_scopes())

    def _template(self, request: Request, project: str, scope: str, name: str) -> dict[str, Any]:
        link = f"{BASE}/projects/{project}/{scope}/instanceTemplates/{name}"
        if link not in self.templates:
            raise ApiError(404, f"The resource 'projects/{project}/{scope}/instanceTemplates/{name}' was not found")
        return self.templates[link]

    # Resource Manager
    def _search_projects(self, request: Request) -> dict[str, Any]:
        terms = dict(t.split(":", 1) for t in (request.arg("query") or "").split() if ":" in t)
        found = [p for p in self.projects.values()
                 if ("state" not in terms or p["state"] == terms["state"].upper())
                 and ("id" not in terms or p["projectId"] == terms["id"])]
        try:
            start = _offset(request.arg("pageToken"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, "Request contains an invalid argument.") from exc
        size = min(int(request.arg("pageSize") or 0) or self.page_size, self.page_size)
        body: dict[str, Any] = {"projects": sorted(found, key=lambda p: p["projectId"])[start:start + size]}
        if start + size < len(found):
            body["nextPageToken"] = _token(start + size)
        return body

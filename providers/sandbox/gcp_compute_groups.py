"""Managed instance groups of the ``gcp_compute`` emulator: instance templates, MIGs and autoscalers.

``InstanceGroupsMixin`` (mixed into ``GcpComputeEmulator``) seeds them (``add_instance_template``,
``add_mig``, ``add_autoscaler``; ``members`` lists a MIG's VMs) and answers, in the shapes of the Compute
Engine v1 reference and the recorded c7n-gcp-flights answers: ``aggregated/instanceGroupManagers`` (zonal
and regional MIGs), ``zones|regions/{s}/instanceGroupManagers/{m}`` (get), ``.../{m}/listManagedInstances``,
zonal ``.../{m}/resize?size=N`` (a zonal Operation), ``aggregated/autoscalers`` and
``global|regions/{r}/instanceTemplates/{t}``. A VM belongs to a MIG by its ``created-by`` metadata item,
as on the real API.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from providers.sandbox.gcp_compute_rest import BASE, ApiError, last_part, region_of, timestamp
from providers.sandbox.json_server import Request


class InstanceGroupsMixin:
    """Seeding and routes of templates, MIGs and autoscalers; the host (``GcpComputeEmulator``) holds the
    state and the helpers annotated below."""

    _lock: Any  # the host's RLock
    zones: list[str]
    instances: dict[tuple[str, str, str], dict[str, Any]]
    templates: dict[str, dict[str, Any]]
    migs: dict[tuple[str, str, str], dict[str, Any]]
    autoscalers: dict[tuple[str, str, str], dict[str, Any]]
    member_actions: dict[str, str]
    _now: Callable[[], datetime]
    _id: Callable[[], str]
    _zone: Callable[[str], None]
    add_project: Callable[..., dict[str, Any]]
    add_instance: Callable[..., dict[str, Any]]
    _page: Callable[..., tuple[list[Any], dict[str, Any]]]
    _aggregated: Callable[..., dict[str, Any]]
    _all_scopes: Callable[[], list[str]]
    _operation: Callable[..., dict[str, Any]]

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
                    "creationTimestamp": timestamp(self._now() - timedelta(days=60)), "selfLink": link}
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
            spread = [zone] if zone else list(zones or [z for z in self.zones if region_of(z) == region][:3])
            for z in spread:
                self._zone(z)
            scope_url = f"{BASE}/projects/{project}/{scope}"
            body: dict[str, Any] = {
                "kind": "compute#instanceGroupManager", "id": self._id(), "name": name,
                "creationTimestamp": timestamp(self._now() - timedelta(days=30)), "instanceTemplate": link,
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
                    "autoscalingPolicy": policy, "creationTimestamp": timestamp(self._now() - timedelta(days=30)),
                    "selfLink": f"{scope_url}/autoscalers/{name}", "status": "ACTIVE",
                    "recommendedSize": target["targetSize"], "zone" if scope.startswith("zones/") else "region": scope_url}
            self.autoscalers[(project, scope, name)] = body
            return body

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

    # -- routes --------------------------------------------------------------------------------
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
                del self.instances[(project, last_part(inst["zone"]), inst["name"])]
            i = 0
            while len(self.members(mig)) < size:
                self._create_member(project, mig, len(members) + i)
                i += 1
            mig["targetSize"] = size
            mig["currentActions"]["none"] = size
        return self._operation(project, zone, "compute.instanceGroupManagers.resize", mig, finish, timestamp(self._now()))

    def _aggregated_autoscalers(self, request: Request, project: str) -> dict[str, Any]:
        scoped = [(s, dict(a)) for (p, s, _), a in self.autoscalers.items() if p == project]
        return self._aggregated(request, project, "compute#autoscalerAggregatedList", "autoscalers", scoped,
                                self._all_scopes())

    def _template(self, request: Request, project: str, scope: str, name: str) -> dict[str, Any]:
        link = f"{BASE}/projects/{project}/{scope}/instanceTemplates/{name}"
        if link not in self.templates:
            raise ApiError(404, f"The resource 'projects/{project}/{scope}/instanceTemplates/{name}' was not found")
        return self.templates[link]

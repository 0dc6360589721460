"""Compute Engine mutation primitives for the guarded apply: stop, start, change machine type, resize a MIG.

Each call sends the ``*_unary`` method (the SDK's non-unary variants return operation objects whose
``.result()`` polls compute.googleapis.com whatever the endpoint) and waits for the zonal Operation
with ``wait_zone_operation`` (``zoneOperations.wait`` until DONE; an operation ending in error raises
``ProviderError`` naming it). Every request is counted. Nothing here deletes anything.

Compute Engine changes the machine type of stopped (TERMINATED) VMs only: ``set_machine_type`` reads
the VM first and refuses otherwise, rather than stopping it on the caller's behalf.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from providers.base import DeclaredActuator, Outcome, Preview, int_param
from providers.errors import ProviderError
from providers.gcp.client import GcpClients, translated, wait_zone_operation
from providers.gcp.inventory import instance_type_name, last
from providers.gcp.permissions import ACTUATOR_CALLS, kind_permissions
from providers.model import Action, Cloud

log = logging.getLogger(__name__)

Sleep = Callable[[float], None]


def _wait(clients: GcpClients, project: str, zone: str, operation: Any, timeout: float, sleep: Sleep | None) -> None:
    done = wait_zone_operation(clients, project, zone, operation, timeout=timeout, sleep=sleep)
    log.info("event=gcp_operation_done project=%s zone=%s type=%s target=%s", project, zone,
             done.operation_type, last(done.target_link))


def stop_instance(clients: GcpClients, project: str, zone: str, name: str, *, timeout: float = 600.0,
                  sleep: Sleep | None = None) -> None:
    """Stop VM ``name`` (``instances.stop``) and wait until the operation is DONE (the VM TERMINATED)."""
    _power(clients, project, zone, name, "stop", timeout, sleep)


def start_instance(clients: GcpClients, project: str, zone: str, name: str, *, timeout: float = 600.0,
                   sleep: Sleep | None = None) -> None:
    """Start VM ``name`` (``instances.start``) and wait until the operation is DONE."""
    _power(clients, project, zone, name, "start", timeout, sleep)


def _power(clients: GcpClients, project: str, zone: str, name: str, action: str, timeout: float,
           sleep: Sleep | None) -> None:
    operation = f"compute.Instances.{action.capitalize()}"
    with translated(operation, clients.where("compute")):
        clients.count(operation)
        call = getattr(clients.compute("InstancesClient"), f"{action}_unary")
        op = call(project=project, zone=zone, instance=name, retry=clients.retry, timeout=clients.timeout)
    _wait(clients, project, zone, op, timeout, sleep)


def set_machine_type(clients: GcpClients, project: str, zone: str, name: str, machine_type: str, *,
                     timeout: float = 600.0, sleep: Sleep | None = None) -> None:
    """Change the machine type of stopped VM ``name`` (``instances.setMachineType``) and wait for it.

    ``machine_type`` is a machine type name, or a catalog name with attached GPUs
    (``n1-standard-4+1xnvidia-tesla-t4``) whose GPUs must be the ones the VM already has: changing
    attached GPUs is another call (``setMachineResources``), not done here. Refuses with
    ``ProviderError`` when the VM is not TERMINATED.
    """
    where = clients.where("compute")
    instances = clients.compute("InstancesClient")
    with translated("compute.Instances.Get", where):
        clients.count("compute.Instances.Get")
        inst = instances.get(project=project, zone=zone, instance=name, retry=clients.retry, timeout=clients.timeout)
    place = f"gcp compute.Instances.SetMachineType at {where}: {project}/{zone}/{name}"
    if inst.status != "TERMINATED":
        raise ProviderError(f"{place} is {inst.status}; Compute Engine changes the machine type of stopped "
                            "(TERMINATED) instances only", hint="stop the instance first")
    machine, _, attached = machine_type.partition("+")
    if attached:
        have = {last(a.accelerator_type): int(a.accelerator_count) for a in inst.guest_accelerators}
        now = ",".join(f"{c}x{t}" for t, c in sorted(have.items())) or "none"
        if now != attached:
            raise ProviderError(f"{place}: {machine_type} needs GPUs {attached}, the instance has {now}; "
                                "changing attached GPUs is not a machine type change",
                                hint="change the GPUs with instances.setMachineResources")
    body = {"machine_type": f"zones/{zone}/machineTypes/{machine}"}
    with translated("compute.Instances.SetMachineType", where):
        clients.count("compute.Instances.SetMachineType")
        op = instances.set_machine_type_unary(project=project, zone=zone, instance=name,
                                              instances_set_machine_type_request_resource=body,
                                              retry=clients.retry, timeout=clients.timeout)
    _wait(clients, project, zone, op, timeout, sleep)


def resize_group(clients: GcpClients, project: str, zone: str, name: str, size: int, *, timeout: float = 600.0,
                 sleep: Sleep | None = None) -> None:
    """Set the target size of zonal MIG ``name`` (``instanceGroupManagers.resize``) and wait for the operation.

    The operation is DONE once the target size is set; the group then creates or deletes members itself.
    """
    if size < 0:
        raise ProviderError(f"gcp compute.InstanceGroupManagers.Resize: size {size} for {project}/{zone}/{name} "
                            "is negative")
    with translated("compute.InstanceGroupManagers.Resize", clients.where("compute")):
        clients.count("compute.InstanceGroupManagers.Resize")
        op = clients.compute("InstanceGroupManagersClient").resize_unary(
            project=project, zone=zone, instance_group_manager=name, size=size, retry=clients.retry,
            timeout=clients.timeout)
    _wait(clients, project, zone, op, timeout, sleep)


_ZONE = re.compile(r"^[a-z]+-[a-z]+[0-9]+-[a-z]$")


def instance_state(clients: GcpClients, project: str, zone: str, name: str) -> dict[str, Any]:
    """VM ``name``'s ``state`` (Compute Engine status: RUNNING, TERMINATED, ...) and ``type``, named as the
    inventory and the catalog name it: the machine type, ``+<N>x<accelerator>`` when GPUs are attached (N1)."""
    with translated("compute.Instances.Get", clients.where("compute")):
        clients.count("compute.Instances.Get")
        inst = clients.compute("InstancesClient").get(project=project, zone=zone, instance=name, retry=clients.retry,
                                                      timeout=clients.timeout)
    attached = [(last(a.accelerator_type), int(a.accelerator_count)) for a in inst.guest_accelerators]
    return {"state": str(inst.status), "type": instance_type_name(last(inst.machine_type), attached)}


def group_size(clients: GcpClients, project: str, zone: str, name: str) -> dict[str, Any]:
    """Zonal MIG ``name``'s ``size`` (its target size)."""
    with translated("compute.InstanceGroupManagers.Get", clients.where("compute")):
        clients.count("compute.InstanceGroupManagers.Get")
        mig = clients.compute("InstanceGroupManagersClient").get(
            project=project, zone=zone, instance_group_manager=name, retry=clients.retry, timeout=clients.timeout)
    return {"size": int(mig.target_size)}


def _gpus(instance_type: str) -> str:
    """The accelerator part of a catalog name (``n1-standard-8+1xnvidia-tesla-t4`` -> ``1xnvidia-tesla-t4``)."""
    return instance_type.partition("+")[2]


#: Compute Engine statuses: the ones a stop is done or under way in, a start is.
_STOPPING = ("STOPPING", "TERMINATED")
_STARTING = ("PROVISIONING", "STAGING", "RUNNING")


class GcpActuator(DeclaredActuator):
    """``providers.base.Actuator`` over the primitives above. ``Action.ref``: project (``account``) and the VM or
    zonal MIG name; the zone is ``params["zone"]`` (the plan builder sets it from ``Resource.zone``), else
    ``ref.region`` when that names a zone. Params: ``resize`` ``from_type``, ``to_type`` (catalog names,
    ``n1-standard-8+1xnvidia-tesla-t4``: a change of the attached GPUs is refused, else the bare machine type
    is set, on a stopped VM only); ``scale`` ``size`` (a zonal MIG's target size). State: ``{"state": status,
    "type": ...}`` for a VM, ``{"size": n}`` for a MIG. Compute Engine has no dry run: ``preview`` reads the
    resource. An undo never stops a VM that a stop found stopped already. Kinds and permissions come from
    ``permissions.ACTUATOR_CALLS``."""

    cloud = Cloud.GCP
    NAME = "GCP"
    CALLS = ACTUATOR_CALLS

    REASONS: Mapping[str, str] = {
        "deallocate": "an Azure state: a stopped (TERMINATED) VM already bills no compute (use stop)",
        "power_off": "Compute Engine has no power-off apart from stop (use stop)",
        "schedule": "off-hours schedules belong to Compute Engine instance schedules (a resource policy attached "
                    "to the VM: gcloud compute resource-policies create instance-schedule), not to costagent",
        "tag": "labels (instances.setLabels) are not changed by costagent on GCP",
        "spot": "spot moves are advice only: a relaunch",
        "commitment": "commitments are advice only",
        "consolidate": "consolidation is advice only: it moves workloads",
    }

    def __init__(self, clients: GcpClients, *, timeout: float = 600.0, sleep: Sleep | None = None) -> None:
        self.clients = clients
        self.timeout = timeout
        self.sleep = sleep

    def kind_permissions(self, kind: str) -> tuple[str, ...]:
        return kind_permissions(kind)

    def _where(self, action: Action) -> tuple[str, str, str]:
        self._check(action)
        zone = str(action.params.get("zone") or action.ref.region)
        if not _ZONE.match(zone):
            raise ProviderError(f"gcp: {action.kind} of {action.ref.id} needs its zone, not {zone!r}",
                                code="InvalidParameter", hint='give params["zone"], e.g. "us-central1-a"')
        return action.ref.account, zone, action.ref.id

    def read(self, action: Action) -> dict[str, Any]:
        project, zone, name = self._where(action)
        if action.kind == "scale":
            return group_size(self.clients, project, zone, name)
        return instance_state(self.clients, project, zone, name)

    def effect_seen(self, action: Action, state: Mapping[str, Any]) -> bool:
        self._check(action)
        if action.kind == "stop":
            return state.get("state") in _STOPPING
        if action.kind == "start":
            return state.get("state") in _STARTING
        if action.kind == "resize":
            return state.get("type") == action.params.get("to_type")
        return state.get("size") == int_param(action, "size")

    def _refusal(self, action: Action, state: Mapping[str, Any]) -> tuple[str, str]:
        """Why ``action`` cannot be done on a resource in ``state``: (code, reason), ("", "") when it can."""
        status, params = state.get("state"), action.params
        if action.kind == "stop" and status != "RUNNING":
            return "IncorrectState", f"the VM is {status}, not RUNNING: nothing to stop"
        if action.kind == "start" and status != "TERMINATED":
            return "IncorrectState", f"the VM is {status}, not TERMINATED: nothing to start"
        if action.kind == "resize":
            to_type = str(params.get("to_type") or "")
            from_type = str(params.get("from_type") or state.get("type"))
            if not to_type:
                return "InvalidParameter", 'no params["to_type"]'
            if _gpus(from_type) != _gpus(to_type):
                return "GpuChange", (f"{from_type} -> {to_type} changes the attached GPUs; that is not a machine "
                                     "type change (instances.setMachineType keeps the GPUs)")
            if from_type != state.get("type"):
                return "StaleAction", f"the VM is {state.get('type')}, not {from_type}: audit again"
            if to_type == state.get("type"):
                return "NoChange", f"the VM is {to_type} already"
            if status != "TERMINATED":
                return "IncorrectState", (f"the VM is {status}; Compute Engine changes the machine type of stopped "
                                          "(TERMINATED) VMs only: stop it first")
        if action.kind == "scale":
            size = int_param(action, "size")
            if size is None or size < 0:
                return "InvalidParameter", f'params["size"] must be a non-negative integer, not {params.get("size")!r}'
            if size == state.get("size"):
                return "NoChange", f"the group's target size is {size} already"
        return "", ""

    def preview(self, action: Action) -> Preview:
        state = self.read(action)
        _, why = self._refusal(action, state)
        if why:
            return Preview(action, False, False, state, why)
        detail = (f"target size {state['size']} -> {int_param(action, 'size')}" if action.kind == "scale" else
                  f"{state['type']} -> {action.params['to_type']}" if action.kind == "resize" else "")
        return Preview(action, True, False, state, detail)

    def _apply(self, action: Action, kind: str, params: Mapping[str, Any]) -> None:
        project, zone, name = self._where(action)
        wait = {"timeout": self.timeout, "sleep": self.sleep}
        if kind == "stop":
            stop_instance(self.clients, project, zone, name, **wait)
        elif kind == "start":
            start_instance(self.clients, project, zone, name, **wait)
        elif kind == "resize":
            machine = str(params["to_type"]).partition("+")[0]
            set_machine_type(self.clients, project, zone, name, machine, **wait)
        elif kind == "scale":
            resize_group(self.clients, project, zone, name, int(params["size"]), **wait)

    def _hint(self, code: str) -> str | None:
        return "stop the VM first" if code == "IncorrectState" else None

    def undo(self, action: Action, before: Mapping[str, Any]) -> Outcome:
        """Bring the resource back to ``before``: start a VM a stop stopped, stop a VM a start started, set the
        machine type back (the VM must be TERMINATED: Compute Engine refuses otherwise), set the target size
        back. Nothing to do (already as ``before``) is no call and says so in ``Outcome.note``."""
        now = self.read(action)
        kind, params, note = action.kind, dict(action.params), ""
        if kind in ("stop", "start"):
            was = str(before.get("state"))
            if self.effect_seen(action, before):  # it was so before the action: the action changed nothing
                kind, note = "", f"it was {was} before the {action.kind}: nothing to undo"
            elif was not in ("RUNNING", "TERMINATED"):
                raise ProviderError(f"gcp: cannot undo {action.kind} of {action.ref.id}: it was {was}",
                                    code="UndoUnsupported")
            else:
                kind = "start" if was == "RUNNING" else "stop"
                if now.get("state") in (_STARTING if kind == "start" else _STOPPING):
                    kind, note = "", f"it is {now.get('state')} already"
        elif kind == "resize":
            params = {"to_type": before["type"]}
            if now.get("type") == before["type"]:
                kind, note = "", f"it is {before['type']} already"
            elif _gpus(str(now.get("type"))) != _gpus(str(before["type"])):
                raise ProviderError(f"gcp: cannot undo the resize of {action.ref.id}: it is {now.get('type')}, "
                                    f"{before['type']} has other GPUs", code="UndoUnsupported")
        elif kind == "scale":
            params = {"size": before["size"]}
            if now.get("size") == before["size"]:
                kind, note = "", f"its target size is {before['size']} already"
        if kind:
            self._apply(action, kind, params)
        return Outcome(action, now, self.read(action), note)


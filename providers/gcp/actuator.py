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
from collections.abc import Callable
from typing import Any

from providers.errors import ProviderError
from providers.gcp.client import GcpClients, translated, wait_zone_operation
from providers.gcp.inventory import last

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

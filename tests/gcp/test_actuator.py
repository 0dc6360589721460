"""Compute Engine mutations through the real google-cloud-compute client against the local emulator: the
change shows in the next list, operations are polled until DONE, machine type changes need a stopped VM."""

from __future__ import annotations

import google.api_core.exceptions as gexc
import pytest

from providers.catalog import PriceCatalog
from providers.errors import NotFound, ProviderError
from providers.gcp import actuator
from providers.gcp.client import GcpClients
from providers.gcp.groups import list_groups
from providers.gcp.inventory import list_instances
from providers.model import Cloud, ResourceState
from providers.sandbox.gcp_compute import GcpComputeEmulator
from tests.gcp.compute_support import (  # noqa: F401
    NOW,
    PROJECT,
    clients_fixture,
    emulator_fixture,
    no_sleep,
)

CATALOG = PriceCatalog.shipped(Cloud.GCP)
ZONE = "us-central1-a"


def _state(clients: GcpClients, name: str) -> tuple[ResourceState, str]:
    found = {r.ref.id: r for r in list_instances(clients, PROJECT, CATALOG)}
    return found[name].state, found[name].instance_type


def test_stop_shows_in_the_next_list(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_instance(PROJECT, ZONE, "idle-a100", "a2-highgpu-1g")
    emulator.add_instance(PROJECT, ZONE, "busy-a100", "a2-highgpu-1g")
    assert _state(clients, "idle-a100")[0] is ResourceState.RUNNING

    actuator.stop_instance(clients, PROJECT, ZONE, "idle-a100")

    assert _state(clients, "idle-a100")[0] is ResourceState.STOPPED
    assert _state(clients, "busy-a100")[0] is ResourceState.RUNNING
    assert clients.calls["compute.Instances.Stop"] == 1
    assert emulator.count(f"POST /compute/v1/projects/{PROJECT}/zones/{ZONE}/instances/idle-a100/stop") == 1


def test_operation_is_polled_until_done(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.operation_polls = 3  # three answers RUNNING, then DONE
    emulator.add_instance(PROJECT, ZONE, "vm", "g2-standard-8")
    seen: list[str] = []

    def between_polls(_: float) -> None:
        seen.append(emulator.instance(PROJECT, ZONE, "vm")["status"])

    actuator.stop_instance(clients, PROJECT, ZONE, "vm", sleep=between_polls)

    assert clients.calls["compute.ZoneOperations.Wait"] == 4
    assert emulator.count("/wait") == 4
    assert seen == ["STOPPING"] * 3  # stopping while the operation runs
    assert emulator.instance(PROJECT, ZONE, "vm")["status"] == "TERMINATED"


def test_start_after_stop_runs_again(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_instance(PROJECT, ZONE, "vm", "g2-standard-8", status="TERMINATED")

    actuator.start_instance(clients, PROJECT, ZONE, "vm", sleep=no_sleep)

    [res] = list_instances(clients, PROJECT, CATALOG)
    assert res.state is ResourceState.RUNNING and res.launched_at == NOW


def test_machine_type_change_on_a_running_vm_is_refused(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_instance(PROJECT, ZONE, "vm", "a2-highgpu-2g")

    with pytest.raises(ProviderError, match=r"is RUNNING.*TERMINATED") as err:
        actuator.set_machine_type(clients, PROJECT, ZONE, "vm", "a2-highgpu-1g")

    assert err.value.hint == "stop the instance first"
    assert emulator.count("/setMachineType") == 0 and "compute.Instances.SetMachineType" not in clients.calls
    assert _state(clients, "vm")[1] == "a2-highgpu-2g"


def test_the_api_itself_refuses_a_running_vm(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_instance(PROJECT, ZONE, "vm", "a2-highgpu-2g")

    with pytest.raises(gexc.BadRequest, match="must be stopped"):
        clients.compute("InstancesClient").set_machine_type_unary(
            project=PROJECT, zone=ZONE, instance="vm",
            instances_set_machine_type_request_resource={"machine_type": f"zones/{ZONE}/machineTypes/a2-highgpu-1g"})


def test_machine_type_change_on_a_stopped_vm_shows_in_the_next_list(emulator: GcpComputeEmulator,
                                                                    clients: GcpClients) -> None:
    emulator.add_instance(PROJECT, ZONE, "vm", "a2-highgpu-2g")
    actuator.stop_instance(clients, PROJECT, ZONE, "vm")

    actuator.set_machine_type(clients, PROJECT, ZONE, "vm", "a2-highgpu-1g")

    assert _state(clients, "vm") == (ResourceState.STOPPED, "a2-highgpu-1g")
    assert clients.calls["compute.Instances.SetMachineType"] == 1


def test_attached_gpu_machine_keeps_its_gpus(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_instance(PROJECT, ZONE, "vm", "n1-standard-16", status="TERMINATED",
                          accelerators=[("nvidia-tesla-t4", 1)])

    actuator.set_machine_type(clients, PROJECT, ZONE, "vm", "n1-standard-8+1xnvidia-tesla-t4")

    assert _state(clients, "vm")[1] == "n1-standard-8+1xnvidia-tesla-t4"


def test_a_gpu_change_is_not_a_machine_type_change(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_instance(PROJECT, ZONE, "vm", "n1-standard-16", status="TERMINATED",
                          accelerators=[("nvidia-tesla-t4", 2)])

    with pytest.raises(ProviderError, match="needs GPUs 1xnvidia-tesla-t4, the instance has 2xnvidia-tesla-t4"):
        actuator.set_machine_type(clients, PROJECT, ZONE, "vm", "n1-standard-8+1xnvidia-tesla-t4")
    assert emulator.count("/setMachineType") == 0


def test_resize_group_changes_size_and_members(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_instance_template(PROJECT, "tpl", "g2-standard-4")
    emulator.add_mig(PROJECT, "web", "tpl", zone=ZONE, target_size=3)

    actuator.resize_group(clients, PROJECT, ZONE, "web", 1)

    [group] = list_groups(clients, PROJECT, {})
    assert group.desired == 1 and len(group.members) == 1
    assert clients.calls["compute.InstanceGroupManagers.Resize"] == 1


def test_throttled_stop_is_retried(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_instance(PROJECT, ZONE, "vm", "g2-standard-8")
    emulator.fail_next(429)

    actuator.stop_instance(clients, PROJECT, ZONE, "vm")

    assert emulator.instance(PROJECT, ZONE, "vm")["status"] == "TERMINATED"


def test_stopping_an_unknown_vm_is_not_found(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_project(PROJECT)

    with pytest.raises(NotFound, match="compute.Instances.Stop.*instances/ghost"):
        actuator.stop_instance(clients, PROJECT, ZONE, "ghost")

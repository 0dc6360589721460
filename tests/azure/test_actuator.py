"""Azure mutation primitives: long-running operations waited on, the change visible in the next list."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from providers.azure import actuator, inventory
from providers.errors import NotFound, ProviderError
from providers.model import Accelerators, ResourceState
from providers.sandbox.azure_arm import AzureArmEmulator
from tests.azure.arm_support import CATALOG, RG, SUB, arm_emulator, clients_for, scale_set_id, vm_id

A100 = "Standard_NC24ads_A100_v4"
A100X2 = "Standard_NC48ads_A100_v4"
T4 = "Standard_NC4as_T4_v3"
LRO_POLLS = 2


@pytest.fixture
def arm() -> Iterator[AzureArmEmulator]:
    with arm_emulator(lro_polls=LRO_POLLS) as emulator:
        yield emulator


def _state(clients, resource_id):
    return next(r for r in inventory.list_vms(clients, SUB, CATALOG) if r.ref.id == resource_id)


def test_deallocate_shows_deallocated_in_the_next_list(arm) -> None:
    arm.add_vm(SUB, RG, "idle", A100, "eastus")
    clients = clients_for(arm)

    actuator.deallocate(clients, vm_id("idle"))

    assert _state(clients, vm_id("idle")).state is ResourceState.STOPPED
    status_polls = [r for r in arm.requests if "/operations/" in r and "monitor=true" not in r]
    assert len(status_polls) == LRO_POLLS + 1  # InProgress x2, then Succeeded
    assert clients.calls["compute.VirtualMachines.Deallocate"] == 1
    assert clients.calls[actuator.POLL] == LRO_POLLS + 2  # the polls and the final Location read


def test_deallocate_never_just_powers_off(arm) -> None:
    arm.add_vm(SUB, RG, "idle", A100, "eastus")

    actuator.deallocate(clients_for(arm), vm_id("idle"))

    assert arm.count("/deallocate?") == 1
    assert arm.count("/powerOff") == 0
    assert arm.power_state(vm_id("idle")) == "deallocated"


def test_deallocate_releases_a_powered_off_vm(arm) -> None:
    arm.add_vm(SUB, RG, "off", A100, "eastus", power_state="stopped")
    clients = clients_for(arm)

    actuator.deallocate(clients, vm_id("off"))

    assert _state(clients, vm_id("off")).state is ResourceState.STOPPED


def test_vm_reads_deallocating_until_the_operation_completes(arm) -> None:
    arm.add_vm(SUB, RG, "idle", A100, "eastus")
    clients = clients_for(arm)
    clients.compute(SUB).virtual_machines.begin_deallocate(RG, "idle", polling=False)

    assert _state(clients, vm_id("idle")).state is ResourceState.STOPPING
    arm.complete_operations()
    assert _state(clients, vm_id("idle")).state is ResourceState.STOPPED


def test_start_brings_a_deallocated_vm_back(arm) -> None:
    arm.add_vm(SUB, RG, "parked", A100, "eastus", power_state="deallocated")
    clients = clients_for(arm)

    actuator.start(clients, vm_id("parked"))

    assert _state(clients, vm_id("parked")).state is ResourceState.RUNNING


def test_resize_changes_the_size_and_its_gpus(arm) -> None:
    arm.add_vm(SUB, RG, "big", A100X2, "eastus")
    clients = clients_for(arm)

    assert actuator.resize(clients, vm_id("big"), A100) == A100

    listed = _state(clients, vm_id("big"))
    assert listed.instance_type == A100
    assert listed.accelerators == Accelerators("A100", 1, 80.0)
    assert [(r.old_size, r.new_size, r.power_state) for r in arm.resizes] == [(A100X2, A100, "running")]
    assert arm.count("PATCH ") == 1


def test_resize_to_a_size_the_location_lacks_is_refused_and_changes_nothing(arm) -> None:
    arm.add_vm(SUB, RG, "big", A100X2, "eastus")
    arm.restrict_sku("eastus", A100)

    with pytest.raises(ProviderError) as err:
        actuator.resize(clients_for(arm), vm_id("big"), A100)

    assert err.value.code == "OperationNotAllowed"
    assert arm.vm(SUB, RG, "big")["properties"]["hardwareProfile"]["vmSize"] == A100X2
    assert arm.resizes == []


def test_scale_set_capacity_changes_its_members(arm) -> None:
    arm.add_scale_set(SUB, RG, "workers", T4, "eastus", 3)
    clients = clients_for(arm)

    assert actuator.set_scale_set_capacity(clients, scale_set_id("workers"), 1) == 1

    members = [r for r in inventory.list_vms(clients, SUB, CATALOG) if r.group == "workers"]
    assert [r.ref.id.rsplit("/", 1)[-1] for r in members] == ["0"]
    assert arm.scale_set(SUB, RG, "workers")["sku"]["capacity"] == 1


def test_scale_set_grows_with_new_instances(arm) -> None:
    arm.add_scale_set(SUB, RG, "workers", T4, "eastus", 1)

    actuator.set_scale_set_capacity(clients_for(arm), scale_set_id("workers"), 3)

    assert [m.rsplit("/", 1)[-1] for m in arm.scale_set_members(SUB, RG, "workers")] == ["0", "1", "2"]


def test_scale_set_instance_is_deallocated_through_its_scale_set(arm) -> None:
    arm.add_scale_set(SUB, RG, "workers", T4, "eastus", 2)
    first = arm.scale_set_members(SUB, RG, "workers")[0]
    clients = clients_for(arm)

    actuator.deallocate(clients, first)

    assert _state(clients, first).state is ResourceState.STOPPED
    assert clients.calls["compute.VirtualMachineScaleSetVMs.Deallocate"] == 1


def test_missing_vm_is_not_found(arm) -> None:
    arm.add_resource_group(SUB, RG)

    with pytest.raises(NotFound) as err:
        actuator.deallocate(clients_for(arm), vm_id("ghost"))

    assert err.value.code == "ResourceNotFound"


def test_missing_resource_group_is_not_found(arm) -> None:
    with pytest.raises(NotFound) as err:
        actuator.start(clients_for(arm), vm_id("ghost", resource_group="nowhere"))

    assert err.value.code == "ResourceGroupNotFound"


def test_an_operation_in_progress_blocks_another(arm) -> None:
    arm.add_vm(SUB, RG, "idle", A100, "eastus")
    clients = clients_for(arm)
    clients.compute(SUB).virtual_machines.begin_deallocate(RG, "idle", polling=False)

    with pytest.raises(ProviderError) as err:
        actuator.start(clients, vm_id("idle"))

    assert err.value.code == "OperationNotAllowed"


@pytest.mark.parametrize("bad", [
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/nic",
    "not-an-id",
    scale_set_id("workers"),
])
def test_vm_primitives_refuse_other_ids(arm, bad) -> None:
    with pytest.raises(ProviderError) as err:
        actuator.deallocate(clients_for(arm), bad)

    assert err.value.code == "InvalidResourceId"
    assert arm.requests == []


def test_scale_set_capacity_refuses_a_vm_id(arm) -> None:
    with pytest.raises(ProviderError):
        actuator.set_scale_set_capacity(clients_for(arm), vm_id("vm"), 2)

"""Azure inventory: real management clients over HTTPS against the local ARM emulator.

VMs (all pages, absolute nextLink followed), power states (stopped-but-allocated apart from
deallocated), Spot priority, GPU shapes from the catalog or the Resource SKUs API, scale set
instances, subscription discovery, login through a real ClientSecretCredential, error translation.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from azure.identity import ClientSecretCredential

from providers.azure import inventory
from providers.catalog import PriceCatalog
from providers.errors import AuthError, NotFound, Throttled
from providers.model import Accelerators, Cloud, PricingModel, ResourceState
from providers.sandbox.azure_arm import AzureArmEmulator
from tests.azure.arm_support import CATALOG, OTHER_SUB, RG, SUB, arm_emulator, clients_for, vm_id

A100 = "Standard_NC24ads_A100_v4"
T4 = "Standard_NC4as_T4_v3"
H100X8 = "Standard_ND96isr_H100_v5"
NV_ADMS = "Standard_NV36adms_A10_v5"  # not in the shipped catalog: only the SKU API knows it


@pytest.fixture
def arm() -> Iterator[AzureArmEmulator]:
    with arm_emulator() as emulator:
        yield emulator


def _by_name(resources):
    return {r.ref.id.rsplit("/", 1)[-1]: r for r in resources}


def test_lists_every_vm_following_absolute_next_links(arm) -> None:
    for i in range(5):
        arm.add_vm(SUB, RG, f"vm{i}", A100, "eastus")
    clients = clients_for(arm)

    found = inventory.list_vms(clients, SUB, CATALOG)

    assert sorted(_by_name(found)) == [f"vm{i}" for i in range(5)]
    assert clients.calls[inventory.LIST_ALL] == 3  # 2 + 2 + 1
    assert arm.count("statusOnly=true") == 3
    assert arm.count("$skiptoken=") == 2  # the later pages came through nextLink, to this server


def test_resource_carries_arm_id_location_vm_id_tags_and_creation_time(arm) -> None:
    created = datetime(2026, 10, 2, 8, 30, tzinfo=timezone.utc)
    arm.add_vm(SUB, RG, "trainer", A100, "eastus", tags={"team": "vision"},
               vm_id="f6a6b9b2-9b99-45b0-8a18-025998fc74d0", created=created, zones=["2"])

    [res] = inventory.list_vms(clients_for(arm), SUB, CATALOG)

    assert (res.ref.cloud, res.ref.account, res.ref.region) == (Cloud.AZURE, SUB, "eastus")
    assert res.ref.id == vm_id("trainer")
    assert res.instance_type == A100
    assert res.native_id == "f6a6b9b2-9b99-45b0-8a18-025998fc74d0"
    assert dict(res.tags) == {"team": "vision"}
    assert res.launched_at == created
    assert res.zone == "2"
    assert res.group is None


@pytest.mark.parametrize(("power", "expected"), [
    ("running", ResourceState.RUNNING),
    ("starting", ResourceState.PENDING),
    ("stopping", ResourceState.STOPPING),
    ("deallocating", ResourceState.STOPPING),
    ("deallocated", ResourceState.STOPPED),
])
def test_power_state_maps_to_resource_state(arm, power, expected) -> None:
    arm.add_vm(SUB, RG, "vm", A100, "eastus", power_state=power)

    [res] = inventory.list_vms(clients_for(arm), SUB, CATALOG)

    assert res.state is expected


def test_powered_off_vm_is_stopped_but_allocated_not_deallocated(arm) -> None:
    arm.add_vm(SUB, RG, "off", A100, "eastus", power_state="stopped")
    arm.add_vm(SUB, RG, "released", A100, "eastus", power_state="deallocated")

    found = _by_name(inventory.list_vms(clients_for(arm), SUB, CATALOG))

    assert found["released"].state is ResourceState.STOPPED
    assert found["off"].state is not ResourceState.STOPPED  # still billed for compute
    assert found["off"].state is ResourceState.STOPPED_ALLOCATED


@pytest.mark.parametrize(("priority", "expected"), [
    ("Spot", PricingModel.SPOT), ("Low", PricingModel.SPOT), ("Regular", PricingModel.ON_DEMAND)])
def test_priority_sets_pricing_model(arm, priority, expected) -> None:
    arm.add_vm(SUB, RG, "vm", T4, "eastus", priority=priority)

    [res] = inventory.list_vms(clients_for(arm), SUB, CATALOG)

    assert res.pricing_model is expected


@pytest.mark.parametrize(("size", "expected", "vcpu"), [
    (A100, Accelerators("A100", 1, 80.0), 24),
    (T4, Accelerators("T4", 1, 16.0), 4),
    (H100X8, Accelerators("H100", 8, 80.0), 96),
])
def test_catalog_sizes_get_their_gpus_without_a_sku_call(arm, size, expected, vcpu) -> None:
    arm.add_vm(SUB, RG, "vm", size, "eastus")
    clients = clients_for(arm)

    [res] = inventory.list_vms(clients, SUB, CATALOG)

    assert res.accelerators == expected
    assert res.vcpu == vcpu
    assert clients.calls[inventory.SKUS_LIST] == 0


def test_size_unknown_to_the_catalog_gets_gpus_from_resource_skus(arm) -> None:
    arm.add_vm(SUB, RG, "viz", NV_ADMS, "eastus")
    clients = clients_for(arm)

    [res] = inventory.list_vms(clients, SUB, CATALOG)

    assert res.accelerators == Accelerators("A10", 1, 24.0)
    assert (res.vcpu, res.memory_gib) == (36, 880.0)
    assert arm.count("/providers/Microsoft.Compute/skus?") == clients.calls[inventory.SKUS_LIST] > 0
    assert arm.count("%27eastus%27") == clients.calls[inventory.SKUS_LIST]


@pytest.mark.parametrize(("size", "expected"), [
    (A100, Accelerators("A100", 1, 80.0)),
    ("Standard_NC40ads_H100_v5", Accelerators("H100", 1, 94.0)),
    (H100X8, Accelerators("H100", 8, 80.0)),
    (T4, Accelerators("T4", 1, 16.0)),
    ("Standard_NC24s_v3", Accelerators("V100", 4, 16.0)),
    ("Standard_NV12ads_A10_v5", Accelerators("A10", 1, 8.0)),  # a third of an A10
])
def test_sku_capabilities_and_size_name_give_the_gpu_shape(arm, size, expected) -> None:
    arm.add_vm(SUB, RG, "vm", size, "eastus")

    [res] = inventory.list_vms(clients_for(arm), SUB, PriceCatalog([]))

    assert res.accelerators == expected


def test_cpu_size_has_no_accelerators(arm) -> None:
    arm.add_vm(SUB, RG, "web", "Standard_D4ds_v5", "eastus")

    [res] = inventory.list_vms(clients_for(arm), SUB, CATALOG)

    assert res.accelerators is None
    assert (res.vcpu, res.memory_gib) == (4, 16.0)


def test_resource_skus_are_read_once_per_location(arm) -> None:
    arm.add_vm(SUB, RG, "a", NV_ADMS, "eastus")
    arm.add_vm(SUB, RG, "b", NV_ADMS, "eastus")
    arm.add_vm(SUB, RG, "c", NV_ADMS, "westus2")
    clients = clients_for(arm)

    inventory.list_vms(clients, SUB, CATALOG)

    first_pages = [r for r in arm.requests if "/skus?" in r and "skiptoken" not in r]
    assert len(first_pages) == 2
    assert sum("eastus" in r for r in first_pages) == sum("westus2" in r for r in first_pages) == 1


def test_uniform_scale_set_instances_are_resources_of_their_group(arm) -> None:
    arm.add_scale_set(SUB, RG, "workers", T4, "eastus", 3, tags={"pool": "batch"}, priority="Spot")
    arm.add_vm(SUB, RG, "solo", A100, "eastus")
    clients = clients_for(arm)

    found = inventory.list_vms(clients, SUB, CATALOG)

    members = [r for r in found if r.group == "workers"]
    assert sorted(r.ref.id for r in members) == arm.scale_set_members(SUB, RG, "workers")
    assert {r.instance_type for r in members} == {T4}
    assert all(r.state is ResourceState.RUNNING and r.pricing_model is PricingModel.SPOT for r in members)
    assert all(r.accelerators == Accelerators("T4", 1, 16.0) and r.native_id for r in members)
    assert all(dict(r.tags) == {"pool": "batch"} for r in members)
    assert clients.calls[inventory.SET_VMS_LIST] == 2  # 3 instances, pages of 2
    assert arm.count("/virtualMachineScaleSets/workers/virtualMachines?") == 2


def test_flexible_scale_set_members_are_listed_once_with_their_group(arm) -> None:
    arm.add_scale_set(SUB, RG, "flexpool", T4, "westus2", 2, orchestration="Flexible")
    clients = clients_for(arm)

    found = inventory.list_vms(clients, SUB, CATALOG)

    assert len(found) == 2
    assert {r.group for r in found} == {"flexpool"}
    assert {r.ref.region for r in found} == {"westus2"}
    assert clients.calls[inventory.SET_VMS_LIST] == 0


def test_scale_set_instance_power_state_comes_from_its_instance_view(arm) -> None:
    arm.add_scale_set(SUB, RG, "workers", T4, "eastus", 2)
    first = arm.scale_set_members(SUB, RG, "workers")[0]
    arm.set_power_state(first, "deallocated")

    found = {r.ref.id: r for r in inventory.list_vms(clients_for(arm), SUB, CATALOG)}

    assert found[first].state is ResourceState.STOPPED
    assert [r.state for k, r in found.items() if k != first] == [ResourceState.RUNNING]


def test_empty_subscription_lists_nothing(arm) -> None:
    assert inventory.list_vms(clients_for(arm), SUB, CATALOG) == []


def test_enabled_subscriptions_are_discovered(arm) -> None:
    arm.add_subscription(OTHER_SUB)
    arm.add_subscription("0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6", state="Disabled")
    clients = clients_for(arm)

    assert clients.subscriptions() == sorted([SUB, OTHER_SUB])
    assert clients.calls["subscription.Subscriptions.List"] == 1
    assert arm.count("GET /subscriptions?") == 2  # three subscriptions, pages of two


def test_login_with_a_real_client_secret_credential(arm) -> None:
    arm.add_client("app-id", "s3cret")
    arm.add_vm(SUB, RG, "vm", A100, "eastus")
    credential = ClientSecretCredential("tenant-1", "app-id", "s3cret", authority=arm.url,
                                        disable_instance_discovery=True, connection_verify=arm.ca_path)

    [res] = inventory.list_vms(clients_for(arm, credential=credential), SUB, CATALOG)

    assert res.instance_type == A100
    assert len(arm.tokens_issued) == 1
    assert arm.requests[:2] == ["GET /tenant-1/v2.0/.well-known/openid-configuration",
                                "POST /tenant-1/oauth2/v2.0/token"]


def test_wrong_client_secret_is_an_auth_error(arm) -> None:
    arm.add_client("app-id", "s3cret")
    credential = ClientSecretCredential("tenant-1", "app-id", "wrong", authority=arm.url,
                                        disable_instance_discovery=True, connection_verify=arm.ca_path)

    with pytest.raises(AuthError, match="AADSTS7000215"):
        inventory.list_vms(clients_for(arm, credential=credential), SUB, CATALOG)


def test_401_is_an_auth_error(arm) -> None:
    arm.fail_next(401, message="The access token is invalid.")

    with pytest.raises(AuthError, match="InvalidAuthenticationToken"):
        inventory.list_vms(clients_for(arm), SUB, CATALOG)


def test_403_is_an_auth_error_naming_the_place(arm) -> None:
    arm.forbid(SUB)

    with pytest.raises(AuthError) as err:
        inventory.list_vms(clients_for(arm), SUB, CATALOG)

    assert err.value.code == "AuthorizationFailed"
    assert inventory.LIST_ALL in str(err.value)


def test_unknown_subscription_is_not_found(arm) -> None:
    with pytest.raises(NotFound) as err:
        inventory.list_vms(clients_for(arm), OTHER_SUB, CATALOG)

    assert err.value.code == "SubscriptionNotFound"


def test_429_is_retried_then_answers(arm) -> None:
    arm.add_vm(SUB, RG, "vm", A100, "eastus")
    arm.fail_next(429, 2)
    clients = clients_for(arm)

    [res] = inventory.list_vms(clients, SUB, CATALOG)

    assert res.instance_type == A100
    assert arm.count("statusOnly=true") == 3


def test_429_past_the_retries_is_throttled(arm) -> None:
    arm.fail_next(429, 3)

    with pytest.raises(Throttled) as err:
        inventory.list_vms(clients_for(arm, retry_total=2), SUB, CATALOG)

    assert err.value.code == "TooManyRequests"

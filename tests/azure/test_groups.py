"""Azure scale sets as Groups (sizes, members, autoscale bounds and schedules) and offered VM sizes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from providers.azure import groups, inventory
from providers.errors import AuthError
from providers.model import Cloud, ScheduledCapacity
from providers.sandbox.azure_arm import AzureArmEmulator
from tests.azure.arm_support import CATALOG, RG, SUB, arm_emulator, clients_for, scale_set_id

T4 = "Standard_NC4as_T4_v3"
A100 = "Standard_NC24ads_A100_v4"
WEEKDAY_MORNINGS = {"name": "weekday mornings", "rules": [],
                    "capacity": {"minimum": "4", "maximum": "8", "default": "6"},
                    "recurrence": {"frequency": "Week", "schedule": {"timeZone": "Pacific Standard Time",
                                                                     "days": ["Monday", "Friday"], "hours": [8],
                                                                     "minutes": [30]}}}


@pytest.fixture
def arm() -> Iterator[AzureArmEmulator]:
    with arm_emulator() as emulator:
        yield emulator


def _by_name(found):
    return {g.ref.id: g for g in found}


def test_scale_set_without_autoscale_is_fixed_at_its_capacity(arm) -> None:
    arm.add_scale_set(SUB, RG, "workers", T4, "eastus", 3, tags={"pool": "batch"})

    [group] = groups.list_groups(clients_for(arm), SUB)

    assert (group.ref.cloud, group.ref.account) == (Cloud.AZURE, SUB)
    assert (group.ref.region, group.ref.id) == ("eastus", "workers")
    assert group.kind == "azure-vmss"
    assert group.instance_type == T4
    assert (group.min_size, group.max_size, group.desired) == (3, 3, 3)
    assert dict(group.tags) == {"pool": "batch"}
    assert group.scheduled == ()


def test_members_are_the_instance_ids_the_inventory_lists(arm) -> None:
    arm.add_scale_set(SUB, RG, "workers", T4, "eastus", 3)
    clients = clients_for(arm)

    [group] = groups.list_groups(clients, SUB)
    listed = {r.ref.id for r in inventory.list_vms(clients, SUB, CATALOG) if r.group == "workers"}

    assert set(group.members) == listed
    assert len(group.members) == 3
    assert {k.rsplit("/", 1)[-1] for k in group.member_keys()} == {"0", "1", "2"}


def test_enabled_autoscale_setting_gives_the_bounds(arm) -> None:
    arm.add_scale_set(SUB, RG, "workers", T4, "eastus", 2)
    arm.add_autoscale_setting(SUB, RG, "workers-autoscale", scale_set_id("workers"), 1, 10, 2)
    clients = clients_for(arm)

    [group] = groups.list_groups(clients, SUB)

    assert (group.min_size, group.max_size, group.desired) == (1, 10, 2)
    assert clients.calls[groups.AUTOSCALE_LIST] == 1
    assert arm.count("/providers/Microsoft.Insights/autoscalesettings?") == 1


def test_disabled_autoscale_setting_is_ignored(arm) -> None:
    arm.add_scale_set(SUB, RG, "workers", T4, "eastus", 2)
    arm.add_autoscale_setting(SUB, RG, "off", scale_set_id("workers"), 1, 10, 2, enabled=False)

    [group] = groups.list_groups(clients_for(arm), SUB)

    assert (group.min_size, group.max_size) == (2, 2)


def test_recurring_autoscale_profile_becomes_a_schedule(arm) -> None:
    arm.add_scale_set(SUB, RG, "workers", T4, "eastus", 2)
    arm.add_autoscale_setting(SUB, RG, "workers-autoscale", scale_set_id("workers"), 1, 10, 2,
                              extra_profiles=[WEEKDAY_MORNINGS])

    [group] = groups.list_groups(clients_for(arm), SUB)

    assert (group.min_size, group.max_size) == (1, 10)  # the profile without recurrence
    assert group.scheduled == (ScheduledCapacity("weekday mornings", "30 8 * * 1,5", min_size=4, max_size=8,
                                                 desired=6, time_zone="America/Los_Angeles"),)


def test_autoscale_setting_on_another_resource_does_not_apply(arm) -> None:
    arm.add_scale_set(SUB, RG, "workers", T4, "eastus", 2)
    arm.add_autoscale_setting(SUB, RG, "other", scale_set_id("somebody-else"), 1, 10, 2)

    [group] = groups.list_groups(clients_for(arm), SUB)

    assert (group.min_size, group.max_size) == (2, 2)


def test_flexible_scale_set_members_come_from_the_vm_list(arm) -> None:
    arm.add_scale_set(SUB, RG, "flexpool", A100, "westus2", 2, orchestration="Flexible")
    arm.add_vm(SUB, RG, "standalone", A100, "westus2")
    clients = clients_for(arm)

    [group] = groups.list_groups(clients, SUB)

    assert group.ref.region == "westus2"
    assert group.desired == 2
    assert sorted(group.members) == sorted(v["id"] for v in arm.vms() if v["name"].startswith("flexpool_"))
    assert clients.calls[inventory.SET_VMS_LIST] == 0


def test_scale_sets_across_locations_each_name_their_region(arm) -> None:
    arm.add_scale_set(SUB, RG, "east", T4, "eastus", 1)
    arm.add_scale_set(SUB, "other-rg", "west", T4, "westus3", 1)

    found = _by_name(groups.list_groups(clients_for(arm), SUB))

    assert {k: g.ref.region for k, g in found.items()} == {"east": "eastus", "west": "westus3"}


def test_no_scale_sets_no_autoscale_call(arm) -> None:
    clients = clients_for(arm)

    assert groups.list_groups(clients, SUB) == []
    assert clients.calls[groups.AUTOSCALE_LIST] == 0


def test_forbidden_subscription_is_an_auth_error(arm) -> None:
    arm.forbid(SUB)

    with pytest.raises(AuthError):
        groups.list_groups(clients_for(arm), SUB)


def test_offered_types_are_the_unrestricted_skus_of_the_location(arm) -> None:
    arm.restrict_sku("eastus", "Standard_ND96isr_H100_v5")
    wanted = [A100, "Standard_ND96isr_H100_v5", "Standard_NC99_unknown", T4]

    offered = groups.offered_types(clients_for(arm), SUB, "eastus", wanted)

    assert offered == {A100, T4}


def test_restriction_in_one_location_leaves_others_offered(arm) -> None:
    arm.restrict_sku("eastus", A100)

    assert groups.offered_types(clients_for(arm), SUB, "eastus2", [A100]) == {A100}


def test_size_not_sold_in_a_location_is_not_offered(arm) -> None:
    arm.add_sku("Standard_NC8_custom_v9", 8, 64, 1, locations=["westus3"])

    clients = clients_for(arm)
    assert groups.offered_types(clients, SUB, "eastus", ["Standard_NC8_custom_v9"]) == set()
    assert groups.offered_types(clients, SUB, "westus3", ["Standard_NC8_custom_v9"]) == {"Standard_NC8_custom_v9"}


def test_offered_types_keeps_the_names_as_asked_and_reads_skus_once(arm) -> None:
    clients = clients_for(arm)

    assert groups.offered_types(clients, SUB, "eastus", ["standard_nc24ads_a100_v4"]) == {"standard_nc24ads_a100_v4"}
    first = clients.calls[inventory.SKUS_LIST]
    assert groups.offered_types(clients, SUB, "eastus", [T4]) == {T4}
    assert clients.calls[inventory.SKUS_LIST] == first
    assert groups.offered_types(clients, SUB, "eastus", []) == set()

"""Managed instance groups and regional offerings through the real google-cloud-compute client against the
local emulator: zonal and regional MIGs, autoscaler bounds, warm-up, scaling schedules, template types."""

from __future__ import annotations

import pytest

from providers.catalog import PriceCatalog
from providers.errors import AuthError
from providers.gcp.client import GcpClients
from providers.gcp.groups import end_recurrence, list_groups, offered_types
from providers.gcp.inventory import list_instances
from providers.model import Cloud, ScheduledCapacity
from providers.sandbox.gcp_compute import GcpComputeEmulator
from tests.gcp.compute_support import PROJECT, clients_fixture, emulator_fixture  # noqa: F401

CATALOG = PriceCatalog.shipped(Cloud.GCP)


def _groups(clients: GcpClients) -> dict[str, object]:
    inventory = {r.ref.id: r for r in list_instances(clients, PROJECT, CATALOG)}
    return {g.ref.id: g for g in list_groups(clients, PROJECT, inventory)}


def test_zonal_mig_without_autoscaler_is_fixed_at_its_target_size(
        emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_instance_template(PROJECT, "l4-v1", "g2-standard-8", labels={"team": "serving"})
    mig = emulator.add_mig(PROJECT, "serving", "l4-v1", zone="us-central1-b", target_size=4)

    [group] = _groups(clients).values()

    assert group.ref.cloud is Cloud.GCP and group.ref.account == PROJECT
    assert group.ref.region == "us-central1" and group.ref.id == "serving" and group.kind == "gcp-mig"
    assert group.instance_type == "g2-standard-8"
    assert (group.min_size, group.max_size, group.desired) == (4, 4, 4)
    assert group.members == tuple(i["name"] for i in emulator.members(mig))
    assert len(group.members) == 4 and all(m.startswith("serving-") for m in group.members)
    assert dict(group.tags) == {"team": "serving"}
    assert group.warmup_seconds is None and group.scheduled == ()


def test_regional_mig_spans_zones_and_takes_the_autoscaler_bounds(
        emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_instance_template(PROJECT, "a100", "a2-highgpu-1g")
    emulator.add_mig(PROJECT, "train", "a100", region="us-central1", target_size=3, initial_delay_sec=300)
    emulator.add_autoscaler(PROJECT, "train", min_replicas=1, max_replicas=6, cool_down_sec=240)

    group = _groups(clients)["train"]

    assert group.ref.region == "us-central1" and group.instance_type == "a2-highgpu-1g"
    assert (group.min_size, group.max_size, group.desired) == (1, 6, 3)
    assert group.warmup_seconds == 240  # the autoscaler's initialization period wins over autohealing
    zones = {emulator_zone(emulator, m) for m in group.members}
    assert len(group.members) == 3 and len(zones) == 3
    assert clients.calls["compute.RegionInstanceGroupManagers.ListManagedInstances"] == 1


def emulator_zone(emulator: GcpComputeEmulator, name: str) -> str:
    return next(z for (_, z, n) in emulator.instances if n == name)


def test_autohealing_delay_is_the_warmup_without_autoscaler(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_instance_template(PROJECT, "tpl", "g2-standard-4")
    emulator.add_mig(PROJECT, "web", "tpl", zone="us-central1-a", target_size=1, initial_delay_sec=420)

    assert _groups(clients)["web"].warmup_seconds == 420


def test_autoscaler_turned_off_leaves_the_group_fixed(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_instance_template(PROJECT, "tpl", "g2-standard-4")
    emulator.add_mig(PROJECT, "web", "tpl", zone="us-central1-a", target_size=2)
    emulator.add_autoscaler(PROJECT, "web", min_replicas=0, max_replicas=10, mode="OFF")

    group = _groups(clients)["web"]

    assert (group.min_size, group.max_size, group.desired) == (2, 2, 2)


def test_n1_template_with_t4_is_named_like_the_catalog(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_instance_template(PROJECT, "t4", "n1-standard-8", accelerators=[("nvidia-tesla-t4", 1)], region="us-east1")
    emulator.add_mig(PROJECT, "encode", "t4", zone="us-east1-b", target_size=2)

    group = _groups(clients)["encode"]

    assert group.instance_type == "n1-standard-8+1xnvidia-tesla-t4"
    assert clients.calls["compute.RegionInstanceTemplates.Get"] == 1


def test_one_template_read_serves_every_group_using_it(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_instance_template(PROJECT, "tpl", "g2-standard-4")
    for zone in ("us-central1-a", "us-central1-b", "us-east1-b", "europe-west4-a"):
        emulator.add_mig(PROJECT, f"web-{zone}", "tpl", zone=zone, target_size=1)

    found = _groups(clients)

    assert {g.ref.region for g in found.values()} == {"us-central1", "us-east1", "europe-west4"}
    assert clients.calls["compute.InstanceTemplates.Get"] == 1
    assert clients.calls["compute.InstanceGroupManagers.AggregatedList"] == 2  # 4 MIGs, pages of 3


def test_scaling_schedules_become_start_and_end_actions(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_instance_template(PROJECT, "tpl", "a2-highgpu-1g")
    emulator.add_mig(PROJECT, "train", "tpl", zone="us-central1-a", target_size=2)
    emulator.add_autoscaler(PROJECT, "train", min_replicas=1, max_replicas=8, schedules={
        "workday": {"schedule": "0 8 * * 1-5", "timeZone": "Europe/Paris", "durationSec": 36000,
                    "minRequiredReplicas": 6},
        "paused": {"schedule": "0 0 * * *", "durationSec": 3600, "minRequiredReplicas": 8, "disabled": True},
    })

    group = _groups(clients)["train"]

    assert group.scheduled == (
        ScheduledCapacity("workday", "0 8 * * 1-5", min_size=6, time_zone="Europe/Paris"),
        ScheduledCapacity("workday:end", "0 18 * * 1-5", min_size=1, time_zone="Europe/Paris"),
    )


@pytest.mark.parametrize(("cron", "seconds", "end"), [
    ("30 9 * * *", 3600, "30 10 * * *"),
    ("0 22 * * 1-5", 6 * 3600, "0 4 * * 2,3,4,5,6"),
    ("0 20 * * 6", 8 * 3600, "0 4 * * 0"),
    ("0 20 1 * *", 8 * 3600, None),  # ends on another day of the month: not rewritten
    ("*/15 9 * * *", 600, None),  # not one start time
])
def test_end_recurrence(cron: str, seconds: int, end: str | None) -> None:
    assert end_recurrence(cron, seconds) == end


def test_leaving_members_are_not_members(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_instance_template(PROJECT, "tpl", "g2-standard-4")
    mig = emulator.add_mig(PROJECT, "web", "tpl", zone="us-central1-a", target_size=3)
    members = emulator.members(mig)
    emulator.member_actions[members[0]["selfLink"]] = "DELETING"
    emulator.member_actions[members[1]["selfLink"]] = "RECREATING"

    assert _groups(clients)["web"].members == tuple(i["name"] for i in members[1:])


def test_no_migs_costs_one_call(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_project(PROJECT)

    assert list_groups(clients, PROJECT, {}) == []
    assert clients.all_calls() == {"compute.InstanceGroupManagers.AggregatedList": 1}


def test_refusal_is_an_auth_error(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_project(PROJECT)
    emulator.fail_next(403)

    with pytest.raises(AuthError, match="compute.InstanceGroupManagers.AggregatedList"):
        list_groups(clients, PROJECT, {})


def test_offered_types_checks_machine_and_gpu_in_one_zone(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_project(PROJECT)
    wanted = ["a2-highgpu-1g", "a3-highgpu-8g", "g2-standard-8", "n1-standard-8+1xnvidia-tesla-t4",
              "n1-standard-8+8xnvidia-tesla-t4", "n1-highmem-8+1xnvidia-tesla-v100", "x9-imaginary-1g"]

    assert offered_types(clients, PROJECT, "us-east1", wanted) == {"a2-highgpu-1g", "g2-standard-8"}
    assert offered_types(clients, PROJECT, "us-central1", wanted) == {
        "a2-highgpu-1g", "a3-highgpu-8g", "g2-standard-8", "n1-standard-8+1xnvidia-tesla-t4",
        "n1-highmem-8+1xnvidia-tesla-v100"}  # at most 4 T4 per VM
    assert clients.calls["compute.AcceleratorTypes.AggregatedList"] == 1  # read once for both regions


def test_gpu_attachable_only_in_a_zone_without_the_machine_is_not_offered(emulator: GcpComputeEmulator,
                                                                          clients: GcpClients) -> None:
    emulator.add_project(PROJECT)
    emulator.add_machine_type("n1-standard-2", guest_cpus=2, memory_mb=7680, zones=["us-west1-a"])
    emulator.add_accelerator_type("nvidia-tesla-p100", zones=["us-west1-b"], max_cards=4)

    assert offered_types(clients, PROJECT, "us-west1", ["n1-standard-2+1xnvidia-tesla-p100"]) == set()

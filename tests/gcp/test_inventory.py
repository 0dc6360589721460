"""Compute Engine inventory through the real google-cloud-compute client against the local emulator:
zones and pages, GPU detection (bundled A2/G2, attached N1 GPUs), pricing model, status, labels, MIG
membership, project discovery and error translation."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from providers.catalog import PriceCatalog
from providers.errors import AuthError, NotFound, Throttled
from providers.gcp.client import GcpClients
from providers.gcp.inventory import list_instances, machine_types, regions_of
from providers.model import Accelerators, Cloud, PricingModel, ResourceState
from providers.sandbox.gcp_compute import GcpComputeEmulator
from tests.gcp.compute_support import (  # noqa: F401
    NOW,
    OTHER_PROJECT,
    PROJECT,
    clients_fixture,
    emulator_fixture,
    make_clients,
)

CATALOG = PriceCatalog.shipped(Cloud.GCP)
EMPTY = PriceCatalog([])


def _one(clients: GcpClients, catalog: PriceCatalog = CATALOG):
    [res] = list_instances(clients, PROJECT, catalog)
    return res


def test_one_aggregated_pass_lists_every_zone_across_pages(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    placed = {"a": "us-central1-a", "b": "us-central1-b", "c": "us-east1-b", "d": "europe-west4-a",
              "e": "europe-west4-a", "f": "asia-southeast1-b", "g": "us-west1-a"}
    for name, zone in placed.items():
        emulator.add_instance(PROJECT, zone, name, "n1-standard-4")

    found = list_instances(clients, PROJECT, CATALOG)

    assert {r.ref.id: r.zone for r in found} == placed
    assert all(r.ref.cloud is Cloud.GCP and r.ref.account == PROJECT for r in found)
    assert {r.ref.id: r.ref.region for r in found}["d"] == "europe-west4"
    assert clients.calls["compute.Instances.AggregatedList"] == 3  # 7 VMs, pages of 3
    assert emulator.count("/aggregated/instances") == 3
    assert regions_of(found) == ["asia-southeast1", "europe-west4", "us-central1", "us-east1", "us-west1"]


def test_a2_gets_its_bundled_a100_from_the_catalog(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_instance(PROJECT, "us-central1-a", "trainer", "a2-highgpu-1g")

    res = _one(clients)

    assert res.instance_type == "a2-highgpu-1g"
    assert res.accelerators == Accelerators("A100", 1, 40)
    assert (res.vcpu, res.memory_gib) == (12, 85)


def test_g2_with_two_l4(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_instance(PROJECT, "us-central1-b", "infer", "g2-standard-24")

    res = _one(clients)

    assert res.instance_type == "g2-standard-24" and res.accelerators == Accelerators("L4", 2, 24)


def test_n1_with_an_attached_t4_is_named_like_the_catalog(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_instance(PROJECT, "us-central1-a", "t4-box", "n1-standard-8", accelerators=[("nvidia-tesla-t4", 1)])

    res = _one(clients)

    assert res.instance_type == "n1-standard-8+1xnvidia-tesla-t4"
    assert res.accelerators == Accelerators("T4", 1, 16)
    assert (res.vcpu, res.memory_gib) == (8, 30)


def test_bundled_gpus_come_from_the_machine_type_when_the_catalog_lacks_it(
        emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_instance(PROJECT, "us-central1-a", "big", "a2-ultragpu-2g", accelerators=[])  # no guestAccelerators

    res = _one(clients, EMPTY)

    assert res.instance_type == "a2-ultragpu-2g"
    assert res.accelerators == Accelerators("A100", 2, 80)
    assert (res.vcpu, res.memory_gib) == (24, 340)


def test_attached_gpus_outside_the_catalog_use_the_accelerator_table(
        emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_instance(PROJECT, "us-central1-a", "v100s", "n1-standard-4", accelerators=[("nvidia-tesla-v100", 2)])

    res = _one(clients)

    assert res.instance_type == "n1-standard-4+2xnvidia-tesla-v100"
    assert res.accelerators == Accelerators("V100", 2, 16)
    assert (res.vcpu, res.memory_gib) == (4, 15)


def test_custom_n1_with_t4_takes_its_shape_from_the_name(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_instance(PROJECT, "us-central1-a", "custom", "n1-custom-6-23040", accelerators=[("nvidia-tesla-t4", 1)])

    res = _one(clients)

    assert res.instance_type == "n1-custom-6-23040+1xnvidia-tesla-t4"
    assert (res.vcpu, res.memory_gib) == (6, 22.5)
    assert res.accelerators == Accelerators("T4", 1, 16)


def test_cpu_only_vm_has_no_gpu_and_its_shape(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_machine_type("e2-standard-4", guest_cpus=4, memory_mb=16384, zones=["us-central1-a"])
    emulator.add_instance(PROJECT, "us-central1-a", "web", "e2-standard-4")

    res = _one(clients)

    assert res.instance_type == "e2-standard-4" and res.accelerators is None and not res.has_gpu
    assert (res.vcpu, res.memory_gib) == (4, 16)


@pytest.mark.parametrize(("kwargs", "model"), [
    ({"spot": True}, PricingModel.SPOT),
    ({"preemptible": True}, PricingModel.SPOT),
    ({}, PricingModel.ON_DEMAND),
])
def test_spot_and_preemptible_are_spot(emulator: GcpComputeEmulator, clients: GcpClients, kwargs, model) -> None:
    emulator.add_instance(PROJECT, "us-central1-a", "vm", "g2-standard-8", **kwargs)

    assert _one(clients).pricing_model is model


def test_spot_provisioning_model_alone_is_spot(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    inst = emulator.add_instance(PROJECT, "us-central1-a", "vm", "g2-standard-8", spot=True)
    inst["scheduling"]["preemptible"] = False  # only provisioningModel says SPOT

    assert _one(clients).pricing_model is PricingModel.SPOT


@pytest.mark.parametrize(("status", "state"), [
    ("PROVISIONING", ResourceState.PENDING), ("STAGING", ResourceState.PENDING), ("RUNNING", ResourceState.RUNNING),
    ("STOPPING", ResourceState.STOPPING), ("SUSPENDING", ResourceState.STOPPING),
    ("TERMINATED", ResourceState.STOPPED), ("SUSPENDED", ResourceState.STOPPED), ("REPAIRING", ResourceState.OTHER),
])
def test_status_maps_to_state(emulator: GcpComputeEmulator, clients: GcpClients, status, state) -> None:
    emulator.add_instance(PROJECT, "us-central1-a", "vm", "a2-highgpu-1g", status=status)

    res = _one(clients)

    assert res.state is state
    assert res.accelerators == Accelerators("A100", 1, 40)  # a stopped GPU VM is still a GPU VM


def test_labels_id_and_launch_time(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    started = datetime(2026, 10, 30, 7, 15, 12, tzinfo=timezone.utc)
    emulator.add_instance(PROJECT, "us-central1-a", "vm", "a2-highgpu-1g", labels={"team": "search", "env": "prod"},
                          created=started - timedelta(days=90), last_start=started, instance_id="2966820606951926687")

    res = _one(clients)

    assert dict(res.tags) == {"team": "search", "env": "prod"}
    assert res.native_id == "2966820606951926687"
    assert res.launched_at == started and res.launched_at.tzinfo is not None


def test_launch_time_falls_back_to_creation(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    created = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
    emulator.add_instance(PROJECT, "us-central1-a", "vm", "a2-highgpu-1g", status="PROVISIONING", created=created)

    assert _one(clients).launched_at == created


def test_mig_members_carry_the_group_name(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_instance_template(PROJECT, "l4-tpl", "g2-standard-8")
    emulator.add_mig(PROJECT, "serving", "l4-tpl", zone="us-central1-a", target_size=2)
    emulator.add_instance(PROJECT, "us-central1-a", "loner", "g2-standard-8")

    groups = {r.ref.id: r.group for r in list_instances(clients, PROJECT, CATALOG)}

    assert groups.pop("loner") is None
    assert len(groups) == 2 and set(groups.values()) == {"serving"}


def test_machine_types_read_once_per_project(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_instance(PROJECT, "us-central1-a", "vm", "a2-highgpu-1g")
    list_instances(clients, PROJECT, CATALOG)
    first = clients.calls["compute.MachineTypes.AggregatedList"]

    list_instances(clients, PROJECT, CATALOG)

    assert first > 0 and clients.calls["compute.MachineTypes.AggregatedList"] == first
    assert clients.calls["compute.Instances.AggregatedList"] == 2
    assert "a2-highgpu-1g" in machine_types(clients, PROJECT).shapes


def test_projects_are_discovered_with_resource_manager(emulator: GcpComputeEmulator) -> None:
    for project in ("p-one", "p-two", "p-three", "p-four"):
        emulator.add_project(project)
    emulator.add_project("p-gone", state="DELETE_REQUESTED")
    clients = make_clients(emulator.url, projects=())

    assert clients.projects() == ["p-four", "p-one", "p-three", "p-two"]
    assert clients.calls["cloudresourcemanager.Projects.SearchProjects"] == 2  # 4 projects, pages of 3


def test_an_empty_project_lists_nothing(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_project(PROJECT)

    assert list_instances(clients, PROJECT, CATALOG) == []
    assert clients.calls["compute.MachineTypes.AggregatedList"] == 0


def test_an_unknown_project_is_not_found(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    with pytest.raises(NotFound, match="compute.Instances.AggregatedList"):
        list_instances(clients, OTHER_PROJECT, CATALOG)


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_auth_errors(emulator: GcpComputeEmulator, clients: GcpClients, status) -> None:
    emulator.add_project(PROJECT)
    emulator.fail_next(status)

    with pytest.raises(AuthError, match="compute.Instances.AggregatedList") as err:
        list_instances(clients, PROJECT, CATALOG)
    assert err.value.hint


def test_disabled_api_is_an_auth_error_naming_the_place(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.deny(PROJECT)

    with pytest.raises(AuthError, match=r"compute.Instances.AggregatedList at http://127\.0\.0\.1.*has not been used"):
        list_instances(clients, PROJECT, CATALOG)


def test_throttling_is_retried(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_instance(PROJECT, "us-central1-a", "vm", "a2-highgpu-1g")
    emulator.fail_next(429, count=2)

    assert [r.ref.id for r in list_instances(clients, PROJECT, CATALOG)] == ["vm"]
    assert emulator.count("/aggregated/instances") == 3  # two refusals, then the page


def test_throttling_without_end_is_throttled(emulator: GcpComputeEmulator) -> None:
    emulator.add_project(PROJECT)
    emulator.fail_next(429, count=1000)
    clients = make_clients(emulator.url, retry_timeout=0.2)

    with pytest.raises(Throttled, match="retries exhausted"):
        list_instances(clients, PROJECT, CATALOG)


def test_emulator_zonal_list_and_get_agree_with_the_aggregated_list(emulator: GcpComputeEmulator,
                                                                    clients: GcpClients) -> None:
    for name in ("d", "b", "a", "c"):
        emulator.add_instance(PROJECT, "us-central1-a", name, "g2-standard-4")
    emulator.add_instance(PROJECT, "us-central1-b", "elsewhere", "g2-standard-4")
    api = clients.compute("InstancesClient")

    listed = [i.name for i in api.list(request={"project": PROJECT, "zone": "us-central1-a", "max_results": 500})]
    got = api.get(project=PROJECT, zone="us-central1-a", instance="c")

    assert listed == ["a", "b", "c", "d"]
    assert emulator.count(f"GET /compute/v1/projects/{PROJECT}/zones/us-central1-a/instances?") == 2
    [res] = [r for r in list_instances(clients, PROJECT, CATALOG) if r.ref.id == "c"]
    assert res.native_id == str(got.id) and got.machine_type.endswith("/machineTypes/g2-standard-4")


def test_emulator_marks_empty_zones_with_a_warning(emulator: GcpComputeEmulator, clients: GcpClients) -> None:
    emulator.add_instance(PROJECT, "us-central1-a", "vm", "g2-standard-4")

    [page] = clients.compute("InstancesClient").aggregated_list(project=PROJECT).pages
    scopes = dict(page.items)

    assert [i.name for i in scopes.pop("zones/us-central1-a").instances] == ["vm"]
    assert scopes and all(s.warning.code == "NO_RESULTS_ON_PAGE" and not s.instances for s in scopes.values())

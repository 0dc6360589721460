"""``GcpActuator`` (the ``providers.base.Actuator`` of GCP) through the real google-cloud-compute client against the
local Compute Engine emulator: preview, execute and undo per kind, ``effect_seen``, refusals; never a delete."""

from __future__ import annotations

import re

import pytest

from providers.base import ACTION_KINDS
from providers.errors import ProviderError
from providers.gcp.actuator import GcpActuator
from providers.gcp.client import GcpClients
from providers.gcp.permissions import ACTUATOR_CALLS
from providers.model import Action, Cloud, ResourceRef
from providers.sandbox.gcp_compute import GcpComputeEmulator
from tests.gcp.compute_support import (  # noqa: F401
    PROJECT,
    clients_fixture,
    emulator_fixture,
    make_clients,
    no_sleep,
)

ZONE = "us-central1-a"
T4_16 = "n1-standard-16+1xnvidia-tesla-t4"
T4_8 = "n1-standard-8+1xnvidia-tesla-t4"
SUPPORTED = {"stop", "start", "resize", "scale"}


@pytest.fixture(name="act")
def act_fixture(clients: GcpClients) -> GcpActuator:
    return GcpActuator(clients, sleep=no_sleep)


@pytest.fixture(name="offline")
def offline_fixture() -> GcpActuator:
    """An actuator for what reads nothing (kinds, permissions, effect_seen): its clients point nowhere."""
    return GcpActuator(make_clients("http://127.0.0.1:9"))


def _action(kind: str, name: str = "vm", **params: object) -> Action:
    return Action(kind, ResourceRef(Cloud.GCP, PROJECT, "us-central1", name), {"zone": ZONE, **params})


def _t4_vm(emulator: GcpComputeEmulator, status: str = "TERMINATED", count: int = 1) -> None:
    emulator.add_instance(PROJECT, ZONE, "vm", "n1-standard-16", status=status,
                          accelerators=[("nvidia-tesla-t4", count)])


def _mig(emulator: GcpComputeEmulator, size: int = 3) -> None:
    emulator.add_instance_template(PROJECT, "tpl", "g2-standard-4")
    emulator.add_mig(PROJECT, "web", "tpl", zone=ZONE, target_size=size)


def _writes(emulator: GcpComputeEmulator) -> list[str]:
    return [r for r in emulator.requests if r.startswith("POST ") and "/operations/" not in r]


# -- kinds and permissions ---------------------------------------------------------------------------------------
def test_kinds_cover_every_action_kind_and_support_four(offline: GcpActuator) -> None:
    kinds = offline.kinds()

    assert set(kinds) == set(ACTION_KINDS)
    assert {k for k, reason in kinds.items() if reason is None} == SUPPORTED


def test_schedule_is_refused_naming_instance_schedules(offline: GcpActuator) -> None:
    reason = offline.kinds()["schedule"]

    assert reason is not None and "instance schedules" in reason and "resource polic" in reason


def test_stop_needs_stop_and_start_permissions(offline: GcpActuator) -> None:
    perms = offline.permissions("stop")

    assert {"compute.instances.stop", "compute.instances.start", "compute.instances.get"} <= set(perms)
    assert offline.permissions("schedule") == ()


@pytest.mark.parametrize("kind", sorted(set(ACTION_KINDS) - SUPPORTED))
def test_unsupported_kinds_raise_with_the_reason(act: GcpActuator, emulator: GcpComputeEmulator, kind: str) -> None:
    emulator.add_instance(PROJECT, ZONE, "vm", "g2-standard-8")

    for call in (act.preview, act.execute, act.read):
        with pytest.raises(ProviderError) as err:
            call(_action(kind))
        assert err.value.code == "UnsupportedAction" and str(act.kinds()[kind]) in str(err.value)
    with pytest.raises(ProviderError, match=re.escape(str(act.kinds()[kind]))):
        act.undo(_action(kind), {})
    assert emulator.requests == []


# -- read and zones ----------------------------------------------------------------------------------------------
def test_read_names_the_attached_gpus_like_the_inventory(act: GcpActuator, emulator: GcpComputeEmulator) -> None:
    _t4_vm(emulator, status="RUNNING")

    assert act.read(_action("stop")) == {"state": "RUNNING", "type": T4_16}


def test_read_of_a_bundled_gpu_type_is_the_bare_machine_type(act: GcpActuator, emulator: GcpComputeEmulator) -> None:
    emulator.add_instance(PROJECT, ZONE, "vm", "a2-highgpu-1g", status="TERMINATED")

    assert act.read(_action("start")) == {"state": "TERMINATED", "type": "a2-highgpu-1g"}


def test_read_of_a_mig_is_its_target_size(act: GcpActuator, emulator: GcpComputeEmulator) -> None:
    _mig(emulator, 3)

    assert act.read(_action("scale", "web", size=1)) == {"size": 3}


def test_zone_falls_back_to_a_ref_region_that_names_a_zone(act: GcpActuator, emulator: GcpComputeEmulator) -> None:
    emulator.add_instance(PROJECT, ZONE, "vm", "g2-standard-8")

    state = act.read(Action("stop", ResourceRef(Cloud.GCP, PROJECT, ZONE, "vm"), {}))

    assert state["state"] == "RUNNING"


def test_a_region_without_a_zone_is_refused(act: GcpActuator, emulator: GcpComputeEmulator) -> None:
    with pytest.raises(ProviderError) as err:
        act.preview(Action("stop", ResourceRef(Cloud.GCP, PROJECT, "us-central1", "vm"), {}))

    assert err.value.code == "InvalidParameter" and 'params["zone"]' in str(err.value.hint)
    assert emulator.requests == []


# -- preview -----------------------------------------------------------------------------------------------------
def test_preview_of_a_stop_reads_a_running_vm(act: GcpActuator, emulator: GcpComputeEmulator) -> None:
    emulator.add_instance(PROJECT, ZONE, "vm", "g2-standard-8")

    preview = act.preview(_action("stop"))

    assert preview.would_succeed and not preview.native
    assert preview.state == {"state": "RUNNING", "type": "g2-standard-8"}
    assert _writes(emulator) == []


def test_preview_refuses_to_stop_a_stopped_vm(act: GcpActuator, emulator: GcpComputeEmulator) -> None:
    emulator.add_instance(PROJECT, ZONE, "vm", "g2-standard-8", status="TERMINATED")

    preview = act.preview(_action("stop"))

    assert not preview.would_succeed and "TERMINATED" in preview.detail


def test_preview_refuses_to_start_a_running_vm(act: GcpActuator, emulator: GcpComputeEmulator) -> None:
    emulator.add_instance(PROJECT, ZONE, "vm", "g2-standard-8")

    preview = act.preview(_action("start"))

    assert not preview.would_succeed and "RUNNING" in preview.detail


def test_preview_refuses_to_resize_a_running_vm(act: GcpActuator, emulator: GcpComputeEmulator) -> None:
    _t4_vm(emulator, status="RUNNING")

    preview = act.preview(_action("resize", from_type=T4_16, to_type=T4_8))

    assert not preview.would_succeed and "stop it first" in preview.detail


def test_preview_refuses_a_resize_from_another_type(act: GcpActuator, emulator: GcpComputeEmulator) -> None:
    emulator.add_instance(PROJECT, ZONE, "vm", "a2-highgpu-2g", status="TERMINATED")

    preview = act.preview(_action("resize", from_type="a2-highgpu-4g", to_type="a2-highgpu-1g"))

    assert not preview.would_succeed and "a2-highgpu-2g, not a2-highgpu-4g" in preview.detail


def test_preview_refuses_a_change_of_the_attached_gpus(act: GcpActuator, emulator: GcpComputeEmulator) -> None:
    _t4_vm(emulator)

    preview = act.preview(_action("resize", from_type=T4_16, to_type="n1-standard-16+2xnvidia-tesla-t4"))

    assert not preview.would_succeed and "changes the attached GPUs" in preview.detail


def test_preview_of_a_resize_of_a_stopped_vm_succeeds(act: GcpActuator, emulator: GcpComputeEmulator) -> None:
    _t4_vm(emulator)

    preview = act.preview(_action("resize", from_type=T4_16, to_type=T4_8))

    assert preview.would_succeed and preview.detail == f"{T4_16} -> {T4_8}"


def test_preview_of_a_scale_says_the_sizes(act: GcpActuator, emulator: GcpComputeEmulator) -> None:
    _mig(emulator, 3)

    preview = act.preview(_action("scale", "web", size=1))

    assert preview.would_succeed and preview.state == {"size": 3} and "3 -> 1" in preview.detail


def test_preview_refuses_a_negative_size(act: GcpActuator, emulator: GcpComputeEmulator) -> None:
    _mig(emulator, 3)

    preview = act.preview(_action("scale", "web", size=-1))

    assert not preview.would_succeed and "non-negative" in preview.detail


# -- execute and undo --------------------------------------------------------------------------------------------
def test_stop_then_undo_starts_it_again(act: GcpActuator, emulator: GcpComputeEmulator) -> None:
    emulator.add_instance(PROJECT, ZONE, "vm", "g2-standard-8")
    action = _action("stop")

    done = act.execute(action)
    assert (done.before["state"], done.after["state"]) == ("RUNNING", "TERMINATED")

    undone = act.undo(action, done.before)
    assert undone.after == {"state": "RUNNING", "type": "g2-standard-8"}
    assert emulator.count("/vm/stop") == 1 and emulator.count("/vm/start") == 1


def test_start_then_undo_stops_it_again(act: GcpActuator, emulator: GcpComputeEmulator) -> None:
    emulator.add_instance(PROJECT, ZONE, "vm", "g2-standard-8", status="TERMINATED")
    action = _action("start")

    done = act.execute(action)
    assert done.after["state"] == "RUNNING"

    assert act.undo(action, done.before).after["state"] == "TERMINATED"


def test_undo_of_a_stop_that_found_the_vm_stopped_never_stops_it(act: GcpActuator,
                                                                  emulator: GcpComputeEmulator) -> None:
    emulator.add_instance(PROJECT, ZONE, "vm", "g2-standard-8")  # started by someone since

    undone = act.undo(_action("stop"), {"state": "TERMINATED", "type": "g2-standard-8"})

    assert undone.after["state"] == "RUNNING" and "nothing to undo" in undone.note
    assert _writes(emulator) == []


def test_undo_of_a_stop_already_restarted_makes_no_call(act: GcpActuator, emulator: GcpComputeEmulator) -> None:
    emulator.add_instance(PROJECT, ZONE, "vm", "g2-standard-8")

    undone = act.undo(_action("stop"), {"state": "RUNNING", "type": "g2-standard-8"})

    assert "RUNNING already" in undone.note and _writes(emulator) == []


def test_resize_sets_the_bare_machine_type_and_keeps_the_gpus(act: GcpActuator, emulator: GcpComputeEmulator) -> None:
    _t4_vm(emulator)

    done = act.execute(_action("resize", from_type=T4_16, to_type=T4_8))

    assert (done.before["type"], done.after["type"]) == (T4_16, T4_8)
    vm = emulator.instance(PROJECT, ZONE, "vm")
    assert vm["machineType"].endswith("/machineTypes/n1-standard-8")
    assert [a["acceleratorCount"] for a in vm["guestAccelerators"]] == [1]


def test_undo_of_a_resize_restores_the_type(act: GcpActuator, emulator: GcpComputeEmulator) -> None:
    _t4_vm(emulator)
    action = _action("resize", from_type=T4_16, to_type=T4_8)
    done = act.execute(action)

    undone = act.undo(action, done.before)

    assert undone.before["type"] == T4_8 and undone.after == {"state": "TERMINATED", "type": T4_16}
    assert emulator.count("/setMachineType") == 2


def test_undo_of_a_resize_of_a_vm_running_again_is_refused(act: GcpActuator, emulator: GcpComputeEmulator) -> None:
    _t4_vm(emulator)
    action = _action("resize", from_type=T4_16, to_type=T4_8)
    done = act.execute(action)
    emulator.instance(PROJECT, ZONE, "vm")["status"] = "RUNNING"  # started by its owner since

    with pytest.raises(ProviderError, match="TERMINATED") as err:
        act.undo(action, done.before)

    assert err.value.hint == "stop the instance first"
    assert emulator.count("/setMachineType") == 1


def test_resize_of_a_running_vm_raises_before_any_change(act: GcpActuator, emulator: GcpComputeEmulator) -> None:
    _t4_vm(emulator, status="RUNNING")

    with pytest.raises(ProviderError) as err:
        act.execute(_action("resize", from_type=T4_16, to_type=T4_8))

    assert err.value.code == "IncorrectState" and _writes(emulator) == []


def test_resize_changing_the_gpus_raises_before_any_change(act: GcpActuator, emulator: GcpComputeEmulator) -> None:
    _t4_vm(emulator)

    with pytest.raises(ProviderError) as err:
        act.execute(_action("resize", from_type=T4_16, to_type="n1-standard-16"))

    assert err.value.code == "GpuChange" and _writes(emulator) == []


def test_resize_of_a_vm_changed_since_the_audit_is_stale(act: GcpActuator, emulator: GcpComputeEmulator) -> None:
    _t4_vm(emulator)

    with pytest.raises(ProviderError) as err:
        act.execute(_action("resize", from_type="n1-standard-32+1xnvidia-tesla-t4", to_type=T4_8))

    assert err.value.code == "StaleAction" and _writes(emulator) == []


def test_scale_sets_the_target_size_and_undo_restores_it(act: GcpActuator, emulator: GcpComputeEmulator) -> None:
    _mig(emulator, 3)
    action = _action("scale", "web", size=1)

    done = act.execute(action)
    assert (done.before, done.after) == ({"size": 3}, {"size": 1})
    assert emulator.count(f"/zones/{ZONE}/instanceGroupManagers/web/resize?size=1") == 1

    assert act.undo(action, done.before).after == {"size": 3}
    assert emulator.count("/instanceGroupManagers/web/resize?size=3") == 1


def test_scale_to_the_current_size_makes_no_call(act: GcpActuator, emulator: GcpComputeEmulator) -> None:
    _mig(emulator, 2)

    done = act.execute(_action("scale", "web", size=2))

    assert done.after == {"size": 2} and "already" in done.note and _writes(emulator) == []


def test_no_delete_request_ever_reaches_compute(act: GcpActuator, emulator: GcpComputeEmulator) -> None:
    emulator.add_instance(PROJECT, ZONE, "vm", "n1-standard-16", accelerators=[("nvidia-tesla-t4", 1)])
    _mig(emulator, 3)
    stop, start = _action("stop"), _action("start")
    resize, scale = _action("resize", from_type=T4_16, to_type=T4_8), _action("scale", "web", size=0)
    stopped = act.execute(stop)
    act.undo(resize, act.execute(resize).before)
    act.undo(start, act.execute(start).before)
    act.undo(scale, act.execute(scale).before)
    act.undo(stop, stopped.before)

    assert len(_writes(emulator)) == 8
    assert not [r for r in emulator.requests if r.startswith("DELETE") or "delete" in r.lower()
                or "abandon" in r.lower()]


def test_every_call_made_is_in_the_kind_s_permissions(emulator: GcpComputeEmulator) -> None:
    _t4_vm(emulator)
    emulator.add_instance(PROJECT, ZONE, "running", "g2-standard-8")
    _mig(emulator, 3)
    made: dict[str, set[str]] = {}
    for action in (_action("start"), _action("resize", from_type=T4_16, to_type=T4_8), _action("stop", "running"),
                   _action("scale", "web", size=1)):
        act = GcpActuator(make_clients(emulator.url), sleep=no_sleep)
        act.preview(action)
        act.undo(action, act.execute(action).before)
        made[action.kind] = set(act.clients.calls)

    assert {k: calls - set(ACTUATOR_CALLS[k]) for k, calls in made.items()} == {k: set() for k in made}
    assert "compute.Instances.SetMachineType" in made["resize"]


# -- effect_seen -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "params", "state", "seen"), [
    ("stop", {}, {"state": "STOPPING"}, True),
    ("stop", {}, {"state": "TERMINATED"}, True),
    ("stop", {}, {"state": "RUNNING"}, False),
    ("start", {}, {"state": "STAGING"}, True),
    ("start", {}, {"state": "RUNNING"}, True),
    ("start", {}, {"state": "TERMINATED"}, False),
    ("resize", {"to_type": T4_8}, {"state": "TERMINATED", "type": T4_8}, True),
    ("resize", {"to_type": T4_8}, {"state": "TERMINATED", "type": T4_16}, False),
    ("scale", {"size": 1}, {"size": 1}, True),
    ("scale", {"size": 1}, {"size": 3}, False),
])
def test_effect_seen(offline: GcpActuator, kind: str, params: dict[str, object], state: dict[str, object],
                     seen: bool) -> None:
    assert offline.effect_seen(_action(kind, **params), state) is seen


def test_effect_seen_of_a_stop_sent_but_never_waited_for(act: GcpActuator, emulator: GcpComputeEmulator,
                                                         clients: GcpClients) -> None:
    emulator.operation_polls = 5  # the operation still runs: the VM reads STOPPING
    emulator.add_instance(PROJECT, ZONE, "vm", "g2-standard-8")
    clients.compute("InstancesClient").stop_unary(project=PROJECT, zone=ZONE, instance="vm")
    action = _action("stop")

    state = act.read(action)

    assert state["state"] == "STOPPING" and act.effect_seen(action, state)
    assert not act.effect_seen(_action("start"), state)

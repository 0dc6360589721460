"""``AzureActuator`` (the ``providers.base.Actuator`` of Azure) through the real azure-mgmt-compute client against the
local ARM emulator: preview, execute and undo per kind, ``effect_seen``, refusals; a stop always deallocates, never a
power-off, never a delete."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from providers.azure.actuator import AzureActuator
from providers.azure.client import AzureClients
from providers.azure.permissions import ACTUATOR_CALLS
from providers.base import ACTION_KINDS
from providers.errors import ProviderError
from providers.model import Action, Cloud, ResourceRef
from providers.sandbox.azure_arm import AzureArmEmulator
from tests.azure.arm_support import (
    RG,
    SUB,
    StaticCredential,
    arm_emulator,
    clients_for,
    scale_set_id,
    vm_id,
)

A100 = "Standard_NC24ads_A100_v4"
A100X2 = "Standard_NC48ads_A100_v4"
T4 = "Standard_NC4as_T4_v3"
SUPPORTED = {"stop", "deallocate", "start", "resize", "scale"}


@pytest.fixture
def arm() -> Iterator[AzureArmEmulator]:
    with arm_emulator(lro_polls=1) as emulator:
        yield emulator


@pytest.fixture
def act(arm: AzureArmEmulator) -> AzureActuator:
    return AzureActuator(clients_for(arm))


@pytest.fixture
def offline() -> AzureActuator:
    """An actuator for what reads nothing (kinds, permissions, effect_seen): its clients point nowhere."""
    return AzureActuator(AzureClients(credential=StaticCredential(), base_url="https://127.0.0.1:9"))


def _action(kind: str, resource_id: str | None = None, **params: object) -> Action:
    return Action(kind, ResourceRef(Cloud.AZURE, SUB, "eastus", resource_id or vm_id("vm")), params)


def _vm(arm: AzureArmEmulator, power_state: str = "running", size: str = A100X2) -> None:
    arm.add_vm(SUB, RG, "vm", size, "eastus", power_state=power_state)


def _writes(arm: AzureArmEmulator) -> list[str]:
    return [r for r in arm.requests if r.split(" ", 1)[0] in ("POST", "PATCH", "PUT", "DELETE")]


# -- kinds and permissions ---------------------------------------------------------------------------------------
def test_kinds_cover_every_action_kind(offline: AzureActuator) -> None:
    kinds = offline.kinds()

    assert set(kinds) == set(ACTION_KINDS)
    assert {k for k, reason in kinds.items() if reason is None} == SUPPORTED


def test_schedule_is_refused_naming_azure_schedulers(offline: AzureActuator) -> None:
    reason = offline.kinds()["schedule"]

    assert reason is not None and "auto-shutdown" in reason and "Start/Stop VMs v2" in reason


def test_power_off_is_refused_as_still_billed(offline: AzureActuator) -> None:
    assert "still billed" in str(offline.kinds()["power_off"])


def test_stop_needs_deallocate_and_start_actions(offline: AzureActuator) -> None:
    actions = set(offline.permissions("stop"))

    assert {"Microsoft.Compute/virtualMachines/deallocate/action",
            "Microsoft.Compute/virtualMachines/start/action"} <= actions
    assert not [a for a in actions if "powerOff" in a or "delete" in a]


@pytest.mark.parametrize("kind", sorted(set(ACTION_KINDS) - SUPPORTED))
def test_unsupported_kinds_raise_with_the_reason(act: AzureActuator, arm: AzureArmEmulator, kind: str) -> None:
    _vm(arm)
    reason = re.escape(str(act.kinds()[kind]))

    for call in (act.preview, act.execute, act.read):
        with pytest.raises(ProviderError, match=reason) as err:
            call(_action(kind))
        assert err.value.code == "UnsupportedAction"
    with pytest.raises(ProviderError, match=reason):
        act.undo(_action(kind), {})
    assert arm.requests == []


# -- read ----------------------------------------------------------------------------------------------------------
def test_read_of_a_vm_is_its_power_state_and_size(act: AzureActuator, arm: AzureArmEmulator) -> None:
    _vm(arm, "stopped")

    assert act.read(_action("stop")) == {"state": "stopped", "size": A100X2}
    assert arm.count("$expand=instanceView") == 1


def test_read_of_a_scale_set_is_its_capacity(act: AzureActuator, arm: AzureArmEmulator) -> None:
    arm.add_scale_set(SUB, RG, "workers", T4, "eastus", 3)

    assert act.read(_action("scale", scale_set_id("workers"), capacity=1)) == {"capacity": 3}


# -- preview -------------------------------------------------------------------------------------------------------
def test_preview_of_a_stop_of_a_running_vm_deallocates(act: AzureActuator, arm: AzureArmEmulator) -> None:
    _vm(arm)

    preview = act.preview(_action("stop"))

    assert preview.would_succeed and not preview.native and "deallocates" in preview.detail
    assert _writes(arm) == []


def test_preview_of_a_stop_of_a_powered_off_vm_succeeds(act: AzureActuator, arm: AzureArmEmulator) -> None:
    _vm(arm, "stopped")

    preview = act.preview(_action("stop"))

    assert preview.would_succeed and "still allocated" in preview.detail


def test_preview_refuses_to_stop_a_deallocated_vm(act: AzureActuator, arm: AzureArmEmulator) -> None:
    _vm(arm, "deallocated")

    preview = act.preview(_action("stop"))

    assert not preview.would_succeed and "deallocated already" in preview.detail


def test_preview_refuses_to_start_a_running_vm(act: AzureActuator, arm: AzureArmEmulator) -> None:
    _vm(arm)

    preview = act.preview(_action("start"))

    assert not preview.would_succeed and "running already" in preview.detail


def test_preview_refuses_a_power_action_while_another_runs(act: AzureActuator, arm: AzureArmEmulator) -> None:
    _vm(arm, "deallocating")

    preview = act.preview(_action("start"))

    assert not preview.would_succeed and "wait" in preview.detail


def test_preview_of_a_resize_of_a_running_vm_says_it_restarts(act: AzureActuator, arm: AzureArmEmulator) -> None:
    _vm(arm)

    preview = act.preview(_action("resize", from_type=A100X2, to_type=A100))

    assert preview.would_succeed and "restarts" in preview.detail


def test_preview_refuses_a_resize_from_another_size(act: AzureActuator, arm: AzureArmEmulator) -> None:
    _vm(arm)

    preview = act.preview(_action("resize", from_type=T4, to_type=A100))

    assert not preview.would_succeed and f"{A100X2}, not {T4}" in preview.detail


def test_preview_of_a_scale_says_the_capacities(act: AzureActuator, arm: AzureArmEmulator) -> None:
    arm.add_scale_set(SUB, RG, "workers", T4, "eastus", 3)

    preview = act.preview(_action("scale", scale_set_id("workers"), capacity=1))

    assert preview.would_succeed and "3 -> 1" in preview.detail


def test_preview_refuses_a_scale_without_capacity(act: AzureActuator, arm: AzureArmEmulator) -> None:
    arm.add_scale_set(SUB, RG, "workers", T4, "eastus", 3)

    preview = act.preview(_action("scale", scale_set_id("workers"), size=1))

    assert not preview.would_succeed and 'params["capacity"]' in preview.detail


# -- execute and undo ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("params", [{}, {"deallocate": True}])
def test_stop_deallocates_and_undo_starts(act: AzureActuator, arm: AzureArmEmulator, params: dict[str, object]) -> None:
    _vm(arm)
    action = _action("stop", **params)

    done = act.execute(action)
    assert (done.before["state"], done.after["state"]) == ("running", "deallocated")
    assert arm.count("/vm/deallocate?") == 1 and arm.count("/powerOff") == 0

    assert act.undo(action, done.before).after == {"state": "running", "size": A100X2}


def test_stop_of_a_powered_off_vm_deallocates_it(act: AzureActuator, arm: AzureArmEmulator) -> None:
    _vm(arm, "stopped")

    done = act.execute(_action("stop"))

    assert (done.before["state"], done.after["state"]) == ("stopped", "deallocated")
    assert arm.power_state(vm_id("vm")) == "deallocated"


def test_undo_of_a_stop_of_a_powered_off_vm_keeps_it_deallocated(act: AzureActuator, arm: AzureArmEmulator) -> None:
    _vm(arm, "stopped")
    action = _action("stop")
    done = act.execute(action)

    undone = act.undo(action, done.before)

    assert undone.after["state"] == "deallocated" and "never powers off" in undone.note
    assert [w.split("?")[0].rsplit("/", 1)[-1] for w in _writes(arm)] == ["deallocate"]


def test_undo_of_a_stop_that_found_it_deallocated_makes_no_call(act: AzureActuator, arm: AzureArmEmulator) -> None:
    _vm(arm)  # started by its owner since

    undone = act.undo(_action("stop"), {"state": "deallocated", "size": A100X2})

    assert undone.after["state"] == "running" and "nothing to undo" in undone.note and _writes(arm) == []


def test_start_then_undo_deallocates_again(act: AzureActuator, arm: AzureArmEmulator) -> None:
    _vm(arm, "deallocated")
    action = _action("start")

    done = act.execute(action)
    assert done.after["state"] == "running"

    assert act.undo(action, done.before).after["state"] == "deallocated"
    assert arm.count("/deallocate?") == 1 and arm.count("/powerOff") == 0


def test_resize_of_a_running_vm_and_undo(act: AzureActuator, arm: AzureArmEmulator) -> None:
    _vm(arm)
    action = _action("resize", from_type=A100X2, to_type=A100)

    done = act.execute(action)
    assert (done.before["size"], done.after["size"]) == (A100X2, A100)

    undone = act.undo(action, done.before)
    assert undone.after == {"state": "running", "size": A100X2} and "restarted" in undone.note
    assert [(r.old_size, r.new_size) for r in arm.resizes] == [(A100X2, A100), (A100, A100X2)]


def test_resize_of_a_vm_changed_since_the_audit_is_stale(act: AzureActuator, arm: AzureArmEmulator) -> None:
    _vm(arm)

    with pytest.raises(ProviderError) as err:
        act.execute(_action("resize", from_type=T4, to_type=A100))

    assert err.value.code == "StaleAction" and _writes(arm) == [] and arm.resizes == []


def test_scale_sets_capacity_and_undo_restores_it(act: AzureActuator, arm: AzureArmEmulator) -> None:
    arm.add_scale_set(SUB, RG, "workers", T4, "eastus", 3)
    action = _action("scale", scale_set_id("workers"), capacity=1)

    done = act.execute(action)
    assert (done.before, done.after) == ({"capacity": 3}, {"capacity": 1})
    assert len(arm.scale_set_members(SUB, RG, "workers")) == 1

    assert act.undo(action, done.before).after == {"capacity": 3}
    assert arm.scale_set(SUB, RG, "workers")["sku"]["capacity"] == 3


def test_scale_to_the_current_capacity_makes_no_call(act: AzureActuator, arm: AzureArmEmulator) -> None:
    arm.add_scale_set(SUB, RG, "workers", T4, "eastus", 2)

    done = act.execute(_action("scale", scale_set_id("workers"), capacity=2))

    assert done.after == {"capacity": 2} and "already" in done.note and _writes(arm) == []


def test_no_delete_or_power_off_ever_reaches_arm(act: AzureActuator, arm: AzureArmEmulator) -> None:
    _vm(arm)
    arm.add_scale_set(SUB, RG, "workers", T4, "eastus", 3)
    stop, start = _action("stop"), _action("start")
    resize = _action("resize", from_type=A100X2, to_type=A100)
    scale = _action("scale", scale_set_id("workers"), capacity=0)
    stopped = act.execute(stop)
    act.undo(resize, act.execute(resize).before)
    act.undo(start, act.execute(start).before)
    act.undo(scale, act.execute(scale).before)
    act.undo(stop, stopped.before)

    assert len(_writes(arm)) == 8
    assert not [r for r in arm.requests if r.startswith("DELETE") or "delete" in r.lower() or "poweroff" in r.lower()]


def test_every_call_made_is_in_the_kind_s_permissions(arm: AzureArmEmulator) -> None:
    _vm(arm)
    arm.add_scale_set(SUB, RG, "workers", T4, "eastus", 3)
    made: dict[str, set[str]] = {}
    for action in (_action("stop"), _action("resize", from_type=A100X2, to_type=A100), _action("start"),
                   _action("deallocate"), _action("scale", scale_set_id("workers"), capacity=1)):
        act = AzureActuator(clients_for(arm))
        act.preview(action)
        act.undo(action, act.execute(action).before)
        made[action.kind] = set(act.clients.calls)

    assert {k: calls - set(ACTUATOR_CALLS[k]) for k, calls in made.items()} == {k: set() for k in made}
    assert {"compute.VirtualMachines.Update", "compute.Operations.Poll"} <= made["resize"]


# -- effect_seen -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "params", "state", "seen"), [
    ("stop", {}, {"state": "deallocating"}, True),
    ("stop", {}, {"state": "deallocated"}, True),
    ("stop", {}, {"state": "stopped"}, False),  # powered off, still billed: not what a stop does
    ("stop", {}, {"state": "running"}, False),
    ("deallocate", {}, {"state": "deallocated"}, True),
    ("start", {}, {"state": "starting"}, True),
    ("start", {}, {"state": "running"}, True),
    ("start", {}, {"state": "deallocated"}, False),
    ("resize", {"to_type": A100}, {"state": "running", "size": A100}, True),
    ("resize", {"to_type": A100}, {"state": "running", "size": A100X2}, False),
    ("scale", {"capacity": 1}, {"capacity": 1}, True),
    ("scale", {"capacity": 1}, {"capacity": 3}, False),
])
def test_effect_seen(offline: AzureActuator, kind: str, params: dict[str, object], state: dict[str, object],
                     seen: bool) -> None:
    assert offline.effect_seen(_action(kind, **params), state) is seen


def test_effect_seen_of_a_deallocation_sent_but_never_waited_for(act: AzureActuator, arm: AzureArmEmulator) -> None:
    _vm(arm)
    act.clients.compute(SUB).virtual_machines.begin_deallocate(RG, "vm", polling=False)
    action = _action("stop")

    state = act.read(action)

    assert state["state"] == "deallocating" and act.effect_seen(action, state)
    assert not act.effect_seen(_action("start"), state)

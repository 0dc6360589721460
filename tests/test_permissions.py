"""The roles in infra/ are generated from the providers' permission maps; every call an audit makes has its
permission there (the AWS read policy's own check is in tests/agent/test_cli.py), and every call each actuator
class makes for a kind is covered by that kind's permissions (``ACTUATOR_CALLS``), none of them a delete."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from providers.aws import permissions as aws_permissions
from providers.aws.actuator import AwsActuator
from providers.azure import permissions as azure_permissions
from providers.azure.actuator import AzureActuator
from providers.gcp import permissions as gcp_permissions
from providers.gcp.actuator import GcpActuator
from providers.model import Action, Cloud, ResourceRef
from providers.sandbox import moto_server

ROOT = Path(__file__).resolve().parents[1]


def test_gcp_role_file_is_generated_from_the_map():
    assert (ROOT / "infra/gcp/audit-readonly-role.yaml").read_text() == gcp_permissions.audit_role_yaml()


def test_azure_role_file_is_generated_from_the_map():
    assert (ROOT / "infra/azure/audit-readonly-role.json").read_text() == azure_permissions.audit_role_json()


@pytest.mark.parametrize(("package", "module"), [("gcp", gcp_permissions), ("azure", azure_permissions)])
def test_every_counted_call_has_its_permissions(package, module):
    """Operation names written out in the provider's code (``count("...")``, ``OPERATION = "..."``)."""
    text = "\n".join(p.read_text() for p in (ROOT / "providers" / package).glob("*.py"))
    named = set(re.findall(r'"((?:compute|monitoring|monitor|bigquery|storage|cloudresourcemanager|subscription|'
                           r'costmanagement)\.[A-Z][A-Za-z]+\.[A-Z][A-Za-z]+)"', text))
    assert named, "no operation names found"
    assert named <= set(module.READ) | set(module.WRITE), sorted(named - set(module.READ) - set(module.WRITE))


def test_read_roles_grant_nothing_that_changes_a_resource():
    assert not any(p.rsplit(".", 1)[-1] in ("stop", "start", "setMachineType", "update", "delete")
                   for p in gcp_permissions.read_permissions())
    assert all(a.endswith(("/read", "/Read")) or a == "Microsoft.CostManagement/query/action"
               for a in azure_permissions.read_actions())


# --- the actuators' roles ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Role:
    """One cloud's actuator class, its permission map and the generated role file."""

    cloud: str
    actuator: type
    module: Any
    path: str
    generate: Callable[[], str]

    def granted(self) -> list[str]:
        """The permissions the generated document grants."""
        text = self.generate()
        if self.cloud == "gcp":
            return re.findall(r"^- (\S+)$", text, re.MULTILINE)
        doc = json.loads(text)
        if self.cloud == "aws":
            return [a for statement in doc["Statement"] for a in statement["Action"]]
        return doc["Actions"] + doc["DataActions"]

    def kind_permissions(self, kind: str) -> set[str]:
        """What ``ACTUATOR_CALLS[kind]`` maps to through ``WRITE``."""
        return {p for call in self.module.ACTUATOR_CALLS[kind] for p in self.module.WRITE[call]}


ROLES = [
    Role("aws", AwsActuator, aws_permissions, "infra/aws/actuator-policy.json", aws_permissions.actuator_policy_json),
    Role("gcp", GcpActuator, gcp_permissions, "infra/gcp/actuator-role.yaml", gcp_permissions.actuator_role_yaml),
    Role("azure", AzureActuator, azure_permissions, "infra/azure/actuator-role.json",
         azure_permissions.actuator_role_json),
]


@pytest.fixture(params=ROLES, ids=[r.cloud for r in ROLES])
def role(request: pytest.FixtureRequest) -> Role:
    return request.param


def test_actuator_role_file_is_generated_from_the_map(role: Role) -> None:
    assert (ROOT / role.path).read_text() == role.generate(), f"regenerate {role.path} from its generator"


def test_actuator_supports_exactly_the_kinds_of_its_map(role: Role) -> None:
    kinds = role.actuator(None).kinds()
    assert {k for k, reason in kinds.items() if reason is None} == set(role.module.ACTUATOR_CALLS)
    assert all(reason for k, reason in kinds.items() if k not in role.module.ACTUATOR_CALLS)


def test_each_kind_needs_what_its_calls_need_and_the_role_grants_it(role: Role) -> None:
    granted = set(role.granted())
    for kind, calls in role.module.ACTUATOR_CALLS.items():
        assert set(calls) <= set(role.module.WRITE), (kind, sorted(set(calls) - set(role.module.WRITE)))
        assert set(role.actuator(None).permissions(kind)) == role.kind_permissions(kind), kind
        assert role.kind_permissions(kind) <= granted, (kind, sorted(role.kind_permissions(kind) - granted))
    assert granted == set().union(*(role.kind_permissions(k) for k in role.module.ACTUATOR_CALLS))


def test_no_actuator_role_grants_a_terminate_or_delete(role: Role) -> None:
    granted = role.granted()
    assert granted
    assert not [p for p in granted if re.search("terminate|delete|detach", p, re.IGNORECASE)]
    assert not [c for c in role.module.WRITE if re.search("terminate|delete|detach", c, re.IGNORECASE)]


def test_aws_scale_covers_the_scheduled_actions_it_puts_and_reads() -> None:
    assert {"autoscaling:PutScheduledUpdateGroupAction", "autoscaling:DescribeScheduledActions"} <= \
        set(AwsActuator(None).permissions("scale"))
    assert "schedule" not in aws_permissions.ACTUATOR_CALLS


# --- the calls each actuator makes, kind by kind, against the local clouds --------------------------------------

#: One action of each supported kind per cloud, with what to seed: a kind added to a map without one here fails.
AWS_REGION, GCP_ZONE = "us-east-1", "us-central1-a"


def _exercise(actuator: Any, action: Action) -> None:
    """Everything an apply and an undo of ``action`` may call."""
    actuator.preview(action)
    done = actuator.execute(action)
    actuator.effect_seen(action, actuator.read(action))
    actuator.undo(action, done.before)


def _assert_calls_covered(cloud: str, kind: str, calls: dict[str, int], allowed: tuple[str, ...]) -> None:
    assert calls, (cloud, kind, "no call counted")
    assert set(calls) <= set(allowed), (cloud, kind, sorted(set(calls) - set(allowed)))


@pytest.fixture(scope="module")
def aws_cloud() -> Iterator[Any]:
    with moto_server((AWS_REGION,)) as server:
        yield server


def test_every_call_the_aws_actuator_makes_is_covered_by_its_kind(aws_cloud: Any) -> None:
    from tests.aws.support import AMI, launch, make_clients, raw, reset

    reset(aws_cloud.url)
    ec2 = raw("ec2", aws_cloud.url)
    running, to_start, to_resize = launch(ec2, "g5.12xlarge", 3)
    ec2.stop_instances(InstanceIds=[to_start, to_resize])
    ec2.create_launch_template(LaunchTemplateName="perm-lt", LaunchTemplateData={"ImageId": AMI,
                                                                                "InstanceType": "g5.xlarge"})
    raw("autoscaling", aws_cloud.url).create_auto_scaling_group(
        AutoScalingGroupName="perm", MinSize=1, MaxSize=4, DesiredCapacity=2, AvailabilityZones=[f"{AWS_REGION}a"],
        LaunchTemplate={"LaunchTemplateName": "perm-lt", "Version": "$Latest"})
    night = {"name": "costagent-night", "recurrence": "0 20 * * *", "min_size": 0, "max_size": 4,
             "desired_capacity": 0, "time_zone": "UTC"}
    actions = {"stop": (running, {}), "start": (to_start, {}), "tag": (running, {"tags": {"k": "v"}}),
               "resize": (to_resize, {"from_type": "g5.12xlarge", "to_type": "g5.xlarge"}),
               "scale": ("perm", {"min_size": 0, "max_size": 4, "desired_capacity": 0, "scheduled_actions": [night]})}
    assert set(actions) == set(aws_permissions.ACTUATOR_CALLS)
    for kind, (target, params) in actions.items():
        clients = make_clients(aws_cloud.url)
        _exercise(AwsActuator(clients, delay=0, max_attempts=3),
                  Action(kind, ResourceRef(Cloud.AWS, "123456789012", AWS_REGION, target), params))
        _assert_calls_covered("aws", kind, dict(clients.calls), aws_permissions.ACTUATOR_CALLS[kind])


def test_every_call_the_gcp_actuator_makes_is_covered_by_its_kind() -> None:
    from tests.gcp.compute_support import PROJECT, make_clients, no_sleep, start_emulator

    emulator = start_emulator()
    try:
        emulator.add_instance(PROJECT, GCP_ZONE, "running", "g2-standard-8")
        emulator.add_instance(PROJECT, GCP_ZONE, "stopped", "g2-standard-8", status="TERMINATED")
        emulator.add_instance(PROJECT, GCP_ZONE, "to-resize", "g2-standard-8", status="TERMINATED")
        emulator.add_instance_template(PROJECT, "perm-tpl", "g2-standard-8")
        emulator.add_mig(PROJECT, "perm-mig", "perm-tpl", zone=GCP_ZONE, target_size=2)
        actions = {"stop": ("running", {}), "start": ("stopped", {}),
                   "resize": ("to-resize", {"from_type": "g2-standard-8", "to_type": "g2-standard-4"}),
                   "scale": ("perm-mig", {"size": 1})}
        assert set(actions) == set(gcp_permissions.ACTUATOR_CALLS)
        for kind, (target, params) in actions.items():
            clients = make_clients(emulator.url)
            _exercise(GcpActuator(clients, sleep=no_sleep),
                      Action(kind, ResourceRef(Cloud.GCP, PROJECT, "us-central1", target), {**params, "zone": GCP_ZONE}))
            _assert_calls_covered("gcp", kind, dict(clients.calls), gcp_permissions.ACTUATOR_CALLS[kind])
    finally:
        emulator.stop()


def test_every_call_the_azure_actuator_makes_is_covered_by_its_kind() -> None:
    from tests.azure.arm_support import RG, SUB, arm_emulator, clients_for, scale_set_id, vm_id

    a100, a100x2 = "Standard_NC24ads_A100_v4", "Standard_NC48ads_A100_v4"
    with arm_emulator(lro_polls=1) as arm:
        for name, power in (("running", "running"), ("to-dealloc", "running"), ("stopped", "deallocated"),
                            ("to-resize", "running")):
            arm.add_vm(SUB, RG, name, a100x2, "eastus", power_state=power)
        arm.add_scale_set(SUB, RG, "perm-ss", a100, "eastus", 2)
        actions = {"stop": (vm_id("running"), {}), "deallocate": (vm_id("to-dealloc"), {}),
                   "start": (vm_id("stopped"), {}),
                   "resize": (vm_id("to-resize"), {"from_type": a100x2, "to_type": a100}),
                   "scale": (scale_set_id("perm-ss"), {"capacity": 1})}
        assert set(actions) == set(azure_permissions.ACTUATOR_CALLS)
        for kind, (target, params) in actions.items():
            clients = clients_for(arm)
            _exercise(AzureActuator(clients), Action(kind, ResourceRef(Cloud.AZURE, SUB, "eastus", target), params))
            _assert_calls_covered("azure", kind, dict(clients.calls), azure_permissions.ACTUATOR_CALLS[kind])

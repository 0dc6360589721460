"""The AWS read-only policy in infra/ is generated from the permission map, and the map names every call
the AWS provider's code makes (the policy against a real audit's calls is in tests/agent/test_cli.py)."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import botocore.session
from botocore import xform_name

from providers.aws import permissions

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "infra" / "aws" / "audit-readonly-policy.json"


@cache
def _model(service: str):
    return botocore.session.get_session().get_service_model(service)


def _called_operations(text: str) -> set[str]:
    """``service.Operation`` for each operation a module's code names: an operation literal
    (``pages(client, "DescribeInstances", ...)``, ``translated("s3", "GetObject", ...)``), a client method
    (``.get_cost_and_usage(``) or a waiter (``get_waiter("instance_stopped")``), of the services whose
    clients the module makes (``client("ec2", ...)``) or names in ``translated("ce", ...)``."""
    services = set(re.findall(r'(?:client|translated)\("([a-z0-9-]+)"', text))
    literals = set(re.findall(r'"([A-Z][A-Za-z0-9]+)"', text))
    methods = set(re.findall(r"\.([a-z][a-z0-9_]*)\(", text))
    waiters = set(re.findall(r'get_waiter\("([a-z_]+)"\)', text))
    found: set[str] = set()
    for service in services:
        model = _model(service)
        for op in model.operation_names:
            if op in literals or xform_name(op) in methods:
                found.add(f"{service}.{op}")
        if waiters:
            config = botocore.session.get_session().get_waiter_model(service, model.api_version).waiter_config
            found |= {f"{service}.{spec['operation']}" for name, spec in config["waiters"].items()
                      if xform_name(name) in waiters}
    return found


def test_policy_file_is_generated_from_the_map() -> None:
    assert POLICY.read_text() == permissions.audit_policy_json()


def test_every_operation_the_provider_calls_is_in_the_map() -> None:
    texts = {p.name: p.read_text() for p in (ROOT / "providers" / "aws").glob("*.py")}
    called = set().union(*(_called_operations(t) for t in texts.values()))
    assert {"ec2.DescribeInstances", "ce.GetCostAndUsage", "s3.GetObject", "ec2.StopInstances"} <= called
    missing = called - set(permissions.READ) - set(permissions.WRITE)
    assert not missing, sorted(missing)


def test_every_actuator_operation_is_a_write() -> None:
    called = _called_operations((ROOT / "providers" / "aws" / "actuator.py").read_text())
    assert called, "no operations found"
    assert called <= set(permissions.WRITE), sorted(called - set(permissions.WRITE))


def test_read_policy_allows_only_describe_list_get() -> None:
    policy = json.loads(permissions.audit_policy_json())
    allowed = [a for statement in policy["Statement"] for a in statement["Action"]]
    assert "s3:ListBucket" in allowed  # ListObjectsV2's permission
    assert all(a.split(":", 1)[1].startswith(("Describe", "List", "Get")) for a in allowed), allowed


def test_read_policy_grants_none_of_the_writes() -> None:
    writes = set(permissions.write_actions()) - set(permissions.read_actions())
    assert {"ec2:StopInstances", "ec2:ModifyInstanceAttribute", "autoscaling:UpdateAutoScalingGroup"} <= writes
    policy = json.loads(permissions.audit_policy_json())
    assert not writes & {a for statement in policy["Statement"] for a in statement["Action"]}


def test_writes_never_terminate_or_delete() -> None:
    assert not [a for a in permissions.write_actions() if re.search(r":(Terminate|Delete|Detach)", a)]


def test_each_call_maps_to_its_own_service_actions() -> None:
    for name, actions in {**permissions.READ, **permissions.WRITE}.items():
        service = name.split(".", 1)[0]
        assert actions and all(a.startswith(f"{service}:") for a in actions), (name, actions)


def test_the_s3_reads_are_scoped_to_the_export_bucket() -> None:
    [s3] = [s for s in permissions.audit_policy("my-cur")["Statement"] if s["Action"] == ["s3:GetObject", "s3:ListBucket"]]
    assert s3["Resource"] == ["arn:aws:s3:::my-cur", "arn:aws:s3:::my-cur/*"]

"""The read-only roles in infra/ are generated from the providers' permission maps, and every call an
audit makes has its permission there (the AWS policy's own check is in tests/agent/test_cli.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from providers.azure import permissions as azure_permissions
from providers.gcp import permissions as gcp_permissions

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

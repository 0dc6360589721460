"""How resource ids are shown in tables (the JSON report keeps them whole)."""

from __future__ import annotations

import pytest

from reports.model import short_id

ARM = "/subscriptions/7d3e5a1c-0000-4000-8000-00000000c0de/resourceGroups/rg-ml/providers/Microsoft.Compute"


@pytest.mark.parametrize(("resource_id", "name", "shown"), [
    ("i-0abc", "notebook", "i-0abc"),  # AWS: the id says something the Name tag does not
    ("idle-a100", "idle-a100", None),  # GCP: the id is the name
    (f"{ARM}/virtualMachines/idle-a100", "idle-a100", "rg-ml/idle-a100"),
    (f"{ARM}/virtualMachineScaleSets/pool/virtualMachines/3", None, "rg-ml/pool/3"),
    (None, None, None),
])
def test_short_id(resource_id, name, shown):
    assert short_id(resource_id, name) == shown

"""The Azure RBAC actions behind each call the Azure provider counts (``AzureClients.count`` names).

``READ`` covers an audit; ``WRITE`` the actuator's mutations (the guarded apply). The read-only
custom role in ``infra/azure/audit-readonly-role.json`` is generated from ``READ`` (a test keeps them
equal); the Retail Prices API is public. The built-in roles Reader + Monitoring Reader + Cost
Management Reader grant the same and more.
"""

from __future__ import annotations

import json

BLOB_READ = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"

READ: dict[str, tuple[str, ...]] = {
    "subscription.Subscriptions.List": ("Microsoft.Resources/subscriptions/read",),
    "compute.VirtualMachines.ListAll": ("Microsoft.Compute/virtualMachines/read",
                                        "Microsoft.Compute/virtualMachines/instanceView/read"),
    "compute.VirtualMachineScaleSets.ListAll": ("Microsoft.Compute/virtualMachineScaleSets/read",),
    "compute.VirtualMachineScaleSetVMs.List": ("Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read",
                                               "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/"
                                               "instanceView/read"),
    "compute.VirtualMachineScaleSets.Get": ("Microsoft.Compute/virtualMachineScaleSets/read",),
    "compute.ResourceSkus.List": ("Microsoft.Compute/skus/read",),
    "monitor.AutoscaleSettings.ListBySubscription": ("Microsoft.Insights/AutoscaleSettings/Read",),
    "monitor.Metrics.List": ("Microsoft.Insights/Metrics/Read",),
    # metrics:getBatch (data plane): the same action, granted on the subscription itself (a subscription-level API)
    "monitor.MetricsBatch.Query": ("Microsoft.Insights/Metrics/Read",),
    "monitor.MetricDefinitions.List": ("Microsoft.Insights/MetricDefinitions/Read",),
    "monitor.MetricNamespaces.List": ("Microsoft.Insights/MetricNamespaces/Read",),
    "costmanagement.Query.Usage": ("Microsoft.CostManagement/query/action",),
    "retail-prices.GET": (),
    # --billing https://<account>.blob.core.windows.net/...: data actions (the Storage Blob Data Reader role)
    "storage.Blobs.List": (BLOB_READ,),
    "storage.Blobs.Get": (BLOB_READ,),
}

WRITE: dict[str, tuple[str, ...]] = {
    "compute.VirtualMachines.Deallocate": ("Microsoft.Compute/virtualMachines/deallocate/action",),
    "compute.VirtualMachines.Start": ("Microsoft.Compute/virtualMachines/start/action",),
    "compute.VirtualMachines.Update": ("Microsoft.Compute/virtualMachines/write",),
    "compute.VirtualMachineScaleSetVMs.Deallocate": (
        "Microsoft.Compute/virtualMachineScaleSets/virtualmachines/deallocate/action",),
    "compute.VirtualMachineScaleSetVMs.Start": ("Microsoft.Compute/virtualMachineScaleSets/virtualmachines/start/action",),
    "compute.VirtualMachineScaleSets.Update": ("Microsoft.Compute/virtualMachineScaleSets/write",),
    "compute.Operations.Poll": ("Microsoft.Compute/locations/operations/read",),
    "compute.VirtualMachines.Get": ("Microsoft.Compute/virtualMachines/read",),  # the state before, the preview
    "compute.VirtualMachineScaleSets.Get": ("Microsoft.Compute/virtualMachineScaleSets/read",),
}

#: The calls (``WRITE`` keys) each action kind ``AzureActuator`` supports makes: its preview, execute and undo
#: (a stop, always a deallocation, is undone by a start). The actuator role is generated from these.
_POWER = ("compute.VirtualMachines.Deallocate", "compute.VirtualMachines.Start", "compute.VirtualMachines.Get",
          "compute.Operations.Poll")
ACTUATOR_CALLS: dict[str, tuple[str, ...]] = {
    "stop": _POWER,
    "deallocate": _POWER,
    "start": _POWER,
    "resize": ("compute.VirtualMachines.Update", "compute.VirtualMachines.Get", "compute.Operations.Poll"),
    "scale": ("compute.VirtualMachineScaleSets.Update", "compute.VirtualMachineScaleSets.Get",
              "compute.Operations.Poll"),
}


def read_actions() -> list[str]:
    return sorted({a for actions in READ.values() for a in actions})


def kind_actions(kind: str) -> tuple[str, ...]:
    """The RBAC actions of one supported action kind (``ACTUATOR_CALLS``)."""
    return tuple(sorted({a for call in ACTUATOR_CALLS[kind] for a in WRITE[call]}))


def actuator_actions() -> list[str]:
    return sorted({a for kind in ACTUATOR_CALLS for a in kind_actions(kind)})


def audit_role_json() -> str:
    """The read-only custom role definition (``az role definition create --role-definition @FILE``)."""
    role = {
        "Name": "costagent audit (read-only)",
        "IsCustom": True,
        "Description": "Reads VMs, scale sets, Azure Monitor metrics, Cost Management costs and billing exports in "
                       "storage. Generated from "
                       "providers/azure/permissions.py (READ).",
        "Actions": [a for a in read_actions() if a != BLOB_READ],
        "NotActions": [],
        "DataActions": [BLOB_READ],  # blob contents are data-plane: only for billing exports in a storage account
        "NotDataActions": [],
        "AssignableScopes": ["/subscriptions/00000000-0000-0000-0000-000000000000"],
    }
    return json.dumps(role, indent=2) + "\n"


def actuator_role_json() -> str:
    """The actuator's custom role definition (``az role definition create --role-definition @FILE``)."""
    role = {
        "Name": "costagent actuator",
        "IsCustom": True,
        "Description": "Deallocates, starts and resizes VMs and sets scale set capacity; never deletes. Generated "
                       "from providers/azure/permissions.py (ACTUATOR_CALLS).",
        "Actions": actuator_actions(),
        "NotActions": [],
        "DataActions": [],
        "NotDataActions": [],
        "AssignableScopes": ["/subscriptions/00000000-0000-0000-0000-000000000000"],
    }
    return json.dumps(role, indent=2) + "\n"

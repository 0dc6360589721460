"""The IAM permissions behind each call the GCP provider counts (``GcpClients.count`` names).

``READ`` covers an audit; ``WRITE`` the actuator's mutations (the guarded apply). The read-only
custom role in ``infra/gcp/audit-readonly-role.yaml`` is generated from ``READ`` (a test keeps them
equal); the Cloud Billing Catalog is public and needs no permission.
"""

from __future__ import annotations

READ: dict[str, tuple[str, ...]] = {
    "cloudresourcemanager.Projects.SearchProjects": ("resourcemanager.projects.get",),
    "compute.Instances.AggregatedList": ("compute.instances.list",),
    "compute.Instances.Get": ("compute.instances.get",),
    "compute.MachineTypes.AggregatedList": ("compute.machineTypes.list",),
    "compute.AcceleratorTypes.AggregatedList": ("compute.acceleratorTypes.list",),
    "compute.InstanceGroupManagers.AggregatedList": ("compute.instanceGroupManagers.list",),
    "compute.InstanceGroupManagers.ListManagedInstances": ("compute.instanceGroupManagers.get",),
    "compute.RegionInstanceGroupManagers.ListManagedInstances": ("compute.instanceGroupManagers.get",),
    "compute.Autoscalers.AggregatedList": ("compute.autoscalers.list",),
    "compute.InstanceTemplates.Get": ("compute.instanceTemplates.get",),
    "compute.RegionInstanceTemplates.Get": ("compute.instanceTemplates.get",),
    "monitoring.TimeSeries.List": ("monitoring.timeSeries.list",),
    "bigquery.Tables.Get": ("bigquery.tables.get",),
    "bigquery.Jobs.Query": ("bigquery.jobs.create", "bigquery.tables.getData"),
    "bigquery.Jobs.Get": ("bigquery.jobs.get",),
    "bigquery.Jobs.GetQueryResults": ("bigquery.jobs.get",),
    "storage.Objects.List": ("storage.objects.list",),
    "storage.Objects.Get": ("storage.objects.get",),
    "cloudbilling.ListServices": (),
    "cloudbilling.ListSkus": (),
}

WRITE: dict[str, tuple[str, ...]] = {
    "compute.Instances.Stop": ("compute.instances.stop",),
    "compute.Instances.Start": ("compute.instances.start",),
    "compute.Instances.SetMachineType": ("compute.instances.setMachineType",),
    "compute.InstanceGroupManagers.Resize": ("compute.instanceGroupManagers.update",),
    "compute.ZoneOperations.Wait": ("compute.zoneOperations.get",),
    "compute.Instances.Get": ("compute.instances.get",),  # the state before a change, and the preview
    "compute.InstanceGroupManagers.Get": ("compute.instanceGroupManagers.get",),  # a MIG's size before
}

#: The calls (``WRITE`` keys) each action kind ``GcpActuator`` supports makes: its preview, execute and undo
#: (a stop is undone by a start, so both need both). The actuator role is generated from these.
ACTUATOR_CALLS: dict[str, tuple[str, ...]] = {
    "stop": ("compute.Instances.Stop", "compute.Instances.Start", "compute.Instances.Get", "compute.ZoneOperations.Wait"),
    "start": ("compute.Instances.Start", "compute.Instances.Stop", "compute.Instances.Get",
              "compute.ZoneOperations.Wait"),
    "resize": ("compute.Instances.SetMachineType", "compute.Instances.Get", "compute.ZoneOperations.Wait"),
    "scale": ("compute.InstanceGroupManagers.Resize", "compute.InstanceGroupManagers.Get",
              "compute.ZoneOperations.Wait"),
}


def read_permissions() -> list[str]:
    return sorted({p for perms in READ.values() for p in perms})


def kind_permissions(kind: str) -> tuple[str, ...]:
    """The IAM permissions of one supported action kind (``ACTUATOR_CALLS``)."""
    return tuple(sorted({p for call in ACTUATOR_CALLS[kind] for p in WRITE[call]}))


def actuator_permissions() -> list[str]:
    return sorted({p for kind in ACTUATOR_CALLS for p in kind_permissions(kind)})


def audit_role_yaml() -> str:
    """The read-only custom role, in the format ``gcloud iam roles create --file`` reads."""
    lines = ["# Generated from providers/gcp/permissions.py (READ); tests keep this file equal to it.",
             "# gcloud iam roles create costagentAudit --project=PROJECT --file=infra/gcp/audit-readonly-role.yaml",
             "title: costagent audit (read-only)",
             "description: Reads Compute Engine inventory, Cloud Monitoring metrics and the BigQuery billing export.",
             "stage: GA",
             "includedPermissions:"]
    lines += [f"- {p}" for p in read_permissions()]
    return "\n".join(lines) + "\n"


def actuator_role_yaml() -> str:
    """The actuator's custom role (the guarded apply), in the format ``gcloud iam roles create --file`` reads."""
    lines = ["# Generated from providers/gcp/permissions.py (ACTUATOR_CALLS); tests keep this file equal to it.",
             "# gcloud iam roles create costagentActuator --project=PROJECT --file=infra/gcp/actuator-role.yaml",
             "title: costagent actuator",
             "description: Stops, starts and changes the machine type of VMs and resizes MIGs; never deletes.",
             "stage: GA",
             "includedPermissions:"]
    lines += [f"- {p}" for p in actuator_permissions()]
    return "\n".join(lines) + "\n"

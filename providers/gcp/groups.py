"""Managed instance groups (zonal and regional) as ``Group`` records, and the GPU types a region offers.

Per project: one ``instanceGroupManagers.aggregatedList`` and one ``autoscalers.aggregatedList`` (the
autoscaler names its MIG in ``target``), then per MIG ``listManagedInstances`` for its members and its
instance template (``instanceTemplates.get``, global or regional, once per template) for the machine
type new members get. Sizes: ``targetSize`` is the desired size; the autoscaler's
``minNumReplicas``/``maxNumReplicas`` bound it (without an autoscaler, or with its mode OFF, the group
is fixed at ``targetSize``). Warm-up: the autoscaler's ``coolDownPeriodSec`` (the "initialization
period" of the console), else the autohealing policy's ``initialDelaySec``. Scaling schedules become
``ScheduledCapacity`` records: one at the schedule's start (``minRequiredReplicas`` as the floor) and,
where the end can be written as a cron (minute and hour fixed), one at its end restoring the
autoscaler's own minimum, since a schedule holds its floor only for ``durationSec``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from providers.errors import NotFound
from providers.gcp.client import GcpClients, translated
from providers.gcp.inventory import (
    PAGE_SIZE,
    instance_type_name,
    last,
    machine_types,
    zone_region,
)
from providers.model import Cloud, Group, Resource, ResourceRef, ScheduledCapacity

log = logging.getLogger(__name__)

#: Managed instances on their way out of the group are no longer members.
LEAVING = frozenset({"DELETING", "ABANDONING"})
_SCOPED = re.compile(r"(zones|regions)/([^/]+)/instanceGroupManagers/([^/]+)$")
_TEMPLATE = re.compile(r"projects/([^/]+)/(?:global|regions/([^/]+))/instanceTemplates/([^/]+)$")


def _aggregated(clients: GcpClients, kind: str, operation: str, project: str, key: str) -> list[Any]:
    client = clients.compute(kind)
    out: list[Any] = []
    with translated(operation, clients.where("compute")):
        pager = client.aggregated_list(request={"project": project, "max_results": PAGE_SIZE},
                                       retry=clients.retry, timeout=clients.timeout)
        for page in pager.pages:
            clients.count(operation)
            for scoped in page.items.values():
                out.extend(getattr(scoped, key))
    return out


def _scope_key(url: str) -> tuple[str, str, str] | None:
    m = _SCOPED.search(url or "")
    return (m.group(1), m.group(2), m.group(3)) if m else None


def list_groups(clients: GcpClients, project: str, instances_by_name: Mapping[str, Resource]) -> list[Group]:
    """Every MIG of ``project`` with sizes, members (instance names), type, warm-up and scaling schedules.

    ``instances_by_name``: the project's inventory, by instance name; it names the group's type when
    the template cannot be read (its members' common type).
    """
    migs = _aggregated(clients, "InstanceGroupManagersClient", "compute.InstanceGroupManagers.AggregatedList",
                       project, "instance_group_managers")
    if not migs:
        return []
    autoscalers = {}
    for scaler in _aggregated(clients, "AutoscalersClient", "compute.Autoscalers.AggregatedList", project,
                              "autoscalers"):
        target = _scope_key(scaler.target)
        if target is not None and scaler.autoscaling_policy.mode != "OFF":
            autoscalers[target] = scaler
    templates: dict[str, tuple[str | None, dict[str, str]]] = {}
    return [_group(clients, project, mig, autoscalers, templates, instances_by_name) for mig in migs]


def _group(clients: GcpClients, project: str, mig: Any, autoscalers: Mapping[tuple[str, str, str], Any],
           templates: dict[str, tuple[str | None, dict[str, str]]], inventory: Mapping[str, Resource]) -> Group:
    zonal = bool(mig.zone)
    region = zone_region(last(mig.zone)) if zonal else last(mig.region)
    members = _members(clients, project, mig)
    urls = {u for u in [mig.instance_template, *(v.instance_template for v in mig.versions)] if u}
    read = [_template(clients, project, url, templates) for url in sorted(urls)]
    kinds = {t for t, _ in read}
    itype = kinds.pop() if len(kinds) == 1 else None
    if itype is None and len(read) <= 1:  # unreadable template: the members' common type, if any
        seen = {inventory[m].instance_type for m in members if m in inventory}
        itype = seen.pop() if len(seen) == 1 else None
    target = int(mig.target_size)
    scaler = autoscalers.get(("zones" if zonal else "regions", last(mig.zone or mig.region), mig.name))
    low = high = target
    warmup: int | None = None
    scheduled: tuple[ScheduledCapacity, ...] = ()
    if scaler is not None:
        policy = scaler.autoscaling_policy
        low, high = int(policy.min_num_replicas), int(policy.max_num_replicas)
        warmup = int(policy.cool_down_period_sec) or None
        scheduled = schedules(policy.scaling_schedules, low)
    if warmup is None and mig.auto_healing_policies:
        warmup = int(mig.auto_healing_policies[0].initial_delay_sec) or None
    return Group(
        ref=ResourceRef(Cloud.GCP, project, region, mig.name),
        kind="gcp-mig",
        instance_type=itype,
        min_size=low,
        max_size=high,
        desired=target,
        members=tuple(sorted(members)),
        warmup_seconds=warmup,
        tags=read[0][1] if len(read) == 1 else {},
        scheduled=scheduled,
    )


def _members(clients: GcpClients, project: str, mig: Any) -> list[str]:
    zonal = bool(mig.zone)
    prefix = "" if zonal else "Region"
    kind, operation = f"{prefix}InstanceGroupManagersClient", f"compute.{prefix}InstanceGroupManagers.ListManagedInstances"
    request = {"project": project, "instance_group_manager": mig.name, "max_results": PAGE_SIZE,
               ("zone" if zonal else "region"): last(mig.zone or mig.region)}
    names: list[str] = []
    with translated(operation, clients.where("compute")):
        pager = clients.compute(kind).list_managed_instances(request=request, retry=clients.retry,
                                                             timeout=clients.timeout)
        for page in pager.pages:
            clients.count(operation)
            names += [last(m.instance) for m in page.managed_instances
                      if m.instance and m.current_action not in LEAVING]
    return names


def _template(clients: GcpClients, project: str, url: str,
              cache: dict[str, tuple[str | None, dict[str, str]]]) -> tuple[str | None, dict[str, str]]:
    """(instance type, labels) of the template at ``url``, read once per run of ``list_groups``."""
    if url in cache:
        return cache[url]
    m = _TEMPLATE.search(url)
    if m is None:
        cache[url] = (None, {})
        return cache[url]
    owner, region, name = m.groups()
    if region:
        kind, operation, args = "RegionInstanceTemplatesClient", "compute.RegionInstanceTemplates.Get", {"region": region}
    else:
        kind, operation, args = "InstanceTemplatesClient", "compute.InstanceTemplates.Get", {}
    try:
        with translated(operation, clients.where("compute")):
            clients.count(operation)
            template = clients.compute(kind).get(project=owner, instance_template=name, **args,
                                                 retry=clients.retry, timeout=clients.timeout)
    except NotFound as exc:
        log.warning("event=gcp_template_missing project=%s template=%s error=%s", project, name, exc.one_line())
        cache[url] = (None, {})
        return cache[url]
    props = template.properties
    machine = last(props.machine_type)
    accels = [(last(a.accelerator_type), int(a.accelerator_count)) for a in props.guest_accelerators]
    itype = instance_type_name(machine, accels, machine_types(clients, project).shape(machine))
    cache[url] = (itype, dict(props.labels))
    return cache[url]


def schedules(scaling_schedules: Mapping[str, Any], floor: int) -> tuple[ScheduledCapacity, ...]:
    """The enabled scaling schedules as recurring capacity changes (start, and end where expressible)."""
    out: list[ScheduledCapacity] = []
    for name in sorted(scaling_schedules):
        item = scaling_schedules[name]
        if item.disabled or not item.schedule:
            continue
        zone = item.time_zone or "UTC"
        out.append(ScheduledCapacity(name, item.schedule, min_size=int(item.min_required_replicas), time_zone=zone))
        end = end_recurrence(item.schedule, int(item.duration_sec))
        if end is not None:
            out.append(ScheduledCapacity(f"{name}:end", end, min_size=floor, time_zone=zone))
        else:
            log.info("event=gcp_schedule_end_unknown schedule=%s cron=%r duration_s=%s", name, item.schedule,
                     item.duration_sec)
    return tuple(out)


def end_recurrence(cron: str, duration_sec: int) -> str | None:
    """The cron at which a schedule starting at ``cron`` ends ``duration_sec`` later; None when the start is
    not one fixed time of day, or the end falls on another day of a schedule bound to days of the month."""
    fields = cron.split()
    if len(fields) != 5 or duration_sec <= 0 or not (fields[0].isdigit() and fields[1].isdigit()):
        return None
    minute, hour, dom, month, dow = fields
    days, rest = divmod(int(hour) * 60 + int(minute) + duration_sec // 60, 1440)
    h, m = divmod(rest, 60)
    if days == 0:
        return f"{m} {h} {dom} {month} {dow}"
    if dom != "*" or month != "*":
        return None
    if dow in ("*", "?"):
        return f"{m} {h} * * *"
    shifted = set()
    for part in dow.split(","):
        span = re.fullmatch(r"(\d)(?:-(\d))?", part)
        if span is None:
            return None  # names or steps: not rewritten
        first, end = int(span.group(1)), int(span.group(2) or span.group(1))
        if first > end:
            return None
        shifted |= {(d + days) % 7 for d in range(first, end + 1)}
    return f"{m} {h} * * {','.join(str(d) for d in sorted(shifted))}"


def offered_types(clients: GcpClients, project: str, region: str, instance_types: Sequence[str]) -> set[str]:
    """Which of ``instance_types`` some zone of ``region`` offers: the machine type, and for attached-GPU
    names (``n1-standard-8+1xnvidia-tesla-t4``) the accelerator type in the same zone, enough cards of it."""
    types = machine_types(clients, project)
    wanted = set(instance_types)
    types.shapes_for({t.partition("+")[0] for t in wanted})
    zones = {z: names for z, names in types.offered.items() if zone_region(z) == region}
    accels = types.accelerator_zones(region) if any("+" in t for t in wanted) else {}
    found: set[str] = set()
    for itype in wanted:
        machine, _, attached = itype.partition("+")
        for zone, names in zones.items():
            if machine not in names:
                continue
            if not attached:
                found.add(itype)
                break
            m = re.fullmatch(r"(\d+)x(.+)", attached)
            if m and accels.get(zone, {}).get(m.group(2), 0) >= int(m.group(1)):
                found.add(itype)
                break
    return found

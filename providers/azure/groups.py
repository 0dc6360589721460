"""Azure VM scale sets as ``Group`` records, and the VM sizes a location offers the subscription.

A scale set's desired size is its ``sku.capacity``; its bounds come from an enabled Azure Monitor
autoscale setting targeting it (``autoscaleSettings`` listed once per subscription): the profile
without recurrence or fixed date gives min/max, recurring profiles become ``ScheduledCapacity``
(cron in the setting's time zone). Without an enabled setting the scale set does not scale by
itself: min = max = capacity. Members are ARM ids: Uniform instances from
``virtualMachineScaleSets/{name}/virtualMachines``, Flexible members from the subscription's VM list
(``properties.virtualMachineScaleSet.id``).

``offered_types`` reads the Resource SKUs API: a size is offered in a location unless it carries a
``Location`` restriction with reason ``NotAvailableForSubscription`` (zone-only restrictions still
leave it offered in the region).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from providers.azure.client import AzureClients
from providers.azure.inventory import (
    LIST_ALL,
    SET_VMS_LIST,
    SETS_LIST_ALL,
    pages,
    region_of,
    resource_group,
    resource_skus,
    text,
)
from providers.model import Cloud, Group, ResourceRef, ScheduledCapacity

log = logging.getLogger(__name__)

AUTOSCALE_LIST = "monitor.AutoscaleSettings.ListBySubscription"
_DAYS = {"sunday": 0, "monday": 1, "tuesday": 2, "wednesday": 3, "thursday": 4, "friday": 5, "saturday": 6}
#: Windows time zone names autoscale schedules use -> IANA names (the common ones).
WINDOWS_ZONES = {
    "utc": "UTC", "coordinated universal time": "UTC", "gmt standard time": "Europe/London",
    "w. europe standard time": "Europe/Berlin", "central europe standard time": "Europe/Budapest",
    "romance standard time": "Europe/Paris", "eastern standard time": "America/New_York",
    "central standard time": "America/Chicago", "mountain standard time": "America/Denver",
    "pacific standard time": "America/Los_Angeles", "india standard time": "Asia/Kolkata",
    "china standard time": "Asia/Shanghai", "tokyo standard time": "Asia/Tokyo",
    "singapore standard time": "Asia/Singapore", "aus eastern standard time": "Australia/Sydney",
}


def list_groups(clients: AzureClients, subscription: str) -> list[Group]:
    """Every scale set of ``subscription`` (all locations) with its sizes, members and schedules."""
    compute = clients.compute(subscription)
    sets = list(pages(clients, SETS_LIST_ALL, compute.virtual_machine_scale_sets.list_all()))
    if not sets:
        return []
    settings = _autoscale_settings(clients, subscription)
    flexible: dict[str, list[str]] = {}
    if any(text(getattr(s, "orchestration_mode", None)).lower() == "flexible" for s in sets):
        for vm in pages(clients, LIST_ALL, compute.virtual_machines.list_all()):
            owner = getattr(getattr(vm, "virtual_machine_scale_set", None), "id", None)
            if owner:
                flexible.setdefault(owner.lower(), []).append(str(vm.id))
    out: list[Group] = []
    for ss in sets:
        if text(getattr(ss, "orchestration_mode", None)).lower() == "flexible":
            members = flexible.get(str(ss.id).lower(), [])
        else:
            pager = compute.virtual_machine_scale_set_vms.list(resource_group(ss.id), ss.name)
            members = [str(m.id) for m in pages(clients, SET_VMS_LIST, pager)]
        out.append(_group(ss, subscription, members, settings.get(str(ss.id).lower())))
    return out


def _autoscale_settings(clients: AzureClients, subscription: str) -> dict[str, Any]:
    """Enabled autoscale settings by lower-cased target resource id."""
    found: dict[str, Any] = {}
    pager = clients.monitor(subscription).autoscale_settings.list_by_subscription()
    for setting in pages(clients, AUTOSCALE_LIST, pager):
        target = getattr(setting, "target_resource_uri", None)
        if target and getattr(setting, "enabled", True) is not False:
            found[str(target).lower()] = setting
    return found


def _group(ss: Any, subscription: str, members: list[str], setting: Any | None) -> Group:
    capacity = int(getattr(ss.sku, "capacity", None) or 0)
    low = high = capacity
    scheduled: list[ScheduledCapacity] = []
    if setting is not None:
        profiles = list(getattr(setting, "profiles", None) or [])
        fixed = [p for p in profiles if not getattr(p, "recurrence", None) and not getattr(p, "fixed_date", None)]
        base = (fixed or profiles or [None])[0]
        if base is not None:
            low, high = int(base.capacity.minimum), int(base.capacity.maximum)
        scheduled = [s for p in profiles if getattr(p, "recurrence", None) for s in [_scheduled(p)] if s]
    return Group(
        ref=ResourceRef(Cloud.AZURE, subscription, region_of(ss.location), str(ss.name)),
        kind="azure-vmss",
        instance_type=str(getattr(ss.sku, "name", None) or "") or None,
        min_size=low,
        max_size=high,
        desired=capacity,
        members=tuple(sorted(members)),
        tags=dict(ss.tags or {}),
        scheduled=tuple(scheduled),
    )


def _scheduled(profile: Any) -> ScheduledCapacity | None:
    """A recurring (weekly) autoscale profile as a cron schedule; None when it cannot be expressed."""
    recurrence = profile.recurrence
    schedule = getattr(recurrence, "schedule", None)
    if text(getattr(recurrence, "frequency", None)).lower() != "week" or schedule is None:
        return None
    zone = WINDOWS_ZONES.get(str(getattr(schedule, "time_zone", "") or "UTC").lower())
    days = [_DAYS.get(str(d).lower()) for d in getattr(schedule, "days", None) or []]
    hours, minutes = list(getattr(schedule, "hours", None) or []), list(getattr(schedule, "minutes", None) or [0])
    if zone is None or not days or None in days or not hours:
        log.info("event=azure_autoscale_schedule_skipped profile=%s time_zone=%s", profile.name,
                 getattr(schedule, "time_zone", None))
        return None
    cron = (f"{','.join(str(m) for m in minutes)} {','.join(str(h) for h in hours)} * * "
            f"{','.join(str(d) for d in sorted(set(days)))}")  # type: ignore[type-var]
    capacity = profile.capacity
    return ScheduledCapacity(name=str(profile.name), recurrence=cron, min_size=int(capacity.minimum),
                             max_size=int(capacity.maximum), desired=int(capacity.default), time_zone=zone)


def offered_types(clients: AzureClients, subscription: str, region: str, instance_types: Sequence[str]) -> set[str]:
    """Which of ``instance_types`` the Resource SKUs API offers ``subscription`` in ``region`` (names as asked)."""
    wanted = {t.lower(): t for t in instance_types}
    if not wanted:
        return set()
    offered: set[str] = set()
    for sku in resource_skus(clients, subscription, region):
        name = str(getattr(sku, "name", "") or "")
        if name.lower() not in wanted:
            continue
        if region_of(region) not in {region_of(loc) for loc in getattr(sku, "locations", None) or []}:
            continue
        if any(text(getattr(r, "type", None)).lower() == "location"
               and text(getattr(r, "reason_code", None)) == "NotAvailableForSubscription"
               for r in getattr(sku, "restrictions", None) or []):
            continue
        offered.add(wanted[name.lower()])
    return offered

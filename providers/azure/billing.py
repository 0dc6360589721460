"""Cost Management: what the subscription's virtual machines cost in the window, per VM and day.

One ``Query - Usage`` (``costmanagement.Query.Usage`` per page) at subscription scope: ``ActualCost``
(as billed: a reservation's purchase is its own row, the VM hours it covers cost 0; FOCUS BilledCost),
``Daily``, summed ``Cost``, grouped by ``ResourceId``, ``ResourceType``, ``ResourceLocation``,
``MeterCategory``, ``MeterSubcategory`` and ``PricingModel``, filtered to VMs and scale sets. The
reference documents two groupings but the service accepts more (azure-sdk-for-python issue 12973);
the body is sent as bytes so no SDK version validates it client-side.

Rows are positional and their column order varies between examples: columns are read by name.
``UsageDate`` is a number such as 20261101. Pages continue at an absolute ``nextLink`` the SDK's
``query.usage`` does not follow: it is POSTed again with the same body through the client's public
``send_request`` (same pipeline: token, retries, TLS settings). Ids come back lower-cased; the
instance size is not a query dimension, so ``sku`` is the meter sub-category (e.g. "NCadsA100v4
Series") and ``resource_id`` carries the VM. Cost Management's QPU throttling answers 429 with
``x-ms-ratelimit-microsoft.costmanagement-*-retry-after`` headers azure-core does not read, and
azure-core retries a POST's 429 only with ``Retry-After``: the calls pass ``retry_on_methods`` with
POST (the query only reads), so azure-core's own backoff retries them, then ``Throttled``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from providers.azure.client import AzureClients, send_raw, translated
from providers.model import Cloud, CostRecord, Window

OPERATION = "costmanagement.Query.Usage"
COST_TYPE = "ActualCost"
VM_TYPES = ("microsoft.compute/virtualmachines", "microsoft.compute/virtualmachinescalesets")
GROUPING = ("ResourceId", "ResourceType", "ResourceLocation", "MeterCategory", "MeterSubcategory", "PricingModel")
SERVICE = "Virtual Machines"
#: Cost Management PricingModel -> FOCUS PricingCategory.
PRICING = {"ondemand": "Standard", "spot": "Dynamic", "reservation": "Committed", "savingsplan": "Committed"}
#: azure-core retries 408/429/5xx only for these methods unless told otherwise (a POST only on 500/503/504):
#: the query is a read, so its POST joins them (a per-call option of the retry policy).
RETRY_ON_METHODS = frozenset({"HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST"})


def query_body(window: Window) -> dict[str, Any]:
    """The query: whole UTC days touching the window (``to`` is inclusive in Cost Management)."""
    first, last = _days(window)
    return {
        "type": COST_TYPE,
        "timeframe": "Custom",
        "timePeriod": {"from": f"{first.isoformat()}T00:00:00+00:00", "to": f"{last.isoformat()}T23:59:59+00:00"},
        "dataset": {
            "granularity": "Daily",
            "aggregation": {"totalCost": {"name": "Cost", "function": "Sum"}},
            "grouping": [{"type": "Dimension", "name": name} for name in GROUPING],
            "filter": {"dimensions": {"name": "ResourceType", "operator": "In", "values": list(VM_TYPES)}},
        },
    }


def costs(clients: AzureClients, subscription: str, window: Window) -> list[CostRecord]:
    """Daily VM cost records of one subscription in the window's days (pages followed, rows merged)."""
    first, last = _days(window)
    merged: dict[tuple[Any, ...], CostRecord] = {}
    for page in _pages(clients, subscription, query_body(window)):
        for record in _records(page, subscription):
            day = record.charge_period_start.date()
            if not first <= day <= last:
                continue
            key = (record.resource_id, day, record.service, record.sku, record.pricing_category, record.currency,
                   record.region)
            if key in merged:
                record = replace(merged[key], billed_cost=merged[key].billed_cost + record.billed_cost)
            merged[key] = record
    return sorted(merged.values(), key=lambda r: (r.charge_period_start, r.resource_id or "", r.sku or ""))


def _days(window: Window) -> tuple[date, date]:
    last = window.end.date() if window.end.time() != time(0) else window.end.date() - timedelta(days=1)
    return window.start.date(), max(last, window.start.date())


def _pages(clients: AzureClients, subscription: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    client = clients.costs()
    payload = json.dumps(body).encode()
    with translated(OPERATION, clients.where):
        clients.count(OPERATION)
        page = client.query.usage(f"subscriptions/{subscription}", payload, content_type="application/json",
                                  retry_on_methods=RETRY_ON_METHODS,
                                  cls=lambda response, _model, _headers: _json(response.http_response))
    while page:
        yield page
        next_link = (page.get("properties") or {}).get("nextLink")
        if not next_link:
            return
        with translated(OPERATION, clients.where):
            clients.count(OPERATION)
            page = _json(send_raw(client, "POST", next_link, body, retry_on_methods=RETRY_ON_METHODS))


def _json(response: Any) -> dict[str, Any] | None:
    """The answer with exact decimals (None for 204 No Content)."""
    if response.status_code == 204 or not response.text().strip():
        return None
    return json.loads(response.text(), parse_float=Decimal)


def _records(page: dict[str, Any], subscription: str) -> Iterator[CostRecord]:
    props = page.get("properties") or {}
    index = {str(c.get("name", "")).lower(): i for i, c in enumerate(props.get("columns") or [])}
    cost_at = next((index[n] for n in ("cost", "pretaxcost", "costusd", "pretaxcostusd") if n in index), None)
    if cost_at is None or "usagedate" not in index:
        return

    def cell(row: list[Any], name: str) -> Any:
        i = index.get(name.lower())
        return row[i] if i is not None and i < len(row) else None

    for row in props.get("rows") or []:
        day = datetime.strptime(str(int(cell(row, "UsageDate"))), "%Y%m%d").replace(tzinfo=timezone.utc)
        pricing = str(cell(row, "PricingModel") or "")
        yield CostRecord(
            cloud=Cloud.AZURE,
            account=subscription,
            region=str(cell(row, "ResourceLocation") or "") or None,
            service=str(cell(row, "MeterCategory") or "") or SERVICE,
            sku=str(cell(row, "MeterSubcategory") or "") or None,
            charge_period_start=day,
            charge_period_end=day + timedelta(days=1),
            billed_cost=Decimal(str(row[cost_at])),
            currency=str(cell(row, "Currency") or "USD"),
            resource_id=str(cell(row, "ResourceId") or "") or None,
            pricing_category=PRICING.get(pricing.lower().replace(" ", "")) if pricing else None,
        )

"""Cloud Billing export in BigQuery: what Compute Engine GPU capacity cost per day, net of credits.

GCP has no cost API; billing data is the Cloud Billing export to BigQuery, queried with SQL. One
query a run (BigQuery bills per byte scanned), over one export table named ``project.dataset.table``:

- the **standard** usage cost export (``gcp_billing_export_v1_<ACCOUNT>``), the **detailed** export
  (``gcp_billing_export_resource_v1_<ACCOUNT>``, with ``resource.name`` per VM) or Google's **FOCUS**
  export (``gcp_billing_export_focus_<ACCOUNT>``). ``kind`` names it; left out, the table's schema
  is read first (one ``tables.get``): ``ChargePeriodStart`` -> focus, a ``resource`` column -> detailed,
  else standard. The table's location from that answer is where the query runs.
- filtered on the window by ``usage_start_time`` (``ChargePeriodStart``) and to ``Compute Engine``; no
  ``_PARTITIONTIME`` filter (the export's partitions follow export time, not usage time, and the local
  emulator does not have the pseudo-column), so the query scans the whole table's selected columns.
- GPU-relevant rows only, as AWS's billing keeps EC2 compute: SKUs whose description names a GPU,
  machine types of the GPU series (``*gpu*``, ``g2-*``, ``g4-*``), and, where the export has
  resources, every row of a resource that had a GPU SKU row (an N1 VM's cores and memory).
- grouped per UTC day, project, region, SKU, machine type (system label
  ``compute.googleapis.com/machine_spec``; FOCUS: ``x_SystemLabels``) and resource, money as NUMERIC.

The SQL stays inside what both BigQuery and the emulator's DuckDB accept (backticked table name,
``TIMESTAMP '...'`` literals, ``UNNEST(...) AS alias``, ``CAST(... AS NUMERIC)``, no partition filter).
Rows are then merged per (day, project, region, machine type or SKU id, resource): a resource's GPU
rows take its machine type, and an N1 machine with attached GPUs becomes ``n1-standard-8+1xnvidia-tesla-t4``
(the catalog's instance type) when the GPU count follows from GPU seconds / VM seconds. Cost is
``cost + SUM(credits.amount)`` (credits are negative); the FOCUS export's ``EffectiveCost`` already nets them.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from providers.errors import ConfigurationError, NotFound
from providers.gcp.client import GcpClients, translated
from providers.model import Cloud, CostRecord, Window

log = logging.getLogger(__name__)

COMPUTE_ENGINE = "Compute Engine"
MACHINE_SPEC = "compute.googleapis.com/machine_spec"
KINDS = ("standard", "detailed", "focus")
TABLE_HINT = ("set the BigQuery billing export table as project.dataset.table, e.g. "
              "my-project.billing.gcp_billing_export_resource_v1_<ACCOUNT> (Billing > Billing export > "
              "BigQuery export; the detailed export gives per-VM costs)")
_TABLE = re.compile(r"^`?(?P<project>(?:[A-Za-z0-9.-]+:)?[A-Za-z0-9-]+)[.:](?P<dataset>\w+)\.(?P<table>[\w-]+)`?$")
_PROJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:-]*$")  # project ids, domain-scoped ones included

#: Column expressions per export kind (``{labels}`` is the repeated key/value column of system labels).
_COLUMNS: dict[str, dict[str, str]] = {
    "standard": {"ts": "usage_start_time", "project": "project.id", "region": "location.region",
                 "service": "service.description", "sku_id": "sku.id", "sku": "sku.description",
                 "resource": "CAST(NULL AS STRING)", "resource_key": "CAST(NULL AS STRING)",
                 "labels": "system_labels", "currency": "currency", "amount": "usage.amount",
                 "cost": "CAST(cost AS NUMERIC)",
                 "credits": "IFNULL((SELECT SUM(CAST(c.amount AS NUMERIC)) FROM UNNEST(credits) AS c), 0)"},
    "focus": {"ts": "ChargePeriodStart", "project": "SubAccountId", "region": "RegionId", "service": "ServiceName",
              "sku_id": "SkuId", "sku": "ChargeDescription", "resource": "ResourceName", "resource_key": "ResourceId",
              "labels": "x_SystemLabels", "currency": "BillingCurrency", "amount": "CAST(ConsumedQuantity AS FLOAT64)",
              "cost": "CAST(EffectiveCost AS NUMERIC)", "credits": "CAST(0 AS NUMERIC)"},
}
_COLUMNS["detailed"] = _COLUMNS["standard"] | {"resource": "resource.name", "resource_key": "resource.global_name"}
_GROUP = "usage_date, project_id, region, machine_spec, sku_id, sku_description, resource_name, resource_key, currency"


def parse_table(table: str) -> tuple[str, str, str]:
    """``project.dataset.table`` (or ``project:dataset.table``, backticks allowed) -> its three parts."""
    m = _TABLE.match(table.strip())
    if m is None:
        raise ConfigurationError(f"gcp: billing export table {table!r} is not project.dataset.table", hint=TABLE_HINT)
    return m.group("project"), m.group("dataset"), m.group("table")


def costs(clients: GcpClients, table: str, window: Window, *, project: str | None = None,
          kind: str | None = None, projects: Sequence[str] = ()) -> list[CostRecord]:
    """Daily Compute Engine GPU costs in ``window`` from the billing export ``table``, net of credits.

    ``project``: the project the query job runs in and is billed to (default: the table's project).
    ``kind``: ``standard`` | ``detailed`` | ``focus`` (default: read from the table's schema).
    ``projects``: keep only these projects' rows (default: every project in the export).
    No table configured returns no records: the caller reports the gap with ``TABLE_HINT``.
    """
    if not table or not table.strip():
        return []
    t_project, dataset, name = parse_table(table)
    if kind is not None and kind not in KINDS:
        raise ConfigurationError(f"gcp: billing export kind {kind!r} unknown", hint=f"one of {', '.join(KINDS)}")
    bad = [p for p in projects if not _PROJECT.match(p)]
    if bad:
        raise ConfigurationError(f"gcp: not a project id: {', '.join(bad)}")
    full = f"{t_project}.{dataset}.{name}"
    client = clients.bigquery(project or t_project)
    where = clients.where("bigquery")
    location, labels = None, True
    with _named(full):
        if kind is None:
            with translated("bigquery.Tables.Get", where):
                clients.count("bigquery.Tables.Get")
                info = client.get_table(full, retry=clients.retry, timeout=clients.timeout)
            kind, labels = _kind(full, [f.name for f in info.schema])
            location = info.location
        sql = build_query(full, kind, window, projects=projects, system_labels=labels)
        rows: list[Any] = []
        with translated("bigquery.Jobs.Query", where):
            clients.count("bigquery.Jobs.Query")
            result = client.query_and_wait(sql, location=location, retry=clients.retry, job_retry=None,
                                           api_timeout=clients.timeout, wait_timeout=clients.timeout)
            for number, page in enumerate(result.pages):
                if number == 1:  # google-cloud-bigquery reloads the job once before reading page 2
                    clients.count("bigquery.Jobs.Get")
                if number >= 1:
                    clients.count("bigquery.Jobs.GetQueryResults")
                rows.extend(page)
    log.info("event=gcp_billing_rows table=%s kind=%s rows=%d", full, kind, len(rows))
    return _records(rows, window)


def build_query(table: str, kind: str, window: Window, *, projects: Sequence[str] = (),
                system_labels: bool = True) -> str:
    """The one SQL query (a subset both BigQuery and the emulator run), for an export of ``kind``."""
    c = _COLUMNS[kind]
    spec = (f"(SELECT MAX(l.value) FROM UNNEST({c['labels']}) AS l WHERE l.key = '{MACHINE_SPEC}')"
            if system_labels else "CAST(NULL AS STRING)")
    only = f"\n      AND {c['project']} IN ({', '.join(_string(p) for p in projects)})" if projects else ""
    return f"""SELECT r.* FROM (
  SELECT g.*, MAX(g.gpu_sku) OVER (PARTITION BY g.resource_key) AS gpu_resource FROM (
    SELECT {_GROUP}, MAX(gpu_sku) AS gpu_sku, SUM(usage_amount) AS usage_amount,
           SUM(gross_cost) AS gross_cost, SUM(net_credits) AS net_credits
    FROM (
      SELECT CAST({c['ts']} AS DATE) AS usage_date, {c['project']} AS project_id, {c['region']} AS region,
             {spec} AS machine_spec, {c['sku_id']} AS sku_id, {c['sku']} AS sku_description,
             {c['resource']} AS resource_name, {c['resource_key']} AS resource_key, {c['currency']} AS currency,
             CASE WHEN UPPER({c['sku']}) LIKE '%GPU%' THEN 1 ELSE 0 END AS gpu_sku,
             {c['amount']} AS usage_amount, {c['cost']} AS gross_cost, {c['credits']} AS net_credits
      FROM `{table}`
      WHERE {c['ts']} >= {_timestamp(window.start)} AND {c['ts']} < {_timestamp(window.end)}
      AND {c['service']} = '{COMPUTE_ENGINE}'{only}
    ) AS charge
    GROUP BY {_GROUP}
  ) AS g
) AS r
WHERE r.gpu_sku = 1 OR (r.resource_key IS NOT NULL AND r.gpu_resource = 1)
   OR LOWER(r.machine_spec) LIKE '%gpu%' OR r.machine_spec LIKE 'g2-%' OR r.machine_spec LIKE 'g4-%'"""


def _kind(table: str, columns: Sequence[str]) -> tuple[str, bool]:
    names = set(columns)
    if "ChargePeriodStart" in names:
        return "focus", "x_SystemLabels" in names
    if "usage_start_time" in names and "cost" in names:
        return ("detailed" if "resource" in names else "standard"), "system_labels" in names
    raise ConfigurationError(f"gcp: {table} is not a Cloud Billing export (no usage_start_time / ChargePeriodStart)",
                             hint=TABLE_HINT)


@contextmanager
def _named(table: str) -> Iterator[None]:
    """Add the table hint to a NotFound (and the table's name, where the API message lacks it)."""
    try:
        yield
    except NotFound as exc:
        text = str(exc) if table.rsplit(".", 1)[-1] in str(exc) else f"{exc} (table {table})"
        raise NotFound(text, hint=TABLE_HINT, code=exc.code) from exc


def _timestamp(value: datetime) -> str:
    return f"TIMESTAMP '{value.astimezone(timezone.utc).strftime('%Y-%m-%d %H:%M:%S.%f')}'"


def _string(text: str) -> str:
    return f"'{text}'"  # project ids are checked against _PROJECT: no quotes or backslashes


@dataclass
class _Group:
    cost: Decimal = Decimal(0)
    currency: str = "USD"
    descriptions: set[str] = field(default_factory=set)


def _records(rows: Sequence[Any], window: Window) -> list[CostRecord]:
    machines = _machines(rows)
    groups: dict[tuple[date, str, str | None, str | None, str | None], _Group] = defaultdict(_Group)
    for r in rows:
        day: date = r["usage_date"]
        machine = machines.get((day, r["project_id"], r["resource_key"])) or r["machine_spec"]
        key = (day, r["project_id"] or "", r["region"] or None, machine or r["sku_id"] or None, r["resource_name"])
        g = groups[key]
        g.cost += Decimal(r["gross_cost"] or 0) + Decimal(r["net_credits"] or 0)
        g.currency = r["currency"] or g.currency
        g.descriptions.add(r["sku_description"] or "")
    out = []
    for (day, project, region, sku, resource), g in groups.items():
        start = datetime.combine(day, time(0), tzinfo=timezone.utc)
        out.append(CostRecord(
            cloud=Cloud.GCP, account=project, region=region, service=COMPUTE_ENGINE, sku=sku,
            charge_period_start=max(start, window.start), charge_period_end=min(start + timedelta(days=1), window.end),
            billed_cost=g.cost, currency=g.currency, resource_id=resource, pricing_category=_category(g.descriptions)))
    return sorted(out, key=lambda c: (c.charge_period_start, c.account, c.region or "", c.sku or "",
                                      c.resource_id or ""))


def _machines(rows: Sequence[Any]) -> dict[tuple[date, str, str], str]:
    """Per (day, project, resource): its machine type, N1 + attached GPUs as ``<machine>+<N>x<accelerator>``."""
    spec: dict[tuple[date, str, str], str] = {}
    core_s: dict[tuple[date, str, str], float] = defaultdict(float)
    gpu_s: dict[tuple[date, str, str], float] = defaultdict(float)
    accel: dict[tuple[date, str, str], str] = {}
    for r in rows:
        if not r["resource_key"]:
            continue
        key = (r["usage_date"], r["project_id"], r["resource_key"])
        text = r["sku_description"] or ""
        amount = float(r["usage_amount"] or 0)
        if r["machine_spec"]:
            spec.setdefault(key, r["machine_spec"])
            if " core" in text.lower():
                core_s[key] += amount
        m = re.match(r"(nvidia .+?) gpu\b", text.lower())
        if r["gpu_sku"] and m:
            gpu_s[key] += amount
            accel.setdefault(key, m.group(1).replace(" ", "-"))  # "Nvidia Tesla T4" -> nvidia-tesla-t4
    for key, machine in list(spec.items()):
        vcpus = _vcpus(machine)
        if machine.startswith("n1-") and key in accel and vcpus and core_s[key] > 0:
            count = round(gpu_s[key] * vcpus / core_s[key])
            if count >= 1:
                spec[key] = f"{machine}+{count}x{accel[key]}"
    return spec


def _vcpus(machine: str) -> int | None:
    parts = machine.split("-")
    text = parts[2] if len(parts) > 2 and parts[1] == "custom" else parts[-1]
    return int(text) if text.isdigit() else None


def _category(descriptions: set[str]) -> str:
    text = " ".join(descriptions).lower()
    if "preemptible" in text or "spot" in text:
        return "Dynamic"
    if "commitment" in text:
        return "Committed"
    return "Standard"

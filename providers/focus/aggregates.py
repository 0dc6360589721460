"""Staged FOCUS rows summed inside DuckDB into the records of ``providers.model``.

Two steps, so memory is bounded by one file and not by the whole export: ``fold`` sums one file's
good rows into small partial tables (inside that file's transaction), then ``totals``, ``resources``,
``commitments``, ``hourly`` and ``summary`` merge the partials of every file. Every measure is a sum,
a count, a min or a max, or a distinct set (charge periods, commitment ids), so merging is exact.
Money is summed as DECIMAL and arrives as ``Decimal``. The definitions:

- **totals**: per (ProviderName, ServiceName, ChargeCategory, PricingCategory): BilledCost,
  EffectiveCost, ListCost (None where no row had one) and the row count.
- **resources**: Usage rows with a ResourceId, unused-commitment rows left out. Usage hours are the
  ConsumedQuantity of rows measured in hours; a resource with no such row counts the length of its
  distinct charge periods. Committed hours are the same, over rows with a CommitmentDiscountId or
  PricingCategory Committed.
- **commitments**: per CommitmentDiscountId, EffectiveCost of rows with CommitmentDiscountStatus Used
  (cost that covered usage) and Unused (cost paid for nothing).
- **hourly**: instance-hours per (provider, region, instance type, UTC hour) from Usage rows with an
  instance type whose charge period is exactly one hour (consumed hours, else the hour itself); spot
  rows (PricingCategory Dynamic) are left out: the commitment sizing reads this frame.
"""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal
from typing import Any

import pandas as pd

from providers.focus.columns import MONEY
from providers.model import BILLING_HOURLY_COLUMNS, CommitmentUse, CostTotal, ResourceBilling, Window

COMMITTED = "(commitment_id IS NOT NULL OR pricing_category = 'Committed')"
SPAN_HOURS = "(epoch(period_end) - epoch(period_start)) / 3600.0"
NOT_UNUSED = "coalesce(commitment_status, '') <> 'Unused'"

PARTIALS = f"""
CREATE TABLE part_totals (provider VARCHAR, service VARCHAR, charge_category VARCHAR, pricing_category VARCHAR,
                          billed {MONEY}, effective {MONEY}, list {MONEY}, n BIGINT);
CREATE TABLE part_resources (provider VARCHAR, resource_id VARCHAR, region VARCHAR, instance_type VARCHAR,
                             n_hours BIGINT, hours DOUBLE, committed_hours DOUBLE,
                             billed {MONEY}, effective {MONEY}, list {MONEY});
CREATE TABLE part_spans (provider VARCHAR, resource_id VARCHAR, period_start TIMESTAMP, period_end TIMESTAMP,
                         committed BOOLEAN);
CREATE TABLE part_resource_commitments (provider VARCHAR, resource_id VARCHAR, commitment_id VARCHAR);
CREATE TABLE part_commitments (provider VARCHAR, commitment_id VARCHAR, commitment_type VARCHAR,
                               used {MONEY}, unused {MONEY});
CREATE TABLE part_hourly (provider VARCHAR, region VARCHAR, instance_type VARCHAR, ts TIMESTAMP,
                          hours DOUBLE, committed_hours DOUBLE, effective {MONEY});
CREATE TABLE part_window (period_start TIMESTAMP, period_end TIMESTAMP);
CREATE TABLE part_currency (currency VARCHAR);
"""


def fold(con: Any, rows: str) -> None:
    """Sum the good rows of table ``rows`` (one file's) into the partial tables."""
    good = f"(SELECT *, {COMMITTED} AS committed FROM {rows} WHERE bad IS NULL)"
    resource_rows = (f"(SELECT * FROM {good} WHERE charge_category = 'Usage' AND resource_id IS NOT NULL "
                     f"AND {NOT_UNUSED})")
    hourly_rows = (f"(SELECT *, coalesce(hours, 1.0) AS instance_hours FROM {good} "
                   f"WHERE charge_category = 'Usage' AND instance_type IS NOT NULL AND {NOT_UNUSED} "
                   "AND coalesce(pricing_category, '') <> 'Dynamic' "  # spot hours are never committed to
                   "AND period_end - period_start = INTERVAL 1 HOUR AND (consumed_unit IS NULL OR hours IS NOT NULL))")
    for sql in (
        f"""INSERT INTO part_totals SELECT provider, service, charge_category, pricing_category,
                sum(billed), sum(effective), sum(list), count(*) FROM {good} GROUP BY ALL""",
        f"""INSERT INTO part_resources SELECT provider, resource_id, max(region), max(instance_type),
                count(hours), sum(hours), sum(hours) FILTER (WHERE committed), sum(billed), sum(effective), sum(list)
            FROM {resource_rows} GROUP BY provider, resource_id""",
        f"""INSERT INTO part_spans SELECT provider, resource_id, period_start, period_end, bool_or(committed)
            FROM {resource_rows} WHERE hours IS NULL GROUP BY ALL""",
        f"""INSERT INTO part_resource_commitments SELECT DISTINCT provider, resource_id, commitment_id
            FROM {resource_rows} WHERE commitment_id IS NOT NULL""",
        f"""INSERT INTO part_commitments SELECT provider, commitment_id, max(commitment_type),
                sum(effective) FILTER (WHERE commitment_status = 'Used'),
                sum(effective) FILTER (WHERE commitment_status = 'Unused')
            FROM {good} WHERE commitment_id IS NOT NULL GROUP BY provider, commitment_id""",
        f"""INSERT INTO part_hourly SELECT provider, region, instance_type, period_start,
                sum(instance_hours), sum(instance_hours) FILTER (WHERE committed), sum(effective)
            FROM {hourly_rows} GROUP BY ALL""",
        f"INSERT INTO part_window SELECT min(period_start), max(period_end) FROM {good}",
        f"INSERT INTO part_currency SELECT DISTINCT currency FROM {good} WHERE currency IS NOT NULL",
    ):
        con.execute(sql)


def totals(con: Any) -> tuple[CostTotal, ...]:
    rows = con.execute("""
        SELECT provider, service, charge_category, pricing_category, sum(billed), sum(effective), sum(list), sum(n)
        FROM part_totals GROUP BY ALL
        ORDER BY provider NULLS FIRST, service NULLS FIRST, charge_category NULLS FIRST, pricing_category NULLS FIRST
    """).fetchall()
    return tuple(CostTotal(provider=p or "unknown", service=s, charge_category=c or "unknown", pricing_category=pc,
                           billed_cost=_money(b), effective_cost=_money(e), list_cost=lc, rows=int(n))
                 for p, s, c, pc, b, e, lc, n in rows)


def resources(con: Any) -> tuple[ResourceBilling, ...]:
    main = con.execute("""
        SELECT provider, resource_id, max(region), max(instance_type), sum(n_hours), sum(hours),
               sum(committed_hours), sum(billed), sum(effective), sum(list)
        FROM part_resources GROUP BY provider, resource_id ORDER BY provider, resource_id
    """).fetchall()
    spans = {(p, r): (float(total or 0.0), float(committed or 0.0)) for p, r, total, committed in con.execute(f"""
        SELECT provider, resource_id, sum({SPAN_HOURS}), sum({SPAN_HOURS}) FILTER (WHERE committed)
        FROM (SELECT provider, resource_id, period_start, period_end, bool_or(committed) AS committed
              FROM part_spans GROUP BY ALL)
        GROUP BY provider, resource_id
    """).fetchall()}
    ids: dict[tuple[str, str], list[str]] = {}
    for p, r, cid in con.execute("SELECT DISTINCT * FROM part_resource_commitments ORDER BY ALL").fetchall():
        ids.setdefault((p, r), []).append(cid)
    out = []
    for p, r, region, itype, n_hours, hours, committed_hours, billed, effective, listed in main:
        if n_hours:
            usage, committed = float(hours or 0.0), float(committed_hours or 0.0)
        else:
            usage, committed = spans.get((p, r), (0.0, 0.0))
        out.append(ResourceBilling(provider=p or "unknown", resource_id=r, region=region, instance_type=itype,
                                   usage_hours=usage, committed_hours=committed, billed_cost=_money(billed),
                                   effective_cost=_money(effective), list_cost=listed,
                                   commitment_ids=tuple(ids.get((p, r), ()))))
    return tuple(out)


def commitments(con: Any) -> tuple[CommitmentUse, ...]:
    rows = con.execute("""
        SELECT provider, commitment_id, max(commitment_type), sum(used), sum(unused)
        FROM part_commitments GROUP BY provider, commitment_id ORDER BY provider, commitment_id
    """).fetchall()
    return tuple(CommitmentUse(commitment_id=cid, provider=p or "unknown", commitment_type=kind,
                               used_cost=_money(used), unused_cost=_money(unused))
                 for p, cid, kind, used, unused in rows)


def hourly(con: Any) -> pd.DataFrame:
    frame = con.execute("""
        SELECT coalesce(provider, 'unknown') AS provider, region, instance_type, ts, sum(hours) AS hours,
               coalesce(sum(committed_hours), 0.0) AS committed_hours, CAST(sum(effective) AS DOUBLE) AS effective_cost
        FROM part_hourly GROUP BY ALL ORDER BY provider, region NULLS FIRST, instance_type, ts
    """).df()
    if frame.empty:
        return empty_hourly()
    frame["ts"] = pd.DatetimeIndex(pd.to_datetime(frame["ts"])).tz_localize("UTC").as_unit("ns")
    for col in ("provider", "region", "instance_type"):
        frame[col] = frame[col].astype(object)
    return frame[list(BILLING_HOURLY_COLUMNS)]


def empty_hourly() -> pd.DataFrame:
    return pd.DataFrame({
        "provider": pd.Series(dtype=object), "region": pd.Series(dtype=object),
        "instance_type": pd.Series(dtype=object), "ts": pd.Series(dtype="datetime64[ns, UTC]"),
        "hours": pd.Series(dtype=float), "committed_hours": pd.Series(dtype=float),
        "effective_cost": pd.Series(dtype=float),
    })[list(BILLING_HOURLY_COLUMNS)]


def summary(con: Any) -> tuple[Window | None, tuple[str, ...]]:
    """The charge periods' span (min start, max end) and the currencies seen."""
    start, end = con.execute("SELECT min(period_start), max(period_end) FROM part_window").fetchone()
    currencies = tuple(c for (c,) in con.execute("SELECT DISTINCT currency FROM part_currency ORDER BY 1").fetchall())
    window = None
    if start is not None and end is not None and end > start:
        window = Window(start.replace(tzinfo=UTC), end.replace(tzinfo=UTC))
    return window, currencies


def _money(value: Decimal | None) -> Decimal:
    return value if value is not None else Decimal(0)

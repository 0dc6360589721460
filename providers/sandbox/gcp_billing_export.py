"""The Cloud Billing export tables of the ``gcp_bigquery`` emulator: their schemas and the defaults the export fills.

Schemas follow the public "Structure of the Standard / Detailed data export" references
(cloud.google.com/billing/docs/how-to/export-data-bigquery-tables/standard-usage and .../detailed-usage) and
Google's FOCUS export (FOCUS 1.0 columns plus its ``x_`` extensions), as ``{"name", "type", "mode",
"fields"}`` dicts (BigQuery's ``TableFieldSchema``). ``billing_row`` / ``focus_row`` fill the columns a
seeded row leaves out the way the export fills them (end = start + 1 h, currency USD, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta, timezone
from typing import Any

from providers.sandbox.gcp_bigquery_sql import utc_naive


def _f(name: str, typ: str = "STRING", mode: str = "NULLABLE", *fields: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "type": typ, "mode": mode}
    if fields:
        out["fields"] = list(fields)
    return out


def _kv(name: str) -> dict[str, Any]:
    return _f(name, "RECORD", "REPEATED", _f("key"), _f("value"))


#: The standard usage cost export (``gcp_billing_export_v1_<ACCOUNT>``), per the public schema reference.
STANDARD_SCHEMA: tuple[dict[str, Any], ...] = (
    _f("billing_account_id"),
    _f("service", "RECORD", "NULLABLE", _f("id"), _f("description")),
    _f("sku", "RECORD", "NULLABLE", _f("id"), _f("description")),
    _f("usage_start_time", "TIMESTAMP"), _f("usage_end_time", "TIMESTAMP"),
    _f("project", "RECORD", "NULLABLE", _f("id"), _f("number"), _f("name"), _kv("labels"), _f("ancestry_numbers")),
    _kv("labels"), _kv("system_labels"),
    _f("location", "RECORD", "NULLABLE", _f("location"), _f("country"), _f("region"), _f("zone")),
    _f("tags", "RECORD", "REPEATED", _f("key"), _f("value"), _f("inherited", "BOOLEAN"), _f("namespace")),
    _f("transaction_type"), _f("seller_name"),
    _f("export_time", "TIMESTAMP"), _f("cost", "FLOAT"), _f("currency"), _f("currency_conversion_rate", "FLOAT"),
    _f("usage", "RECORD", "NULLABLE", _f("amount", "FLOAT"), _f("unit"), _f("amount_in_pricing_units", "FLOAT"),
       _f("pricing_unit")),
    _f("credits", "RECORD", "REPEATED", _f("name"), _f("amount", "FLOAT"), _f("full_name"), _f("id"), _f("type")),
    _f("invoice", "RECORD", "NULLABLE", _f("month"), _f("publisher_type")),
    _f("cost_type"),
    _f("adjustment_info", "RECORD", "NULLABLE", _f("id"), _f("description"), _f("mode"), _f("type")),
    _f("cost_at_list", "FLOAT"),
)
#: The detailed (resource-level) export (``gcp_billing_export_resource_v1_<ACCOUNT>``): standard + resource, price.
DETAILED_SCHEMA: tuple[dict[str, Any], ...] = STANDARD_SCHEMA + (
    _f("resource", "RECORD", "NULLABLE", _f("name"), _f("global_name")),
    _f("price", "RECORD", "NULLABLE", _f("effective_price", "NUMERIC"), _f("tier_start_amount", "NUMERIC"),
       _f("unit"), _f("pricing_unit_quantity", "NUMERIC")),
)
_FOCUS_STRINGS = ("AvailabilityZone", "BillingAccountId", "BillingAccountName", "BillingCurrency", "ChargeCategory",
                  "ChargeClass", "ChargeDescription", "ChargeFrequency", "CommitmentDiscountCategory",
                  "CommitmentDiscountId", "CommitmentDiscountName", "CommitmentDiscountStatus",
                  "CommitmentDiscountType", "ConsumedUnit", "InvoiceIssuerName", "PricingCategory", "PricingUnit",
                  "ProviderName", "PublisherName", "RegionId", "RegionName", "ResourceId", "ResourceName",
                  "ResourceType", "ServiceCategory", "ServiceName", "SkuId", "SkuPriceId", "SubAccountId",
                  "SubAccountName")
_FOCUS_NUMBERS = ("BilledCost", "ConsumedQuantity", "ContractedCost", "ContractedUnitPrice", "EffectiveCost",
                  "ListCost", "ListUnitPrice", "PricingQuantity")
#: FOCUS 1.0 columns (NUMERIC money, TIMESTAMP periods) plus the ``x_`` extensions Google's FOCUS export adds.
FOCUS_SCHEMA: tuple[dict[str, Any], ...] = tuple(sorted(
    [_f(n) for n in _FOCUS_STRINGS] + [_f(n, "NUMERIC") for n in _FOCUS_NUMBERS]
    + [_f(n, "TIMESTAMP") for n in ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd")],
    key=lambda f: f["name"])) + (
    _f("x_CostType"), _f("x_ServiceId"), _f("x_Location"), _f("x_ExportTime", "TIMESTAMP"),
    _f("x_Credits", "RECORD", "REPEATED", _f("name"), _f("amount", "FLOAT"), _f("full_name"), _f("id"), _f("type")),
    _kv("x_Labels"), _kv("x_SystemLabels"),
)


def billing_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A usage cost export row with the export's defaults: ``usage_end_time`` = start + 1 h, ``invoice.month``
    from the start, ``export_time`` = end, ``currency`` USD (rate 1.0), ``cost_type`` regular, a billing account."""
    r = dict(row)
    start = r.get("usage_start_time")
    if start is not None:
        begin = utc_naive(start).replace(tzinfo=timezone.utc)
        r.setdefault("usage_end_time", begin + timedelta(hours=1))
        r.setdefault("invoice", {"month": begin.strftime("%Y%m")})
    r.setdefault("export_time", r.get("usage_end_time"))
    r.setdefault("currency", "USD")
    r.setdefault("currency_conversion_rate", 1.0)
    r.setdefault("cost_type", "regular")
    r.setdefault("billing_account_id", "012345-6789AB-CDEF01")
    return r


def focus_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A FOCUS export row with its defaults: ``ChargePeriodEnd`` = start + 1 h, ``BillingCurrency`` USD,
    ``ChargeCategory`` Usage, ``ProviderName`` / ``PublisherName`` / ``InvoiceIssuerName`` Google Cloud."""
    r = dict(row)
    start = r.get("ChargePeriodStart")
    if start is not None and r.get("ChargePeriodEnd") is None:
        r["ChargePeriodEnd"] = utc_naive(start).replace(tzinfo=timezone.utc) + timedelta(hours=1)
    r.setdefault("BillingCurrency", "USD")
    r.setdefault("ChargeCategory", "Usage")
    for k in ("ProviderName", "PublisherName", "InvoiceIssuerName"):
        r.setdefault(k, "Google Cloud")
    return r

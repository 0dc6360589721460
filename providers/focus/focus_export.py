"""FOCUS 1.0+ exports: the canonical schema, read almost as is.

What FOCUS leaves to the provider:

- the instance type (FOCUS 1.0 has no column for it): taken from a provider column where one is present
  (``x_InstanceType``, AWS's ``x_UsageType`` such as ``USE1-BoxUsage:g5.4xlarge``, Microsoft's
  ``x_SkuDetails`` JSON ``ServiceType``), else found in ``SkuPriceDetails`` (FOCUS 1.1+) or in the
  ``ChargeDescription`` ("$1.624 per On Demand Linux g5.4xlarge Instance Hour");
- ``ProviderName`` became ``ServiceProviderName`` in FOCUS 1.3: either is read;
- files without ``EffectiveCost`` (not FOCUS 1.0 conformant) use ``BilledCost`` for it.
"""

from __future__ import annotations

from providers.focus.columns import Columns, instance_type_from
from providers.focus.formats import Format
from providers.focus.mapping import Mapping


def _instance_type(c: Columns) -> str:
    candidates = [c.text("x_InstanceType", "x_SkuInstanceType")]
    if c.has("x_SkuDetails"):
        candidates.append(c.json_text("x_SkuDetails", "$.ServiceType"))
        candidates.append(c.json_text("x_SkuDetails", "$.VMSize"))
    for key in ("x_UsageType", "SkuPriceDetails", "ChargeDescription"):
        if c.has(key):
            candidates.append(instance_type_from(c.text(key)))
    return f"COALESCE({', '.join(candidates)})"


def _select(c: Columns) -> dict[str, str]:
    billed = c.money("BilledCost")
    return {
        "ProviderName": c.text("ProviderName", "ServiceProviderName"),
        "BillingAccountId": c.text("BillingAccountId"),
        "SubAccountId": c.text("SubAccountId"),
        "ServiceName": c.text("ServiceName"),
        "ChargeCategory": c.text("ChargeCategory"),
        "PricingCategory": c.text("PricingCategory"),
        "ChargePeriodStart": c.time("ChargePeriodStart"),
        "ChargePeriodEnd": c.time("ChargePeriodEnd"),
        "BilledCost": billed,
        "EffectiveCost": c.money("EffectiveCost") if c.has("EffectiveCost") else billed,
        "ListCost": c.money("ListCost"),
        "ResourceId": c.text("ResourceId"),
        "RegionId": c.text("RegionId"),
        "SkuId": c.text("SkuId"),
        "x_InstanceType": _instance_type(c),
        "ConsumedQuantity": c.number("ConsumedQuantity"),
        "ConsumedUnit": c.text("ConsumedUnit"),
        "CommitmentDiscountId": c.text("CommitmentDiscountId"),
        "CommitmentDiscountType": c.text("CommitmentDiscountType"),
        "CommitmentDiscountCategory": c.text("CommitmentDiscountCategory"),
        "CommitmentDiscountStatus": c.text("CommitmentDiscountStatus"),
        "BillingCurrency": c.text("BillingCurrency"),
    }


FOCUS = Mapping(
    format=Format.FOCUS,
    select=_select,
    money=("billedcost", "effectivecost", "listcost"),
    numbers=("consumedquantity",),
    times=("chargeperiodstart", "chargeperiodend"),
    required=(("billedcost",), ("effectivecost", "billedcost"), ("chargeperiodstart",), ("chargeperiodend",)),
)

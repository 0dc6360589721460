"""AWS Cost and Usage Reports (legacy CUR 1.0 and Data Exports CUR 2.0) mapped onto FOCUS.

One mapping serves both: CUR 1.0 names are read in their CUR 2.0 spelling (``lineItem/UnblendedCost`` ->
``line_item_unblended_cost``, see ``formats.cur1_key``). It follows the FinOps Foundation's FOCUS
converter for CUR (``focus_converters``, ``conversion_configs/aws``), with FOCUS 1.0 values:

- ``BilledCost`` = ``line_item_net_unblended_cost`` when present, else ``line_item_unblended_cost``.
- ``EffectiveCost`` (amortized) by ``line_item_line_item_type``: ``SavingsPlanCoveredUsage`` ->
  ``savings_plan_savings_plan_effective_cost``; ``DiscountedUsage`` -> ``reservation_effective_cost``;
  ``SavingsPlanRecurringFee`` -> ``savings_plan_total_commitment_to_date - savings_plan_used_commitment``
  (the commitment left unused); ``RIFee`` -> ``reservation_unused_amortized_upfront_fee_for_billing_period
  + reservation_unused_recurring_fee``; ``SavingsPlanNegation``, ``SavingsPlanUpfrontFee`` and an RI's
  upfront ``Fee`` -> 0 (their cost reaches EffectiveCost through the covered usage); else the unblended cost.
  A CUR leaves amortization fields empty where they do not apply: empty reads as 0 here.
- ``ChargeCategory``: Tax -> Tax; Fee, RIFee, SavingsPlanUpfrontFee, SavingsPlanRecurringFee -> Purchase;
  Usage, DiscountedUsage, SavingsPlanCoveredUsage, SavingsPlanNegation and the discounts -> Usage;
  Credit -> Credit (FOCUS 1.0); Refund -> Adjustment.
- ``PricingCategory``: RI/SP-covered usage and its negation -> Committed; spot usage -> Dynamic; other
  usage and purchases -> Standard; none for tax, credits and adjustments.
- ``CommitmentDiscountStatus``: covered usage -> Used. ``RIFee`` and ``SavingsPlanRecurringFee`` -> Unused:
  their EffectiveCost above *is* the unused part of the commitment, so per-commitment utilization works
  on a CUR (FOCUS itself puts status only on usage rows).
- ``ConsumedQuantity``: ``line_item_usage_amount`` of usage rows (not of negations or discounts, which
  would count the hours twice); ``ConsumedUnit``: ``pricing_unit`` with ``Hrs`` spelled ``Hours``.
- Instance type: ``product_instance_type`` (CUR 2.0 also in the ``product`` map), else parsed from
  ``line_item_usage_type`` (``USE1-BoxUsage:g5.xlarge``) or the line item description.
"""

from __future__ import annotations

from providers.focus.columns import Columns, instance_type_from
from providers.focus.formats import Format, cur1_key
from providers.focus.mapping import Mapping

PURCHASE_TYPES = ("Fee", "RIFee", "SavingsPlanUpfrontFee", "SavingsPlanRecurringFee")
USAGE_TYPES = ("Usage", "DiscountedUsage", "SavingsPlanCoveredUsage", "SavingsPlanNegation",
               "BundledDiscount", "Discount", "PrivateRateDiscount", "EdpDiscount", "SppDiscount")
COVERED_TYPES = ("DiscountedUsage", "SavingsPlanCoveredUsage")
SAVINGS_PLAN_TYPES = ("SavingsPlanCoveredUsage", "SavingsPlanNegation", "SavingsPlanUpfrontFee",
                      "SavingsPlanRecurringFee")
RESERVATION_TYPES = ("DiscountedUsage", "RIFee")


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _product(c: Columns, column: str, map_key: str) -> str:
    """A product attribute: its own column (CUR 1.0, CUR 2.0 static columns) or a key of the CUR 2.0 map."""
    own = c.text(column)
    if c.has("product"):
        return f"COALESCE({own}, {c.json_text('product', '$.' + map_key)})"
    return own


def _select(c: Columns) -> dict[str, str]:
    kind = c.text("line_item_line_item_type")
    unblended = c.money("line_item_unblended_cost")
    billed = f"COALESCE({c.money('line_item_net_unblended_cost')}, {unblended})"

    def zero(key: str) -> str:
        return f"COALESCE({c.money(key)}, 0)"

    reservation_arn = c.text("reservation_reservation_a_r_n")
    savings_plan_arn = c.text("savings_plan_savings_plan_a_r_n")
    category = (f"CASE WHEN {kind} = 'Tax' THEN 'Tax' WHEN {kind} IN {_in(PURCHASE_TYPES)} THEN 'Purchase' "
                f"WHEN {kind} IN {_in(USAGE_TYPES)} THEN 'Usage' WHEN {kind} = 'Credit' THEN 'Credit' "
                f"WHEN {kind} = 'Refund' THEN 'Adjustment' ELSE {kind} END")
    usage_type = c.text("line_item_usage_type")
    spot = f"(coalesce({usage_type}, '') LIKE '%SpotUsage%' OR {c.text('pricing_term')} = 'Spot')"
    commitment_id = (f"CASE WHEN {kind} IN {_in(SAVINGS_PLAN_TYPES)} THEN {savings_plan_arn} "
                     f"WHEN {kind} IN {_in(RESERVATION_TYPES)} THEN {reservation_arn} "
                     f"ELSE COALESCE({reservation_arn}, {savings_plan_arn}) END")
    unit = c.text("pricing_unit")
    return {
        "ProviderName": "'AWS'",
        "BillingAccountId": c.text("bill_payer_account_id"),
        "SubAccountId": c.text("line_item_usage_account_id"),
        "ServiceName": f"COALESCE({_product(c, 'product_product_name', 'product_name')}, "
                       f"{c.text('product_servicecode', 'line_item_product_code')})",
        "ChargeCategory": category,
        "PricingCategory": (f"CASE WHEN {kind} IN {_in(COVERED_TYPES + ('SavingsPlanNegation',))} THEN 'Committed' "
                            f"WHEN {kind} IN {_in(USAGE_TYPES)} AND {spot} THEN 'Dynamic' "
                            f"WHEN {kind} IN {_in(USAGE_TYPES + PURCHASE_TYPES)} THEN 'Standard' END"),
        "ChargePeriodStart": c.time("line_item_usage_start_date"),
        "ChargePeriodEnd": c.time("line_item_usage_end_date"),
        "BilledCost": billed,
        "EffectiveCost": (
            f"CASE WHEN {kind} = 'SavingsPlanCoveredUsage' THEN {zero('savings_plan_savings_plan_effective_cost')} "
            f"WHEN {kind} = 'DiscountedUsage' THEN {zero('reservation_effective_cost')} "
            f"WHEN {kind} = 'SavingsPlanRecurringFee' THEN "
            f"{zero('savings_plan_total_commitment_to_date')} - {zero('savings_plan_used_commitment')} "
            f"WHEN {kind} = 'RIFee' THEN {zero('reservation_unused_amortized_upfront_fee_for_billing_period')} "
            f"+ {zero('reservation_unused_recurring_fee')} "
            f"WHEN {kind} IN ('SavingsPlanNegation', 'SavingsPlanUpfrontFee') THEN 0 "
            f"WHEN {kind} = 'Fee' AND {reservation_arn} IS NOT NULL THEN 0 "
            f"ELSE {unblended} END"),
        "ListCost": c.money("pricing_public_on_demand_cost"),
        "ResourceId": c.text("line_item_resource_id"),
        "RegionId": c.text("product_region_code", "product_region"),
        "SkuId": c.text("product_sku"),
        "x_InstanceType": (f"COALESCE({_product(c, 'product_instance_type', 'instance_type')}, "
                           f"{instance_type_from(usage_type)}, "
                           f"{instance_type_from(c.text('line_item_line_item_description'))})"),
        "ConsumedQuantity": (f"CASE WHEN {kind} IN ('Usage', 'DiscountedUsage', 'SavingsPlanCoveredUsage') "
                             f"THEN {c.number('line_item_usage_amount')} END"),
        "ConsumedUnit": f"CASE WHEN {unit} IN ('Hrs', 'Hr', 'hrs') THEN 'Hours' ELSE {unit} END",
        "CommitmentDiscountId": commitment_id,
        "CommitmentDiscountType": (f"CASE WHEN {commitment_id} IS NULL THEN NULL "
                                   f"WHEN {kind} IN {_in(SAVINGS_PLAN_TYPES)} OR {reservation_arn} IS NULL "
                                   f"THEN 'Savings Plan' ELSE 'Reserved Instance' END"),
        "CommitmentDiscountCategory": (f"CASE WHEN {commitment_id} IS NULL THEN NULL "
                                       f"WHEN {kind} IN {_in(SAVINGS_PLAN_TYPES)} OR {reservation_arn} IS NULL "
                                       f"THEN 'Spend' ELSE 'Usage' END"),
        "CommitmentDiscountStatus": (f"CASE WHEN {kind} IN {_in(COVERED_TYPES)} THEN 'Used' "
                                     f"WHEN {kind} IN ('RIFee', 'SavingsPlanRecurringFee') THEN 'Unused' END"),
        "BillingCurrency": c.text("line_item_currency_code", "pricing_currency"),
    }


_MONEY = ("line_item_unblended_cost", "line_item_net_unblended_cost", "reservation_effective_cost",
          "savings_plan_savings_plan_effective_cost", "savings_plan_total_commitment_to_date",
          "savings_plan_used_commitment", "reservation_unused_amortized_upfront_fee_for_billing_period",
          "reservation_unused_recurring_fee", "pricing_public_on_demand_cost")
_TIMES = ("line_item_usage_start_date", "line_item_usage_end_date")
_REQUIRED = (("line_item_unblended_cost",), ("line_item_usage_start_date",), ("line_item_usage_end_date",))

CUR1 = Mapping(format=Format.AWS_CUR1, select=_select, money=_MONEY, numbers=("line_item_usage_amount",),
               times=_TIMES, required=_REQUIRED, key=cur1_key)
CUR2 = Mapping(format=Format.AWS_CUR2, select=_select, money=_MONEY, numbers=("line_item_usage_amount",),
               times=_TIMES, required=_REQUIRED)

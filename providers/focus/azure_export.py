"""Azure Cost Management cost details (EA and MCA; actual or amortized) mapped onto FOCUS.

The two datasets share one header, so the mapping is decided per row and is right for both:

- ``ChargeCategory``: ChargeType Usage, UnusedReservation, UnusedSavingsPlan -> Usage; Purchase and
  Refund -> Purchase; Tax -> Tax; RoundingAdjustment -> Adjustment; any other value is kept.
- ``PricingCategory``: PricingModel OnDemand -> Standard, Spot -> Dynamic, Reservation / SavingsPlan
  -> Committed on usage rows (a commitment's purchase is Standard, as in the FOCUS examples).
- ``CommitmentDiscountStatus``: UnusedReservation / UnusedSavingsPlan -> Unused; other usage under a
  Reservation or SavingsPlan pricing model -> Used. ``CommitmentDiscountId`` is ``benefitId`` (else
  ``ReservationId``), its type Reservation or Savings Plan (category Usage or Spend).
- ``EffectiveCost`` = the row's cost, except a commitment's Purchase/Refund rows: 0, because FOCUS
  carries a commitment's cost in the usage it covers (amortized export) and not in its purchase.
  ``BilledCost`` = the row's cost, except committed usage and unused-commitment rows: 0, because their
  cost is billed by the purchase. An *actual* export therefore keeps every invoiced amount in
  BilledCost (its committed usage costs 0 anyway); an *amortized* export keeps the amortized amounts
  in EffectiveCost. Read one of the two datasets for a month, not both: rows would count twice.
- ``ChargePeriodStart`` = ``Date`` (00:00 UTC), ``ChargePeriodEnd`` = one day later.
- Cost: ``CostInBillingCurrency`` (EA new schema, MCA), else ``Cost`` (EA), else ``PreTaxCost``;
  ``ListCost`` = ``paygCostInBillingCurrency`` (MCA), else ``PayGPrice`` x ``Quantity``;
  ``ServiceName`` = ``MeterCategory``;
  ``RegionId`` = ``ResourceLocation`` lower-cased without spaces; ``SkuId`` = ``MeterId``;
  ``ConsumedQuantity`` = ``Quantity`` (``UnitOfMeasure`` "1 Hour" is Hours).
- Instance type: the VM size in ``AdditionalInfo`` (``{"ServiceType": "Standard_NC24ads_A100_v4"}``).
Column names are matched case-insensitively (MCA writes ``costInBillingCurrency``, ``chargeType``, ...).
"""

from __future__ import annotations

from providers.focus.columns import Columns
from providers.focus.formats import Format
from providers.focus.mapping import Mapping, hours_unit

COST = ("costinbillingcurrency", "cost", "pretaxcost")


def _select(c: Columns) -> dict[str, str]:
    charge = f"COALESCE({c.text('ChargeType')}, 'Usage')"
    model = c.text("PricingModel")
    committed_model = f"coalesce({model}, '') IN ('Reservation', 'SavingsPlan', 'Savings Plan')"
    usage = f"{charge} IN ('Usage', 'UnusedReservation', 'UnusedSavingsPlan')"
    purchase = f"{charge} IN ('Purchase', 'Refund')"
    cost = c.money(*COST)
    benefit = c.text("benefitId", "ReservationId")
    commitment_id = f"CASE WHEN {committed_model} OR {charge} LIKE 'Unused%' THEN {benefit} END"
    is_plan = (f"({model} IN ('SavingsPlan', 'Savings Plan') OR {charge} = 'UnusedSavingsPlan' "
               f"OR coalesce({benefit}, '') ILIKE '%Microsoft.BillingBenefits%')")
    start = c.time("Date", "UsageDate")
    unit = c.text("UnitOfMeasure")
    price = c.money("PayGPrice")
    quantity = c.money("Quantity")
    vm_size = c.json_text("AdditionalInfo", "$.ServiceType")
    return {
        "ProviderName": "'Microsoft'",
        "BillingAccountId": c.text("BillingAccountId"),
        "SubAccountId": c.text("SubscriptionId", "SubscriptionGuid"),
        "ServiceName": c.text("MeterCategory", "ConsumedService"),
        "ChargeCategory": (f"CASE WHEN {usage} THEN 'Usage' WHEN {purchase} THEN 'Purchase' "
                           f"WHEN {charge} = 'Tax' THEN 'Tax' WHEN {charge} = 'RoundingAdjustment' THEN 'Adjustment' "
                           f"ELSE {charge} END"),
        "PricingCategory": (f"CASE WHEN {usage} AND ({committed_model} OR {charge} LIKE 'Unused%') THEN 'Committed' "
                            f"WHEN {usage} AND {model} = 'Spot' THEN 'Dynamic' "
                            f"WHEN {usage} OR {purchase} THEN 'Standard' END"),
        "ChargePeriodStart": start,
        "ChargePeriodEnd": f"{start} + INTERVAL 1 DAY",
        "BilledCost": f"CASE WHEN {usage} AND ({committed_model} OR {charge} LIKE 'Unused%') THEN 0 ELSE {cost} END",
        "EffectiveCost": f"CASE WHEN {purchase} AND {committed_model} THEN 0 ELSE {cost} END",
        "ListCost": (f"COALESCE({c.money('paygCostInBillingCurrency')}, TRY_CAST(CAST({price} AS DECIMAL(19,10)) "
                     f"* CAST({quantity} AS DECIMAL(19,8)) AS DECIMAL(38,18)))"),
        "ResourceId": c.text("ResourceId", "InstanceId"),
        "RegionId": f"lower(replace({c.text('ResourceLocation')}, ' ', ''))",
        "SkuId": c.text("MeterId"),
        "x_InstanceType": f"CASE WHEN regexp_matches(coalesce({vm_size}, ''), '^(Standard|Basic)_') THEN {vm_size} END",
        "ConsumedQuantity": f"CASE WHEN {usage} THEN CAST({quantity} AS DOUBLE) END",
        "ConsumedUnit": f"CASE WHEN {hours_unit(unit)} THEN 'Hours' ELSE {unit} END",
        "CommitmentDiscountId": commitment_id,
        "CommitmentDiscountType": (f"CASE WHEN {commitment_id} IS NULL THEN NULL WHEN {is_plan} THEN 'Savings Plan' "
                                   f"ELSE 'Reservation' END"),
        "CommitmentDiscountCategory": (f"CASE WHEN {commitment_id} IS NULL THEN NULL WHEN {is_plan} THEN 'Spend' "
                                       f"ELSE 'Usage' END"),
        "CommitmentDiscountStatus": (f"CASE WHEN {charge} LIKE 'Unused%' THEN 'Unused' "
                                     f"WHEN {usage} AND {committed_model} THEN 'Used' END"),
        "BillingCurrency": c.text("BillingCurrency", "BillingCurrencyCode"),
    }


AZURE = Mapping(
    format=Format.AZURE,
    select=_select,
    money=COST + ("paygcostinbillingcurrency", "paygprice", "quantity"),
    times=(),
    dates=("date", "usagedate"),
    required=(COST, ("date", "usagedate")),
)

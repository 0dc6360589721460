"""The demo cloud's billing export: hourly FOCUS 1.0 rows for the simulated fleet, put in the local S3.

Rows follow what AWS's own FOCUS export writes for EC2 (``ChargeDescription`` such as
"$1.624 per On Demand Linux g5.4xlarge Instance Hour", ``ResourceId`` the instance id,
``PricingCategory`` Standard / Dynamic (spot) / Committed). One instance can be declared covered
by a reserved instance: its usage rows are billed 0 with an amortized ``EffectiveCost``, and the
reservation's recurring fee is a Purchase row — so the demo shows a stop that strands a commitment.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from providers.catalog import PriceCatalog
from providers.model import Cloud, Instrument, PricingModel
from providers.sandbox.fleet import SIM_PERIOD, SimInstance, grid, simulate

ACCOUNT = "123456789012"  # moto's account
SERVICE = "Amazon Elastic Compute Cloud"
BUCKET = "costagent-demo-billing"
KEY = "focus/costagent-demo-focus-1.0.csv.gz"
#: What a 1-year no-upfront RI costs relative to on-demand when the catalog has no rate (stated in the row).
FALLBACK_RI_RATIO = Decimal("0.62")


@dataclass(frozen=True)
class Reservation:
    """A reserved instance covering one simulated instance's hours."""

    instance: str  # SimInstance.name
    commitment_id: str


def _prices(catalog: PriceCatalog, region: str, itype: str) -> dict[str, Decimal]:
    return {q.pricing_model.value: q.hourly_usd for q in catalog.quotes(Cloud.AWS, region, itype)}


def _ri_rate(catalog: PriceCatalog, region: str, itype: str, on_demand: Decimal) -> Decimal:
    rates = [c.hourly_usd for c in catalog.commitment_rates(Cloud.AWS, region, itype)
             if c.instrument == Instrument.AWS_RI and c.term_years == 1]
    return rates[0] if rates else (on_demand * FALLBACK_RI_RATIO).quantize(Decimal("0.0001"))


def focus_rows(fleet: Sequence[SimInstance], ids: Mapping[str, str], end: pd.Timestamp, lookback: timedelta,
               group_members: Sequence[tuple[str, str, str]] = (),
               reservations: Sequence[Reservation] = ()) -> pd.DataFrame:
    """Hourly FOCUS rows. ``group_members``: (instance id, type, region) of members running the whole window."""
    catalog = PriceCatalog.shipped(Cloud.AWS)
    times = grid(end, lookback, SIM_PERIOD)
    hours = times.floor("h")
    reserved = {r.instance: r for r in reservations}
    parts = []
    for inst in fleet:
        if inst.name not in ids:
            continue
        present = pd.Series(simulate(inst, times).present.astype(float), index=times)
        used = present.groupby(hours).mean()  # fraction of each hour the instance ran
        parts.append(_usage(catalog, ids[inst.name], inst.instance_type, inst.region, used, inst.spot,
                            reserved.get(inst.name)))
    for instance_id, itype, region in group_members:
        used = pd.Series(1.0, index=pd.DatetimeIndex(sorted(set(hours))))
        parts.append(_usage(catalog, instance_id, itype, region, used, False, None))
    for res in reservations:
        inst = next(i for i in fleet if i.name == res.instance)
        parts.append(_fee(catalog, inst, res, pd.DatetimeIndex(sorted(set(hours)))))
    frame = pd.concat([p for p in parts if len(p)], ignore_index=True)
    return frame.sort_values(["ChargePeriodStart", "ResourceId"], kind="stable").reset_index(drop=True)


def _usage(catalog: PriceCatalog, instance_id: str, itype: str, region: str, used: pd.Series, spot: bool,
           reservation: Reservation | None) -> pd.DataFrame:
    used = used[used > 0]
    prices = _prices(catalog, region, itype)
    on_demand = prices.get(PricingModel.ON_DEMAND.value)
    if on_demand is None or used.empty:
        return pd.DataFrame()
    qty = np.round(used.to_numpy(), 6)
    if reservation is not None:
        rate = _ri_rate(catalog, region, itype, on_demand)
        billed_rate, effective_rate, category = Decimal(0), rate, "Committed"
        description = f"USD 0.0 hourly fee per Linux/UNIX (Amazon VPC), {itype} reserved instance applied"
    elif spot and PricingModel.SPOT.value in prices:
        rate = prices[PricingModel.SPOT.value]
        billed_rate, effective_rate, category = rate, rate, "Dynamic"
        description = f"${rate} per Linux/UNIX {itype} Spot Instance-hour"
    else:
        billed_rate, effective_rate, category = on_demand, on_demand, "Standard"
        description = f"${on_demand} per On Demand Linux {itype} Instance Hour"
    n = len(qty)
    return pd.DataFrame({
        "ProviderName": "AWS",
        "BillingAccountId": ACCOUNT,
        "SubAccountId": ACCOUNT,
        "BillingCurrency": "USD",
        "ServiceName": SERVICE,
        "ServiceCategory": "Compute",
        "ChargeCategory": "Usage",
        "ChargeFrequency": "Usage-Based",
        "ChargeDescription": description,
        "ChargePeriodStart": used.index.strftime("%Y-%m-%d %H:%M:%S"),
        "ChargePeriodEnd": (used.index + pd.Timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S"),
        "ConsumedQuantity": qty,
        "ConsumedUnit": "Hours",
        "PricingQuantity": qty,
        "PricingUnit": "Hours",
        "PricingCategory": category,
        "BilledCost": np.round(qty * float(billed_rate), 10),
        "EffectiveCost": np.round(qty * float(effective_rate), 10),
        "ListCost": np.round(qty * float(on_demand), 10),
        "ListUnitPrice": float(on_demand),
        "RegionId": region,
        "ResourceId": instance_id,
        "ResourceType": "instance",
        "CommitmentDiscountId": reservation.commitment_id if reservation else None,
        "CommitmentDiscountCategory": "Usage" if reservation else None,
        "CommitmentDiscountType": "Reserved Instance" if reservation else None,
        "CommitmentDiscountStatus": "Used" if reservation else None,
    }, index=range(n))


def _fee(catalog: PriceCatalog, inst: SimInstance, res: Reservation, hours: pd.DatetimeIndex) -> pd.DataFrame:
    """The reservation's recurring fee, one Purchase row a day (what the export's hourly rows add up to)."""
    on_demand = _prices(catalog, inst.region, inst.instance_type)[PricingModel.ON_DEMAND.value]
    rate = _ri_rate(catalog, inst.region, inst.instance_type, on_demand)
    days = pd.DatetimeIndex(sorted(set(hours.floor("D"))))
    per_day = pd.Series(hours.floor("D")).value_counts().reindex(days).to_numpy()
    return pd.DataFrame({
        "ProviderName": "AWS",
        "BillingAccountId": ACCOUNT,
        "SubAccountId": ACCOUNT,
        "BillingCurrency": "USD",
        "ServiceName": SERVICE,
        "ServiceCategory": "Compute",
        "ChargeCategory": "Purchase",
        "ChargeFrequency": "Recurring",
        "ChargeDescription": f"Reserved instance fee, {inst.instance_type} Linux, 1 year no upfront",
        "ChargePeriodStart": days.strftime("%Y-%m-%d %H:%M:%S"),
        "ChargePeriodEnd": (days + pd.Timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S"),
        "ConsumedQuantity": None,
        "ConsumedUnit": None,
        "PricingQuantity": per_day.astype(float),
        "PricingUnit": "Hours",
        "PricingCategory": "Committed",
        "BilledCost": np.round(per_day * float(rate), 10),
        "EffectiveCost": 0.0,
        "ListCost": 0.0,
        "ListUnitPrice": None,
        "RegionId": inst.region,
        "ResourceId": res.commitment_id,
        "ResourceType": "reserved-instance",
        "CommitmentDiscountId": res.commitment_id,
        "CommitmentDiscountCategory": "Usage",
        "CommitmentDiscountType": "Reserved Instance",
        "CommitmentDiscountStatus": None,
    })


def csv_gz(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
        gz.write(frame.to_csv(index=False).encode())
    return buffer.getvalue()


def upload(session: Any, endpoint_url: str, frame: pd.DataFrame, region: str = "us-east-1") -> str:
    """Put the export in the local S3 and return its ``s3://`` prefix."""
    s3 = session.client("s3", region_name=region, endpoint_url=endpoint_url)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=csv_gz(frame))
    return f"s3://{BUCKET}/{KEY.rsplit('/', 1)[0]}/"

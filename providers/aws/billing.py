"""Cost Explorer: what EC2 compute cost in the window, by instance type and region.

One ``GetCostAndUsage`` query a run (Cost Explorer bills per request), daily, filtered to the
EC2 compute service and grouped by instance type and region so the report can sum GPU spend.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from decimal import Decimal

from providers.aws.client import AwsClients, translated
from providers.model import Cloud, CostRecord, Window

CE_REGION = "us-east-1"
EC2_COMPUTE = "Amazon Elastic Compute Cloud - Compute"
METRIC = "UnblendedCost"


def ec2_costs(clients: AwsClients, account: str, window: Window) -> list[CostRecord]:
    client = clients.client("ce", CE_REGION)
    start = window.start.date()
    end = window.end.date() + (timedelta(days=1) if window.end.time() != time(0) else timedelta(0))
    params = {
        "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
        "Granularity": "DAILY",
        "Metrics": [METRIC],
        "Filter": {"Dimensions": {"Key": "SERVICE", "Values": [EC2_COMPUTE]}},
        "GroupBy": [{"Type": "DIMENSION", "Key": "INSTANCE_TYPE"}, {"Type": "DIMENSION", "Key": "REGION"}],
    }
    records: list[CostRecord] = []
    token: str | None = None
    while True:
        with translated("ce", "GetCostAndUsage", CE_REGION):
            page = client.get_cost_and_usage(**params, **({"NextPageToken": token} if token else {}))
        for period in page.get("ResultsByTime", []):
            p_start = _day(period["TimePeriod"]["Start"])
            p_end = _day(period["TimePeriod"]["End"])
            for group in period.get("Groups", []):
                itype, region = (list(group.get("Keys", [])) + ["", ""])[:2]
                amount = group.get("Metrics", {}).get(METRIC, {})
                records.append(
                    CostRecord(
                        cloud=Cloud.AWS,
                        account=account,
                        region=region or None,
                        service=EC2_COMPUTE,
                        sku=itype or None,
                        charge_period_start=p_start,
                        charge_period_end=p_end,
                        billed_cost=Decimal(str(amount.get("Amount", "0"))),
                        currency=str(amount.get("Unit", "USD")),
                    )
                )
        token = page.get("NextPageToken")
        if not token:
            return records


def _day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)

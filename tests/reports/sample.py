"""Hand-built reports for the renderer tests: fixed values, UTC times, hostile names."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from providers.model import Action, Cloud, Gap, ResourceRef, Window
from recommenders.kpis import FleetKpis, TeamKpi
from recommenders.model import Kind, Recommendation, Risk
from reports.model import AuditReport, Summary

GENERATED_AT = datetime(2025, 3, 8, 6, 30, 15, tzinfo=timezone.utc)
WINDOW = Window(datetime(2025, 3, 1, tzinfo=timezone.utc), datetime(2025, 3, 8, tzinfo=timezone.utc))

#: A name that would be markup in rich, break a Markdown table, and inject HTML if not escaped.
HOSTILE_NAME = "train-[bold]x[/bold] | <script>alert(1)</script>"

STOP_REF = ResourceRef(Cloud.AWS, "123456789012", "us-east-1", "i-0abc1234def567890")
SCHEDULE_REF = ResourceRef(Cloud.GCP, "ml-research", "us-central1", "4821937461029384756")


def stop_recommendation() -> Recommendation:
    return Recommendation(
        recommender="idle-gpu",
        kind=Kind.STOP,
        ref=STOP_REF,
        instance_type="p4d.24xlarge",
        monthly_savings_usd=Decimal("23592.256"),
        confidence=0.93,
        risk=Risk.MEDIUM,
        summary="All 8 GPUs idle for 6.5 of 7 days; stop the instance.",
        evidence={
            "idle_hours": 156.0,
            "hourly_usd": Decimal("32.7726"),
            "last_busy_at": datetime(2025, 3, 1, 14, 5, tzinfo=timezone.utc),
        },
        action=Action(kind="stop", ref=STOP_REF, params={"hibernate": False}),
        name=HOSTILE_NAME,
    )


def schedule_recommendation() -> Recommendation:
    return Recommendation(
        recommender="office-hours",
        kind=Kind.SCHEDULE,
        ref=SCHEDULE_REF,
        instance_type="a2-highgpu-1g",
        monthly_savings_usd=Decimal("1234.5"),
        confidence=0.715,
        risk=Risk.LOW,
        summary="Busy only 09:00-18:00 on weekdays; stop nights and weekends.",
        evidence={
            "busy_hours_utc": [9, 10, 11, 12, 13, 14, 15, 16, 17],
            "util_by_weekday": {"mon": 0.81, "tue": 0.77, "sat": 0.0, "sun": 0.0},
            "samples": {"expected": 2016, "received": 1998},
        },
        name="notebook :rocket: *dev*_box `x`",
    )


GROUP_REF = ResourceRef(Cloud.AWS, "123456789012", "eu-west-1", "llm-chat-asg")


def rightsize_recommendation() -> Recommendation:
    ref = ResourceRef(Cloud.AWS, "123456789012", "us-east-1", "i-0aaaa1111bbbb2222")
    return Recommendation(
        recommender="rightsize", kind=Kind.RIGHTSIZE, ref=ref, instance_type="g5.12xlarge",
        monthly_savings_usd=Decimal("3256.7"), confidence=0.8, risk=Risk.LOW,
        summary="Right-size g5.12xlarge -> g5.2xlarge: 1 of 4 GPUs used",
        evidence={"gpus_needed": 1, "candidates": [{"instance_type": "g5.2xlarge", "hourly_usd": 1.212}]},
        action=Action(kind="rightsize", ref=ref, params={"from_type": "g5.12xlarge", "to_type": "g5.2xlarge"}),
        name="multi-gpu-dev",
    )


def autoscale_recommendation() -> Recommendation:
    return Recommendation(
        recommender="autoscale", kind=Kind.AUTOSCALE, ref=GROUP_REF, instance_type="g5.xlarge",
        monthly_savings_usd=Decimal("1844.69"), confidence=0.7, risk=Risk.MEDIUM,
        summary="Autoscale: scale to 0 outside 08-20 UTC on weekdays",
        evidence={"peak_need": 3},
        action=Action(kind="autoscale", ref=GROUP_REF, params={
            "min_size": 0, "max_size": 4, "desired_capacity": 4,
            "scheduled_actions": [{"name": "costagent-up", "recurrence": "45 7 * * 1-5", "min_size": 0, "max_size": 4,
                                   "desired_capacity": 4, "time_zone": "UTC"}]}),
        name="llm-chat-asg",
    )


def commitment_recommendation() -> Recommendation:
    ref = ResourceRef(Cloud.AWS, "123456789012", "us-east-1", "commitment:p4d")
    return Recommendation(
        recommender="commitment", kind=Kind.COMMITMENT, ref=ref, instance_type="p4d.24xlarge",
        monthly_savings_usd=Decimal("5925.12"), confidence=0.78, risk=Risk.LOW,
        summary="Buy 2 x p4d.24xlarge 1-year standard Reserved Instances for p4d in us-east-1",
        evidence={"level_instances": 2.0, "rate_ratio": 0.634}, action=None,
    )


def sample_billing() -> dict[str, object]:
    return {
        "sources": ["s3://billing/focus/2026-11.parquet"], "rows": 1000, "bad_rows": 2,
        "bad_examples": [{"file": "s3://billing/focus/2026-11.parquet", "line": 17, "reason": "BilledCost: not a number"}],
        "currency": "USD", "window": {"start": "2026-11-01T00:00:00Z", "end": "2026-11-08T00:00:00Z"},
        "billed_cost_usd": 20.52, "effective_cost_usd": 19.75,
        "commitments": {"usage_hours": 100.0, "committed_hours": 25.0, "coverage": 0.25, "commitment_used_usd": 4.5,
                        "commitment_unused_usd": 0.5, "utilization": 0.9, "list_cost_usd": 24.0,
                        "effective_cost_usd": 19.75, "effective_savings_rate": 0.1771,
                        "commitments": [{"commitment_id": "ri-1", "provider": "AWS", "type": "Reserved Instance",
                                         "used_usd": 4.5, "unused_usd": 0.5, "utilization": 0.9}]},
    }


def sample_kpis() -> FleetKpis:
    research = TeamKpi(HOSTILE_NAME, 2, 5, 840.0, 310.5, Decimal("2100.50"), Decimal("6.7649"), Decimal("900.25"),
                       210.4, 79.75)
    untagged = TeamKpi("(untagged)", 2, 2, 336.0, 12.0, Decimal("400.00"), Decimal("33.3333"), Decimal("380.00"),
                       20.1, 7.62, unpriced_instances=1)
    total = TeamKpi("(all)", 4, 7, 1176.0, 322.5, Decimal("2500.50"), Decimal("7.7535"), Decimal("1280.25"), 230.5,
                    87.37, unpriced_instances=1)
    return FleetKpis("team", (research, untagged), total, 1, 3, {"pue": {"aws": 1.135}}, energy_unknown_instances=0)


def full_report() -> AuditReport:
    # out of order: the report ranks them
    recs = (schedule_recommendation(), stop_recommendation(), rightsize_recommendation(), autoscale_recommendation(),
            commitment_recommendation())
    return AuditReport(
        generated_at=GENERATED_AT,
        window=WINDOW,
        period_seconds=300,
        clouds=("aws", "gcp", "azure"),
        regions=("us-east-1", "us-central1", "westeurope"),
        summary=Summary(
            instances=14,
            gpu_instances=6,
            gpu_instances_running=5,
            analyzed=4,
            idle_gpu_hours=201.456,
            idle_usd=Decimal("6543.21"),
            monthly_savings_usd=sum((r.monthly_savings_usd for r in recs), Decimal(0)),
            gpu_spend_usd=Decimal("12345.67"),
            savings_by_kind={r.kind.value: r.monthly_savings_usd for r in recs},
            kpis=sample_kpis(),
            billing=sample_billing(),
        ),
        recommendations=recs,
        gaps=(
            Gap(
                cloud=Cloud.AWS,
                what="gpu-telemetry",
                reason="No nvidia_smi metrics in CloudWatch for this instance.",
                region="us-east-1",
                resource_id="i-0fedcba9876543210",
                account="123456789012",
                hint="Install the CloudWatch agent with the nvidia_gpu section.",
            ),
            Gap(
                cloud=Cloud.AZURE,
                what="costs",
                reason="AuthorizationFailed: missing Microsoft.CostManagement/query/read\non the subscription",
                region=None,
                resource_id=None,
                account="0f1e2d3c-aaaa-bbbb-cccc-000000000000",
                hint=None,
            ),
        ),
        api_calls={"ec2:DescribeInstances": 3, "cloudwatch:GetMetricData": 12, "compute.instances.aggregatedList": 1},
        demo=False,
    )


def empty_report() -> AuditReport:
    return AuditReport(
        generated_at=GENERATED_AT,
        window=WINDOW,
        period_seconds=300,
        clouds=("aws",),
        regions=("us-east-1",),
        summary=Summary(
            instances=0,
            gpu_instances=0,
            gpu_instances_running=0,
            analyzed=0,
            idle_gpu_hours=0.0,
            idle_usd=Decimal(0),
            monthly_savings_usd=Decimal(0),
            gpu_spend_usd=None,
        ),
        recommendations=(),
        gaps=(),
        demo=True,
    )

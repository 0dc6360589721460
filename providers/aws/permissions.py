"""The IAM actions behind each call the AWS provider makes, by the name ``AwsClients`` counts it under
(``"<service>.<Operation>"``, botocore's service and operation names).

``READ`` covers an audit; ``WRITE`` the actuator's mutations (the guarded apply), including the
``DescribeInstances`` its waiters and state check poll. EC2 checks a ``DryRun`` request against the
same action as the real one. The read-only policy in ``infra/aws/audit-readonly-policy.json`` is
generated from ``READ`` (a test keeps them equal): one statement for the audit's APIs, which take no
resource-level scoping for these reads (``"Resource": "*"``), and one for the S3 billing exports read
with ``--billing s3://...``, scoped to a placeholder bucket the user replaces with their export bucket.
``sts:GetCallerIdentity`` needs no permission in IAM but is listed so the policy names every call.
"""

from __future__ import annotations

import json

READ: dict[str, tuple[str, ...]] = {
    "sts.GetCallerIdentity": ("sts:GetCallerIdentity",),
    "ec2.DescribeInstances": ("ec2:DescribeInstances",),
    "ec2.DescribeInstanceTypes": ("ec2:DescribeInstanceTypes",),
    "ec2.DescribeInstanceTypeOfferings": ("ec2:DescribeInstanceTypeOfferings",),
    "ec2.DescribeSpotPriceHistory": ("ec2:DescribeSpotPriceHistory",),
    "ec2.DescribeReservedInstancesOfferings": ("ec2:DescribeReservedInstancesOfferings",),
    "autoscaling.DescribeAutoScalingGroups": ("autoscaling:DescribeAutoScalingGroups",),
    "autoscaling.DescribeScheduledActions": ("autoscaling:DescribeScheduledActions",),
    "cloudwatch.ListMetrics": ("cloudwatch:ListMetrics",),
    "cloudwatch.GetMetricData": ("cloudwatch:GetMetricData",),
    "ce.GetCostAndUsage": ("ce:GetCostAndUsage",),
    "pricing.GetProducts": ("pricing:GetProducts",),
    "savingsplans.DescribeSavingsPlansOfferingRates": ("savingsplans:DescribeSavingsPlansOfferingRates",),
    "s3.ListObjectsV2": ("s3:ListBucket",),
    "s3.GetObject": ("s3:GetObject",),
}

WRITE: dict[str, tuple[str, ...]] = {
    "ec2.StopInstances": ("ec2:StopInstances",),
    "ec2.StartInstances": ("ec2:StartInstances",),
    "ec2.ModifyInstanceAttribute": ("ec2:ModifyInstanceAttribute",),
    "ec2.DescribeInstances": ("ec2:DescribeInstances",),  # the waiters and the state check before a type change
    "ec2.CreateTags": ("ec2:CreateTags",),
    "autoscaling.UpdateAutoScalingGroup": ("autoscaling:UpdateAutoScalingGroup",),
    "autoscaling.PutScheduledUpdateGroupAction": ("autoscaling:PutScheduledUpdateGroupAction",),
}

#: The placeholder in the generated policy's S3 statement: the bucket holding the billing exports.
EXPORT_BUCKET = "YOUR-BILLING-EXPORT-BUCKET"


def read_actions() -> list[str]:
    return sorted({a for actions in READ.values() for a in actions})


def write_actions() -> list[str]:
    return sorted({a for actions in WRITE.values() for a in actions})


def audit_policy(export_bucket: str = EXPORT_BUCKET) -> dict[str, object]:
    """The read-only IAM policy document (``aws iam create-policy --policy-document``)."""
    actions = read_actions()
    statements: list[dict[str, object]] = [{
        "Sid": "CostagentAuditReadOnly",
        "Effect": "Allow",
        "Action": [a for a in actions if not a.startswith("s3:")],
        "Resource": "*",
    }]
    s3 = [a for a in actions if a.startswith("s3:")]
    if s3:
        statements.append({
            "Sid": "CostagentBillingExportRead",
            "Effect": "Allow",
            "Action": s3,
            "Resource": [f"arn:aws:s3:::{export_bucket}", f"arn:aws:s3:::{export_bucket}/*"],
        })
    return {"Version": "2012-10-17", "Statement": statements}


def audit_policy_json(export_bucket: str = EXPORT_BUCKET) -> str:
    """``audit_policy`` as the JSON text of ``infra/aws/audit-readonly-policy.json``."""
    return json.dumps(audit_policy(export_bucket), indent=2) + "\n"

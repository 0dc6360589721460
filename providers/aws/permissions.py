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
    "autoscaling.DescribeAutoScalingGroups": ("autoscaling:DescribeAutoScalingGroups",),  # a group's sizes before
    # the scheduled actions a scale overwrites, read before so that an undo can restore them
    "autoscaling.DescribeScheduledActions": ("autoscaling:DescribeScheduledActions",),
}

#: The calls (``WRITE`` keys) each action kind ``AwsActuator`` supports makes: its preview, execute and undo
#: (a stop is undone by a start, so both need both; a scale's undo overwrites the scheduled actions it put, never
#: deleting them). An off-hours ``schedule`` of one instance is not a kind here (AWS Instance Scheduler's job).
#: The actuator policy is generated from these.
ACTUATOR_CALLS: dict[str, tuple[str, ...]] = {
    "stop": ("ec2.StopInstances", "ec2.StartInstances", "ec2.DescribeInstances"),
    "start": ("ec2.StartInstances", "ec2.StopInstances", "ec2.DescribeInstances"),
    "resize": ("ec2.ModifyInstanceAttribute", "ec2.DescribeInstances"),
    "scale": ("autoscaling.UpdateAutoScalingGroup", "autoscaling.DescribeAutoScalingGroups",
              "autoscaling.PutScheduledUpdateGroupAction", "autoscaling.DescribeScheduledActions"),
    "tag": ("ec2.CreateTags", "ec2.DescribeInstances"),
}

#: The placeholder in the generated policy's S3 statement: the bucket holding the billing exports.
EXPORT_BUCKET = "YOUR-BILLING-EXPORT-BUCKET"


def read_actions() -> list[str]:
    return sorted({a for actions in READ.values() for a in actions})


def write_actions() -> list[str]:
    return sorted({a for actions in WRITE.values() for a in actions})


def kind_actions(kind: str) -> tuple[str, ...]:
    """The IAM actions of one supported action kind (``ACTUATOR_CALLS``)."""
    return tuple(sorted({a for call in ACTUATOR_CALLS[kind] for a in WRITE[call]}))


def actuator_actions() -> list[str]:
    return sorted({a for kind in ACTUATOR_CALLS for a in kind_actions(kind)})


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


def actuator_policy() -> dict[str, object]:
    """The actuator's IAM policy (the guarded apply): stop, start, resize, group sizes, tags; never terminate."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "CostagentActuator",
        "Effect": "Allow",
        "Action": actuator_actions(),
        "Resource": "*",
    }]}


def actuator_policy_json() -> str:
    """``actuator_policy`` as the JSON text of ``infra/aws/actuator-policy.json``."""
    return json.dumps(actuator_policy(), indent=2) + "\n"

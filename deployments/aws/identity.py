"""Who we are in a customer account: the role we act as, and the check behind "verify this
connection".

Verifying proves more than that the role can be assumed: one harmless probe per service we use
(reads, an EC2 dry-run write with tags, an IAM read scoped to our roles), each naming the
permission it needs, so a user learns every permission their policy lacks in one go.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from deployments.aws import permissions
from deployments.aws.clients import AccountAccess, client, dashboard_client
from deployments.aws.provisioning import ECS_AMI_PARAMETER

# Codes AWS answers when the caller's policy does not allow the call.
DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess"}
)
# A dry run that would have succeeded, or a lookup of something that is not there: both mean the
# call itself was allowed.
ALLOWED_ANSWERS = frozenset({"DryRunOperation", "NoSuchEntity", "NoSuchResourceException"})
SANDBOX_ROLE_POLICY_NAME = "TinyStacks"


@dataclass(frozen=True)
class Verification:
    arn: str
    missing: list[str]  # the permissions probes were refused, as "service:Action"


def _ec2_write(access: AccountAccess) -> None:
    client(access, "ec2").create_vpc(
        CidrBlock="10.0.0.0/16",
        DryRun=True,
        TagSpecifications=[
            {"ResourceType": "vpc", "Tags": [{"Key": "tinystacks:verify", "Value": "1"}]}
        ],
    )


# (the permissions a probe proves, the probe)
PROBES: list[tuple[str, Callable[[AccountAccess], Any]]] = [
    ("ec2:CreateVpc, ec2:CreateTags", _ec2_write),
    ("ec2:DescribeAvailabilityZones", lambda a: client(a, "ec2").describe_availability_zones()),
    ("ecs:DescribeClusters", lambda a: client(a, "ecs").describe_clusters(clusters=["default"])),
    (
        "autoscaling:DescribeAutoScalingGroups",
        lambda a: client(a, "autoscaling").describe_auto_scaling_groups(MaxRecords=1),
    ),
    ("iam:GetRole", lambda a: client(a, "iam").get_role(RoleName="tinystacks-verify")),
    ("ssm:GetParameter", lambda a: client(a, "ssm").get_parameter(Name=ECS_AMI_PARAMETER)),
    (
        "application-autoscaling:DescribeScalableTargets",
        lambda a: client(a, "application-autoscaling").describe_scalable_targets(
            ServiceNamespace="ecs"
        ),
    ),
    ("logs:DescribeLogGroups", lambda a: client(a, "logs").describe_log_groups(limit=1)),
    ("cloudwatch:DescribeAlarms", lambda a: client(a, "cloudwatch").describe_alarms(MaxRecords=1)),
]


def verify(access: AccountAccess) -> Verification:
    """Assume the role and run every probe; raises botocore errors when the role cannot be
    assumed or AWS cannot be reached."""
    arn = str(client(access, "sts").get_caller_identity()["Arn"])
    missing = []
    for needed, probe in PROBES:
        try:
            probe(access)
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code in DENIED_CODES:
                missing.append(needed)
            elif code not in ALLOWED_ANSWERS:
                raise
    return Verification(arn=arn, missing=missing)


def create_sandbox_customer_role(access: AccountAccess) -> None:
    """Play the customer in the sandbox: create the role they would, trusting the dashboard with
    this connection's ExternalId and holding exactly the permissions policy we publish. Re-run,
    it brings an existing role's policies up to date."""
    iam = dashboard_client(access, "iam")
    name = access.role_arn.rsplit("/", 1)[-1]
    trust = json.dumps(permissions.trust_policy(permissions.SANDBOX_ACCOUNT_ID, access.external_id))
    try:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)
    except ClientError as error:
        if error.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust)
    iam.put_role_policy(
        RoleName=name,
        PolicyName=SANDBOX_ROLE_POLICY_NAME,
        PolicyDocument=json.dumps(permissions.permissions_policy()),
    )

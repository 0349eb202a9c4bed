"""The sandbox enforces IAM on assumed-role sessions as AWS does: the trust policy's principal and
ExternalId on AssumeRole; identity policies with explicit Deny, resources and conditions; actions a
request implies (tag-on-create, PassRole, target tracking's alarms). Plain credentials keep full
access, as an administrator's would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from deployments.aws import permissions
from deployments.sandbox import patches

REGION = "us-east-1"
ADMIN = {"aws_access_key_id": "sandbox", "aws_secret_access_key": "sandbox"}
EXTERNAL_ID = "ts-the-right-one"


@pytest.fixture(autouse=True)
def aws() -> Iterator[None]:
    patches.apply()
    with mock_aws():
        yield


def admin(service: str) -> Any:
    return boto3.client(service, region_name=REGION, **ADMIN)  # type: ignore[call-overload]


def make_role(name: str, *policies: dict[str, Any]) -> str:
    iam = admin("iam")
    trust = permissions.trust_policy(permissions.SANDBOX_ACCOUNT_ID, EXTERNAL_ID)
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    for index, policy in enumerate(policies):
        iam.put_role_policy(
            RoleName=name, PolicyName=f"p{index}", PolicyDocument=json.dumps(policy)
        )
    return str(arn)


def session_of(role_arn: str, external_id: str | None = EXTERNAL_ID) -> boto3.Session:
    extra = {"ExternalId": external_id} if external_id is not None else {}
    credentials = admin("sts").assume_role(RoleArn=role_arn, RoleSessionName="tests", **extra)[
        "Credentials"
    ]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )


def allow(*actions: str, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": list(actions), "Resource": resource, **extra}
    return {"Version": "2012-10-17", "Statement": [statement]}


def error_code(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Code"])


@pytest.mark.parametrize("external_id", ["ts-a-wrong-one", None])
def test_assume_role_checks_the_external_id(external_id: str | None) -> None:
    arn = make_role("customer", allow("ecs:*"))

    assert error_code(lambda: session_of(arn, external_id)) == "AccessDenied"
    session_of(arn)  # the right one is accepted


def test_assume_role_refuses_a_role_that_does_not_exist() -> None:
    missing = f"arn:aws:iam::{permissions.SANDBOX_ACCOUNT_ID}:role/nobody"
    assert error_code(lambda: session_of(missing)) == "AccessDenied"


def test_a_session_may_only_do_what_its_role_allows() -> None:
    ecs = session_of(make_role("customer", allow("ecs:ListClusters"))).client("ecs")

    ecs.list_clusters()
    with pytest.raises(ClientError) as caught:
        ecs.create_cluster(clusterName="x")
    error = caught.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert "is not authorized to perform: ecs:CreateCluster" in error["Message"]
    assert "assumed-role/customer/tests" in error["Message"]
    assert admin("ecs").list_clusters()["clusterArns"] == []  # nothing was created


def test_an_explicit_deny_wins() -> None:
    deny = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": "ec2:DeleteVpc", "Resource": "*"}
    ]}  # fmt: skip
    ec2 = session_of(make_role("customer", allow("ec2:*"), deny)).client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]

    assert error_code(lambda: ec2.delete_vpc(VpcId=vpc)) == "UnauthorizedOperation"


def test_tag_on_create_needs_the_tagging_permission_too() -> None:
    ec2 = session_of(make_role("customer", allow("ec2:CreateVpc"))).client("ec2")
    tags: Any = [{"ResourceType": "vpc", "Tags": [{"Key": "k", "Value": "v"}]}]

    ec2.create_vpc(CidrBlock="10.0.0.0/16")  # untagged: allowed
    assert (
        error_code(lambda: ec2.create_vpc(CidrBlock="10.1.0.0/16", TagSpecifications=tags))
        == "UnauthorizedOperation"
    )
    ecs = session_of(make_role("ecs-only", allow("ecs:CreateCluster"))).client("ecs")
    assert (
        error_code(lambda: ecs.create_cluster(clusterName="c", tags=[{"key": "k", "value": "v"}]))
        == "AccessDeniedException"
    )


def test_iam_actions_are_scoped_to_the_resources_the_policy_names() -> None:
    iam = session_of(
        make_role("customer", allow("iam:CreateRole", resource=permissions.OUR_ROLES))
    ).client("iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})

    iam.create_role(RoleName="tinystacks-abc-instance", AssumeRolePolicyDocument=trust)
    assert (
        error_code(lambda: iam.create_role(RoleName="admin", AssumeRolePolicyDocument=trust))
        == "AccessDenied"
    )


def test_pass_role_is_checked_with_the_service_it_is_passed_to() -> None:
    to_tasks = {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    only_ec2 = {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
    register = allow("ecs:RegisterTaskDefinition")
    task: Any = {
        "family": "f",
        "containerDefinitions": [{"name": "c", "image": "nginx", "memory": 64}],
    }
    role = f"arn:aws:iam::{permissions.SANDBOX_ACCOUNT_ID}:role/tinystacks-x-execution"

    allowed = session_of(make_role("a", register, allow(
        "iam:PassRole", resource=permissions.OUR_ROLES, Condition=to_tasks
    ))).client("ecs")  # fmt: skip
    allowed.register_task_definition(executionRoleArn=role, **task)
    wrong_service = session_of(make_role("b", register, allow(
        "iam:PassRole", resource=permissions.OUR_ROLES, Condition=only_ec2
    ))).client("ecs")  # fmt: skip
    assert (
        error_code(lambda: wrong_service.register_task_definition(executionRoleArn=role, **task))
        == "AccessDeniedException"
    )


def test_parameters_are_scoped_by_path() -> None:
    ssm = session_of(
        make_role("customer", allow("ssm:PutParameter", resource=permissions.OUR_PARAMETERS))
    ).client("ssm")

    ssm.put_parameter(Name="/tinystacks/acme/web/r1/KEY", Value="v", Type="SecureString")
    assert (
        error_code(
            lambda: ssm.put_parameter(Name="/prod/db/password", Value="v", Type="SecureString")
        )
        == "AccessDeniedException"
    )


def test_plain_credentials_keep_full_access() -> None:
    admin("ecs").create_cluster(clusterName="admin-made", tags=[{"key": "k", "value": "v"}])
    admin("iam").create_role(RoleName="anything", AssumeRolePolicyDocument="{}")


@pytest.mark.parametrize(
    ("service", "call", "code"),
    [
        ("ecs", "list_clusters", "UnrecognizedClientException"),
        ("ec2", "describe_vpcs", "AuthFailure"),
        ("iam", "list_roles", "InvalidClientTokenId"),
    ],
)
def test_temporary_credentials_the_sandbox_never_issued_are_refused(
    service: str, call: str, code: str
) -> None:
    forged = boto3.Session(
        aws_access_key_id="ASIAFORGED0000000000",
        aws_secret_access_key="secret",
        aws_session_token="token",
        region_name=REGION,
    )
    with pytest.raises(ClientError) as refused:
        getattr(forged.client(service), call)()  # type: ignore[call-overload]
    assert refused.value.response["Error"]["Code"] == code

"""The product on a sandbox as strict as AWS: the sandbox account is reached through AssumeRole on a
role holding exactly the policy we publish, every call is authorised against it, and each cluster's
calls go to the cluster's region."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import redis

from deployments import jobs
from deployments.aws import clients, permissions
from deployments.aws.clients import add_client_hook
from deployments.models import AwsAccount, Cluster, Deployment, Job, Team
from deployments.sandbox import iam
from deployments.sandbox.server import Sandbox
from deployments.services import (
    account_create,
    app_create,
    app_delete,
    app_rollback,
    cluster_create,
    cluster_delete,
    cluster_scale,
    config_set,
    deployment_start,
    scaling_update,
    secret_set,
)
from tests import factories
from tests.conftest import aws, wait_for_in_process
from tests.test_deploys import follow

pytestmark = pytest.mark.django_db(transaction=True)


def connected(team: Team, **fields: Any) -> AwsAccount:
    """A sandbox account connected as a user connects one: created, then verified by its job."""
    account = account_create(
        team=team, actor=None, name=fields.pop("name", "sandbox"), mode="sandbox",
        region=fields.pop("region", "us-east-1"),
    )  # fmt: skip
    return wait_for_in_process(account)


def without_actions(monkeypatch: pytest.MonkeyPatch, *actions: str) -> None:
    """Publish a policy that lacks `actions` (and, through `Describe*`-style wildcards, nothing
    else): the sandbox role then holds exactly that."""
    statements = []
    for statement in permissions.STATEMENTS:
        kept = [a for a in iam._listed(statement["Action"]) if a not in actions]
        if kept:  # IAM refuses a statement without actions
            statements.append({**statement, "Action": kept})
    monkeypatch.setattr(permissions, "STATEMENTS", statements)


def test_connecting_the_sandbox_creates_the_customer_role_and_assumes_it(
    team: Team, sandbox: Sandbox, rq_redis: redis.Redis
) -> None:
    account = connected(team)

    assert account.verified_at is not None and account.verification_error == ""
    role = aws(sandbox, "iam").get_role(RoleName=account.role_arn.rsplit("/", 1)[-1])["Role"]
    trust = role["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": account.external_id}}
    job = Job.objects.get(kind="verify_account")
    assert any("assumed-role/TinyStacksAccess-" in line["message"] for line in job.log)


def test_a_wrong_external_id_is_refused(
    team: Team, sandbox: Sandbox, rq_redis: redis.Redis
) -> None:
    account = connected(team)
    AwsAccount.objects.filter(pk=account.pk).update(external_id="ts-somebody-elses")
    clients.forget_role_sessions()
    cluster = cluster_create(team=team, actor=None, account=account, name="main")

    # Verifying would re-create the role with the new id; provisioning must not get in.
    cluster = wait_for_in_process(cluster)

    assert cluster.status == Cluster.Status.FAILED
    assert "not authorized to perform: sts:AssumeRole" in cluster.status_reason
    assert (
        aws(sandbox, "ec2").describe_vpcs(
            Filters=[{"Name": "tag:tinystacks:cluster", "Values": [str(cluster.uuid)]}]
        )["Vpcs"]
        == []
    )


def test_verifying_names_every_permission_the_policy_lacks(
    team: Team, sandbox: Sandbox, rq_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_actions(monkeypatch, "ec2:CreateTags", "logs:DescribeLogGroups")

    account = connected(team)

    assert account.verified_at is None
    assert "ec2:CreateVpc, ec2:CreateTags" in account.verification_error
    assert "logs:DescribeLogGroups" in account.verification_error
    assert "ecs:DescribeClusters" not in account.verification_error


def test_provisioning_without_a_permission_fails_naming_it(
    team: Team, sandbox: Sandbox, rq_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = connected(team)
    without_actions(monkeypatch, "ecs:CreateCapacityProvider")
    factories.connect_sandbox(account)  # the customer pastes the narrower policy

    cluster = wait_for_in_process(cluster_create(team=team, actor=None, account=account, name="m"))

    assert cluster.status == Cluster.Status.FAILED
    assert "not authorized to perform: ecs:CreateCapacityProvider" in cluster.status_reason


def test_a_clusters_calls_go_to_its_region_not_the_accounts(
    team: Team, sandbox: Sandbox, rq_redis: redis.Redis
) -> None:
    account = connected(team, region="us-east-1")
    cluster = cluster_create(team=team, actor=None, account=account, name="eu", region="eu-west-1")
    cluster = wait_for_in_process(cluster)
    assert cluster.status == Cluster.Status.READY, cluster.status_reason
    app = app_create(team=team, actor=None, cluster=cluster, name="web")
    deployment = follow(deployment_start(app=app, actor=None, image="nginx:1.27"))

    assert deployment.status == Deployment.Status.SUCCEEDED
    tag = [{"Name": "tag:tinystacks:cluster", "Values": [str(cluster.uuid)]}]
    in_region = {
        region: regional(sandbox, "ec2", region).describe_vpcs(Filters=tag)["Vpcs"]
        for region in ("eu-west-1", "us-east-1")
    }
    assert len(in_region["eu-west-1"]) == 1 and in_region["us-east-1"] == []
    services = regional(sandbox, "ecs", "eu-west-1").describe_services(
        cluster=cluster.ecs_name, services=[app.service_name]
    )["services"]
    assert services[0]["runningCount"] == 2


def regional(sandbox: Sandbox, service: str, region: str) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service, region_name=region, endpoint_url=sandbox.url,
        aws_access_key_id="sandbox", aws_secret_access_key="sandbox",
    )  # fmt: skip


def published_actions_match(action: str) -> bool:
    return any(
        iam._like(pattern, action, case=False)
        for statement in permissions.STATEMENTS
        for pattern in iam._listed(statement["Action"])
    )


@pytest.fixture
def called() -> Iterator[set[str]]:
    """Every AWS action the product calls, as IAM names it."""
    seen: set[str] = set()

    def record(model: Any, **_: Any) -> None:
        prefix = model.service_model.signing_name
        seen.add(f"{iam.ACTION_PREFIXES.get(prefix, prefix)}:{model.name}")

    remove = add_client_hook("before-call", record)
    yield seen
    remove()


def test_every_flow_passes_and_every_action_called_is_in_the_published_policy(
    team: Team, sandbox: Sandbox, rq_redis: redis.Redis, called: set[str]
) -> None:
    """Connect, provision, resize up and down, deploy, config, secrets, rollback, autoscaling,
    delete the app and the cluster — all as the customer role; nothing left behind."""
    account = connected(team)
    cluster = wait_for_in_process(
        cluster_create(team=team, actor=None, account=account, name="main", max_instances=6)
    )
    assert cluster.status == Cluster.Status.READY, cluster.status_reason
    cluster = wait_for_in_process(
        cluster_scale(cluster=cluster, actor=None, min_instances=2, desired_instances=3,
                      max_instances=6)
    )  # fmt: skip
    assert cluster.status == Cluster.Status.READY, cluster.status_reason
    cluster = wait_for_in_process(
        cluster_scale(cluster=cluster, actor=None, desired_instances=2)
    )  # back down: the surplus instance is drained first
    assert cluster.status == Cluster.Status.READY, cluster.status_reason
    app = app_create(team=team, actor=None, cluster=cluster, name="web")
    outcomes = [follow(deployment_start(app=app, actor=None, image="nginx:1.27")).status]
    outcomes.append(follow(config_set(app=app, actor=None, config_vars={"MODE": "a"})).status)
    outcomes.append(follow(secret_set(app=app, actor=None, name="DB_PASSWORD", value="s3")).status)
    outcomes.append(follow(app_rollback(app=app, actor=None, version=1)).status)
    assert set(outcomes) == {Deployment.Status.SUCCEEDED}, outcomes
    scalable = aws(sandbox, "application-autoscaling").describe_scalable_targets(
        ServiceNamespace="ecs"
    )["ScalableTargets"]
    assert len(scalable) == 1  # autoscaling is on by default
    scaling_update(app=app, actor=None, autoscaling_enabled=False, desired_count=3)
    wait_for_in_process(app)
    delete = app_delete(app=app, actor=None)
    while Job.objects.filter(pk=delete.pk, status__in=["queued", "running"]).exists():
        jobs.run_job(delete.pk)
    assert Job.objects.get(pk=delete.pk).status == Job.Status.SUCCEEDED
    cluster = wait_for_in_process(cluster_delete(cluster=cluster, actor=None))

    assert cluster.status == Cluster.Status.DELETED, cluster.status_reason
    tag = [{"Name": "tag:tinystacks:cluster", "Values": [str(cluster.uuid)]}]
    assert aws(sandbox, "ec2").describe_vpcs(Filters=tag)["Vpcs"] == []
    ours = [{"Key": "Name", "Option": "BeginsWith", "Values": ["/tinystacks/"]}]
    assert aws(sandbox, "ssm").describe_parameters(ParameterFilters=ours)["Parameters"] == []
    # AssumeRole is the dashboard's own call; GetCallerIdentity needs no permission in AWS.
    called -= {"sts:AssumeRole", "sts:GetCallerIdentity"}
    assert {action for action in called if not published_actions_match(action)} == set()
    assert {
        "ecs:CreateService", "ecs:UpdateContainerInstancesState", "iam:CreateRole",
        "ssm:PutParameter",
    } <= called  # fmt: skip


SERVICE_LINKED_ROLES = {
    "AWSServiceRoleForECS",
    "AWSServiceRoleForAutoScaling",
    "AWSServiceRoleForApplicationAutoScaling_ECSService",
}


def service_linked_roles(sandbox: Sandbox) -> set[str]:
    roles = aws(sandbox, "iam").list_roles(PathPrefix="/aws-service-role/")["Roles"]
    return {role["RoleName"] for role in roles}


def test_provisioning_creates_the_service_linked_roles_a_fresh_account_lacks(
    team: Team, sandbox: Sandbox, rq_redis: redis.Redis
) -> None:
    account = connected(team)
    assert service_linked_roles(sandbox) == set()

    first = wait_for_in_process(cluster_create(team=team, actor=None, account=account, name="a"))
    # They exist now ("has been taken in this account"): the next cluster goes on regardless.
    second = wait_for_in_process(cluster_create(team=team, actor=None, account=account, name="b"))

    assert (first.status, second.status) == (Cluster.Status.READY, Cluster.Status.READY)
    assert service_linked_roles(sandbox) == SERVICE_LINKED_ROLES


def test_without_create_service_linked_role_provisioning_fails_first_naming_it(
    team: Team, sandbox: Sandbox, rq_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = connected(team)
    without_actions(monkeypatch, "iam:CreateServiceLinkedRole")
    factories.connect_sandbox(account)

    cluster = wait_for_in_process(cluster_create(team=team, actor=None, account=account, name="m"))

    assert cluster.status == Cluster.Status.FAILED
    assert cluster.status_reason.startswith("service_linked_roles: ")
    assert "not authorized to perform: iam:CreateServiceLinkedRole" in cluster.status_reason
    tag = [{"Name": "tag:tinystacks:cluster", "Values": [str(cluster.uuid)]}]
    assert aws(sandbox, "ec2").describe_vpcs(Filters=tag)["Vpcs"] == []


def test_a_region_without_room_for_a_vpc_fails_naming_the_quota_and_creates_nothing(
    team: Team, sandbox: Sandbox, rq_redis: redis.Redis
) -> None:
    account = connected(team)
    ec2 = aws(sandbox, "ec2")
    while len(ec2.describe_vpcs()["Vpcs"]) < 5:
        ec2.create_vpc(CidrBlock="10.1.0.0/16")

    cluster = wait_for_in_process(cluster_create(team=team, actor=None, account=account, name="m"))

    assert cluster.status == Cluster.Status.FAILED
    assert "VPCs per Region" in cluster.status_reason and "L-F678F1CE" in cluster.status_reason
    assert len(ec2.describe_vpcs()["Vpcs"]) == 5
    assert ec2.describe_internet_gateways()["InternetGateways"] == []

"""Cross-account safety: a role is assumed only with its own connection's ExternalId, and only
for the team that connected it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from django.core.exceptions import ValidationError
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID

from deployments import jobs
from deployments.aws import clients, permissions
from deployments.models import AwsAccount, Job, Team
from deployments.sandbox import patches
from deployments.services import account_verify, cluster_create
from tests import factories

ROLE = "arn:aws:iam::210987654321:role/TinyStacksAccess"


@pytest.fixture
def assume_role_calls() -> Iterator[list[dict[str, str]]]:
    """The parameters of every sts:AssumeRole call made through the clients module."""
    calls: list[dict[str, str]] = []

    def capture(params: dict[str, Any], **kwargs: Any) -> None:
        calls.append(dict(params["body"]))  # the query-protocol form, before it is encoded

    remove = clients.add_client_hook("before-call.sts.AssumeRole", capture)
    clients._role_sessions.clear()
    patches.apply()  # AssumeRole checks the trust policy, whatever ran before in this process
    with mock_aws():
        yield calls
    remove()
    clients._role_sessions.clear()


def customer_role(monkeypatch: pytest.MonkeyPatch, external_id: str) -> None:
    """ROLE as its account's owner makes it: trusting our account with one ExternalId."""
    monkeypatch.setenv("MOTO_ACCOUNT_ID", ROLE.split(":")[4])
    iam = boto3.client("iam", region_name="us-east-1")
    name = ROLE.rsplit("/", 1)[1]
    trust = permissions.trust_policy(DEFAULT_ACCOUNT_ID, external_id)
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(
        RoleName=name,
        PolicyName="tinystacks",
        PolicyDocument=json.dumps(permissions.permissions_policy()),
    )
    monkeypatch.delenv("MOTO_ACCOUNT_ID")


@pytest.mark.django_db
def test_assuming_a_role_always_sends_the_connections_external_id(
    team: Team,
    other_team: Team,
    assume_role_calls: list[dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Both teams typed the same role ARN; each connection has its own ExternalId, and the role
    # trusts the one its owner pasted.
    ours = factories.make_account(team, mode=AwsAccount.Mode.ASSUME_ROLE, role_arn=ROLE)
    theirs = factories.make_account(other_team, mode=AwsAccount.Mode.ASSUME_ROLE, role_arn=ROLE)
    customer_role(monkeypatch, ours.external_id)

    outcomes = []
    for account in (ours, theirs):
        job = account_verify(account=account, actor=None)
        jobs.run_job(job.pk)
        outcomes.append(Job.objects.get(pk=job.pk).status)

    assert outcomes == [Job.Status.SUCCEEDED, Job.Status.FAILED]

    sent = [(call["ExternalId"], call["RoleSessionName"]) for call in assume_role_calls]
    assert sent == [
        (ours.external_id, "tinystacks-acme"),
        (theirs.external_id, "tinystacks-globex"),
    ]


@pytest.mark.django_db
def test_a_team_cannot_build_on_another_teams_account(team: Team, other_team: Team) -> None:
    theirs = factories.make_account(other_team, mode=AwsAccount.Mode.ASSUME_ROLE, role_arn=ROLE)

    with pytest.raises(ValidationError, match="No such AWS account in this team"):
        cluster_create(team=team, actor=None, account=theirs, name="stolen")
    assert not theirs.clusters.exists()

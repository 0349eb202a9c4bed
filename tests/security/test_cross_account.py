"""Cross-account safety: a role is assumed only with its own connection's ExternalId, and only
for the team that connected it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from moto import mock_aws

from deployments import jobs
from deployments.aws import clients
from deployments.models import AwsAccount, Job, Team
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
    with mock_aws():
        yield calls
    remove()
    clients._role_sessions.clear()


@pytest.mark.django_db
def test_assuming_a_role_always_sends_the_connections_external_id(
    team: Team, other_team: Team, assume_role_calls: list[dict[str, str]]
) -> None:
    # Both teams typed the same role ARN; each connection has its own ExternalId.
    ours = factories.make_account(team, mode=AwsAccount.Mode.ASSUME_ROLE, role_arn=ROLE)
    theirs = factories.make_account(other_team, mode=AwsAccount.Mode.ASSUME_ROLE, role_arn=ROLE)

    for account in (ours, theirs):
        job = account_verify(account=account, actor=None)
        jobs.run_job(job.pk)
        assert Job.objects.get(pk=job.pk).status == Job.Status.SUCCEEDED

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

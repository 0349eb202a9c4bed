"""The support admin: every model listed and searchable in a constant number of queries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from deployments.models import (
    App,
    AuditEntry,
    AwsAccount,
    Cluster,
    Deployment,
    DeploymentEvent,
    Job,
    Membership,
    Release,
    ScalingSettings,
    Team,
)
from tests import factories

pytestmark = pytest.mark.django_db

ALL_MODELS = [
    Team,
    Membership,
    AwsAccount,
    Cluster,
    App,
    ScalingSettings,
    Release,
    Deployment,
    DeploymentEvent,
    Job,
    AuditEntry,
]


@pytest.fixture
def staff_client(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("support", "support@example.com", "pw"))
    return client


def populate(rows: int) -> None:
    """`rows` rows of every model, each row with its own chain of related objects."""
    for _ in range(rows):
        team = factories.make_team()
        user = factories.make_user(team)
        account = factories.make_account(team)
        app = factories.make_app(factories.make_cluster(account))
        release = factories.make_release(app, created_by=user)
        deployment = factories.make_deployment(release, started_by=user)
        factories.make_event(deployment)
        factories.make_job(team, account, created_by=user)
        factories.make_audit_entry(team, user)


def changelist_queries(client: Client, model: type[Any], query: str = "") -> int:
    url = reverse(f"admin:deployments_{model._meta.model_name}_changelist") + query
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.__name__)
def test_changelist_queries_do_not_grow_with_rows(staff_client: Client, model: type[Any]) -> None:
    populate(5)
    with_five = changelist_queries(staff_client, model)
    populate(45)
    with_fifty = changelist_queries(staff_client, model)

    assert model.objects.count() >= 50
    assert with_fifty == with_five


@pytest.mark.parametrize(
    ("model", "term", "expected"),
    [
        (Team, "acme", "Acme"),
        (Membership, "olivia", "olivia in Acme"),
        (AwsAccount, "acme", "acme/prod"),
        (Cluster, "acme", "acme/main"),
        (App, "nginx:1.27-alpine", "acme/web"),
        (Release, "nginx:1.27-alpine", "acme/web v1"),
        (Deployment, "ecs-svc/1234567890123456789", "acme/web v1 rollout"),
        (DeploymentEvent, "reached a steady state", "reached a steady state"),
        (Job, "verify_account", "verify_account #"),
        (AuditEntry, "acme", "app.deploy acme/web"),
    ],
)
def test_search_across_relations(
    staff_client: Client, owner: User, team: Team, model: type[Any], term: str, expected: str
) -> None:
    account = factories.make_account(team, name="prod")
    app = factories.make_app(factories.make_cluster(account, name="main"), name="web")
    release = factories.make_release(app, image="nginx:1.27-alpine")
    deployment = factories.make_deployment(release, ecs_deployment_id="ecs-svc/1234567890123456789")
    factories.make_event(deployment, message="(service web) has reached a steady state.")
    factories.make_job(team, account)
    factories.make_audit_entry(team, owner, target_repr="acme/web")
    populate(3)  # noise that must not match

    url = reverse(f"admin:deployments_{model._meta.model_name}_changelist")
    response = staff_client.get(url, {"q": term})

    assert response.status_code == 200
    assert expected in response.text
    assert response.context["cl"].result_count >= 1


def test_external_id_search_finds_the_account(staff_client: Client, team: Team) -> None:
    account = factories.make_account(team, name="prod")
    populate(3)

    response = staff_client.get(
        reverse("admin:deployments_awsaccount_changelist"), {"q": account.external_id}
    )

    assert response.context["cl"].result_count == 1


def test_app_page_shows_releases_and_deployments_inline(staff_client: Client, team: Team) -> None:
    app = factories.make_app(factories.make_cluster(factories.make_account(team)), name="web")
    factories.make_deployment(factories.make_release(app, image="nginx:1.27-alpine"))

    response = staff_client.get(reverse("admin:deployments_app_change", args=[app.pk]))

    assert response.status_code == 200
    assert "nginx:1.27-alpine" in response.text
    assert "Succeeded" in response.text


@pytest.mark.parametrize(
    ("model", "make"),
    [
        (AwsAccount, lambda team: factories.make_account(team)),
        (Job, lambda team: factories.make_job(team, team, rq_id="abc123")),
        (
            Deployment,
            lambda team: factories.make_deployment(
                factories.make_release(
                    factories.make_app(factories.make_cluster(factories.make_account(team)))
                )
            ),
        ),
    ],
)
def test_aws_identifiers_are_read_only(
    staff_client: Client, team: Team, model: type[Any], make: Callable[[Team], Any]
) -> None:
    obj = make(team)

    response = staff_client.get(
        reverse(f"admin:deployments_{model._meta.model_name}_change", args=[obj.pk])
    )

    assert response.status_code == 200
    form = response.context["adminform"].form
    for field in ("external_id", "rq_id", "ecs_deployment_id", "task_definition_arn"):
        assert field not in form.fields


def test_job_links_to_its_rq_job(staff_client: Client, team: Team) -> None:
    job = factories.make_job(team, team, rq_id="4f1c2d3e-rq")

    response = staff_client.get(reverse("admin:deployments_job_changelist"))

    assert reverse("django_rq:job_detail", args=[0, "4f1c2d3e-rq"]) in response.text
    assert str(job) in response.text


def test_staff_connect_an_ambient_account(staff_client: Client, team: Team) -> None:
    response = staff_client.post(
        reverse("admin:deployments_awsaccount_add"),
        {"team": team.pk, "name": "ours", "mode": "ambient", "region": "eu-west-1"},
    )

    assert response.status_code == 302, response.context["adminform"].errors
    assert AwsAccount.objects.get(team=team, name="ours").mode == AwsAccount.Mode.AMBIENT

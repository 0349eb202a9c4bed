"""AWS names two teams can never share, and adoption that checks our tags, end to end on the
sandbox (whose sandbox accounts all live in one moto account, as two teams sharing an AWS
account would)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from deployments import jobs
from deployments.models import App, Cluster, Deployment, Job, Team
from deployments.sandbox.server import Sandbox
from deployments.services import (
    app_create,
    app_delete,
    cluster_create,
    cluster_delete,
    deployment_start,
)
from tests import factories
from tests.conftest import aws, wait_for_in_process
from tests.test_deploys import follow

pytestmark = pytest.mark.django_db(transaction=True)
FOREIGN = "exists in this account but belongs to something else"


def ready_cluster(team: Team, name: str) -> Cluster:
    account = factories.connect_sandbox(factories.make_account(team, region="us-east-1"))
    cluster = wait_for_in_process(cluster_create(team=team, actor=None, account=account, name=name))
    assert cluster.status == Cluster.Status.READY, cluster.status_reason
    return cluster


def run_until_done(job: Job) -> None:
    deadline = time.monotonic() + 30
    while Job.objects.filter(pk=job.pk, status__in=["queued", "running"]).exists():
        jobs.run_job(job.pk)
        assert time.monotonic() < deadline


def service_of(sandbox: Sandbox, app: App) -> dict[str, Any]:
    (service,) = aws(sandbox, "ecs").describe_services(
        cluster=app.cluster.ecs_name, services=[app.service_name], include=["TAGS"]
    )["services"]
    return dict(service)


def tags_of(described: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in described.get("tags", [])}


def test_demo_prod_east_and_demo_prod_east_share_nothing(
    sandbox: Sandbox, rq_redis: redis.Redis
) -> None:
    """Team demo's cluster prod-east and team demo-prod's cluster east were both
    `tinystacks-demo-prod-east`: the second team adopted, redeployed and deleted the first's."""
    demo, demo_prod = (factories.make_team(slug=slug) for slug in ("demo", "demo-prod"))
    theirs = app_create(team=demo, actor=None, cluster=ready_cluster(demo, "prod-east"), name="web")
    ours = app_create(team=demo_prod, actor=None, cluster=ready_cluster(demo_prod, "east"),
                      name="web")  # fmt: skip
    assert follow(deployment_start(app=theirs, actor=None, image="nginx:1.27")).status == (
        Deployment.Status.SUCCEEDED
    )
    assert follow(deployment_start(app=ours, actor=None, image="nginx:1.27-alpine")).status == (
        Deployment.Status.SUCCEEDED
    )

    ecs = aws(sandbox, "ecs")
    for app in (theirs, ours):
        app.refresh_from_db()
        (cluster,) = ecs.describe_clusters(clusters=[app.cluster.ecs_name], include=["TAGS"])[
            "clusters"
        ]
        assert tags_of(cluster)["tinystacks:cluster"] == str(app.cluster.uuid)
        service = service_of(sandbox, app)
        assert service["taskDefinition"] == app.releases.get().task_definition_arn
        assert tags_of(service)["tinystacks:app-id"] == str(app.uuid)
    assert theirs.cluster.ecs_name.startswith("tinystacks-demo-prod-east-")
    assert ours.cluster.ecs_name.startswith("tinystacks-demo-prod-east-")

    run_until_done(app_delete(app=ours, actor=None))
    gone = wait_for_in_process(cluster_delete(cluster=ours.cluster, actor=None))

    assert gone.status == Cluster.Status.DELETED
    (cluster,) = ecs.describe_clusters(clusters=[theirs.cluster.ecs_name])["clusters"]
    assert cluster["status"] == "ACTIVE"
    service = service_of(sandbox, theirs)
    assert (service["status"], service["runningCount"]) == ("ACTIVE", 2)
    assert service["taskDefinition"] == theirs.releases.get().task_definition_arn
    revision = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])
    assert revision["taskDefinition"]["status"] == "ACTIVE"


def test_an_ecs_cluster_under_our_name_but_not_ours_is_refused_and_survives_teardown(
    team: Team, sandbox: Sandbox, rq_redis: redis.Redis
) -> None:
    account = factories.connect_sandbox(factories.make_account(team, region="us-east-1"))
    cluster = cluster_create(team=team, actor=None, account=account, name="main")
    ecs = aws(sandbox, "ecs")
    ecs.create_cluster(clusterName=cluster.ecs_name, tags=[{"key": "owner", "value": "else"}])

    cluster = wait_for_in_process(cluster)

    assert cluster.status == Cluster.Status.FAILED
    assert f"ECS cluster {cluster.ecs_name} {FOREIGN}" in cluster.status_reason
    (found,) = ecs.describe_clusters(clusters=[cluster.ecs_name], include=["TAGS"])["clusters"]
    assert tags_of(found) == {"owner": "else"}
    assert found.get("capacityProviders", []) == []

    cluster = wait_for_in_process(cluster_delete(cluster=cluster, actor=None))

    assert cluster.status == Cluster.Status.DELETED
    (found,) = ecs.describe_clusters(clusters=[cluster.ecs_name])["clusters"]
    assert found["status"] == "ACTIVE"


def test_a_service_under_our_name_but_not_ours_is_refused_and_not_deleted(
    app: App, sandbox: Sandbox
) -> None:
    ecs = aws(sandbox, "ecs")
    family = ecs.register_task_definition(
        family="someone-else",
        containerDefinitions=[{"name": "x", "image": "busybox", "memory": 64}],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster=app.cluster.ecs_name, serviceName=app.service_name,
                       taskDefinition=family, desiredCount=0)  # fmt: skip

    deployment = follow(deployment_start(app=app, actor=None, image="nginx:1.27"))

    assert deployment.status == Deployment.Status.FAILED
    assert f"ECS service {app.service_name} {FOREIGN}" in deployment.rollout_state_reason
    assert service_of(sandbox, app)["taskDefinition"] == family

    run_until_done(app_delete(app=app, actor=None))

    assert not App.objects.filter(pk=app.pk).exists()
    assert service_of(sandbox, app)["status"] == "ACTIVE"

"""The API end to end on the sandbox: create an app, deploy, follow the rollout, roll back."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from deployments.models import App, Cluster, Deployment, Team
from deployments.sandbox.server import Sandbox
from deployments.services import cluster_create
from tests import factories
from tests.api.conftest import Api
from tests.conftest import aws, wait_for_in_process
from tests.test_deploys import follow

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cluster(team: Team, sandbox: Sandbox, rq_redis: redis.Redis) -> Cluster:
    account = factories.connect_sandbox(
        factories.make_account(team, name="sandbox", region="us-east-1")
    )
    cluster = cluster_create(team=team, actor=None, account=account, name="main", max_instances=6)
    return wait_for_in_process(cluster)


def deploy_and_follow(api: Api, token: str, path: str, body: Any) -> dict[str, Any]:
    """POST a rollout-starting request, run it to its end, and GET the deployment."""
    response = api("POST", path, token, body)
    assert response.status_code == 202, response.content
    deployment = Deployment.objects.get(pk=response.json()["deployment"]["id"])
    follow(deployment)
    shown = api("GET", response["Location"].removeprefix("/api/v1"), token)
    assert shown.status_code == 200
    return dict(shown.json())


def test_deploy_follow_and_roll_back_over_the_api(
    api: Api, cluster: Cluster, deployer_token: str, sandbox: Sandbox
) -> None:
    created = api("POST", "/apps", deployer_token, {"name": "web", "cluster": "main"})
    assert created.status_code == 201

    first = deploy_and_follow(api, deployer_token, "/apps/web/deploys", {"image": "nginx:1.27"})

    assert (first["status"], first["release"], first["rollout_state"]) == ("succeeded", 1,
                                                                           "COMPLETED")  # fmt: skip
    assert (first["running"], first["desired"], first["pending"]) == (2, 2, 0)
    messages = [event["message"] for event in first["events"]]
    assert any("Registered task definition" in m for m in messages)
    assert any("has started 2 tasks" in m for m in messages)
    app = api("GET", "/apps/web", deployer_token).json()
    assert (app["live_release"], app["active_deployment"]) == (1, None)
    service_name = App.objects.get(name="web").service_name
    assert app["service_arn"].endswith(f"/{service_name}")

    second = deploy_and_follow(
        api, deployer_token, "/apps/web/deploys", {"image": "nginx:1.27-alpine"}
    )
    assert second["status"] == "succeeded"

    rollback = deploy_and_follow(api, deployer_token, "/apps/web/rollback", {"version": 1})

    assert (rollback["status"], rollback["release"]) == ("succeeded", 3)
    releases = api("GET", "/apps/web/releases", deployer_token).json()
    assert [(r["version"], r["kind"], r["image"]) for r in releases] == [
        (3, "rollback", "nginx:1.27"),
        (2, "deploy", "nginx:1.27-alpine"),
        (1, "deploy", "nginx:1.27"),
    ]
    assert releases[0]["task_definition_arn"] == releases[2]["task_definition_arn"]
    assert api("GET", "/apps/web", deployer_token).json()["live_release"] == 3
    ecs = aws(sandbox, "ecs")
    service = ecs.describe_services(cluster=cluster.ecs_name, services=[service_name])["services"][
        0
    ]
    assert service["taskDefinition"] == releases[2]["task_definition_arn"]


def test_a_crashing_image_is_reported_rolled_back(
    api: Api, cluster: Cluster, deployer_token: str
) -> None:
    api("POST", "/apps", deployer_token, {"name": "web", "cluster": "main"})
    deploy_and_follow(api, deployer_token, "/apps/web/deploys", {"image": "nginx:1.27"})

    bad = deploy_and_follow(api, deployer_token, "/apps/web/deploys", {"image": "nginx:crashloop"})

    assert (bad["status"], bad["rollout_state"]) == ("rolled_back", "FAILED")
    assert "rolled back" in bad["reason"]
    assert bad["failed"] >= 3
    assert api("GET", "/apps/web", deployer_token).json()["live_release"] == 1

"""Task definitions as the product registers them on the sandbox, read back through boto3."""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from deployments.models import App, Deployment
from deployments.sandbox.server import Sandbox
from deployments.services import app_update
from tests.conftest import aws
from tests.test_deploys import deploy

pytestmark = pytest.mark.django_db(transaction=True)


def _container(sandbox: Sandbox, deployment: Deployment) -> dict[str, Any]:
    described = aws(sandbox, "ecs").describe_task_definition(
        taskDefinition=deployment.release.task_definition_arn
    )
    [container] = described["taskDefinition"]["containerDefinitions"]
    return dict(container)


def _shell_words(command: str) -> list[str]:
    """The words and operators (`&`, `;`, `||`, …) a POSIX shell would see."""
    return list(shlex.shlex(command, posix=True, punctuation_chars=True))


def test_without_a_health_check_path_the_container_has_no_health_check(
    app: App, sandbox: Sandbox
) -> None:
    deployment = deploy(app, "nginx:1.27")

    assert deployment.status == Deployment.Status.SUCCEEDED
    assert "healthCheck" not in _container(sandbox, deployment)


def test_a_health_check_path_is_one_quoted_word_of_the_check(app: App, sandbox: Sandbox) -> None:
    app_update(app=app, actor=None, health_check_path="/health?a=1&b=2;true")

    deployment = deploy(app, "nginx:1.27")

    assert deployment.status == Deployment.Status.SUCCEEDED
    kind, command = _container(sandbox, deployment)["healthCheck"]["command"]
    url = "http://localhost:80/health?a=1&b=2;true"
    assert kind == "CMD-SHELL"
    assert _shell_words(command) == [
        "curl", "-fs", url, ">", "/dev/null", "||", "wget", "-q", "-O", "/dev/null", url,
    ]  # fmt: skip
    tasks = aws(sandbox, "ecs").list_tasks(
        cluster=app.cluster.ecs_name, serviceName=app.service_name
    )
    described = aws(sandbox, "ecs").describe_tasks(
        cluster=app.cluster.ecs_name, tasks=tasks["taskArns"]
    )
    assert {task["healthStatus"] for task in described["tasks"]} == {"HEALTHY"}

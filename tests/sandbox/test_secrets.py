"""Container secrets: ECS fetches them while the task is PENDING, with the task definition's
execution role, and a task whose secrets it cannot fetch stops before it ever runs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from deployments.sandbox.simulator import Simulator
from tests.sandbox.conftest import (
    REGION,
    Clients,
    SandboxCluster,
    create_service,
    describe,
    primary,
    refusal,
    rollout_state,
    tick_until,
)

ACCOUNT = "123456789012"
RETRIEVAL_FAILED = (
    "ResourceInitializationError: unable to pull secrets or registry auth: execution resource "
    "retrieval failed: unable to retrieve secrets from ssm: service call has been retried 1 "
    "time(s): "
)


def execution_role(clients: Clients, readable: str = "/app/*", name: str = "exec") -> str:
    """A task-execution role that may read the parameters under `readable`."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    arn: str = clients.iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))[
        "Role"
    ]["Arn"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "ssm:GetParameters",
                "Resource": f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{readable}",
            }
        ],
    }
    clients.iam.put_role_policy(
        RoleName=name, PolicyName="read-secrets", PolicyDocument=json.dumps(policy)
    )
    return arn


def register_with_secrets(clients: Clients, role_arn: str | None, *value_froms: str) -> str:
    extra: dict[str, Any] = {"executionRoleArn": role_arn} if role_arn else {}
    arn: str = clients.ecs.register_task_definition(
        family="web",
        requiresCompatibilities=["EC2"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": "web",
                "image": "nginx:1.27",
                "essential": True,
                "secrets": [
                    {"name": f"SECRET_{i}", "valueFrom": value_from}
                    for i, value_from in enumerate(value_froms)
                ],
            }
        ],
        **extra,
    )["taskDefinition"]["taskDefinitionArn"]
    return arn


def stopped_tasks(clients: Clients, cluster: SandboxCluster) -> list[dict[str, Any]]:
    ecs = clients.ecs
    arns = ecs.list_tasks(cluster=cluster.name, serviceName="web", desiredStatus="STOPPED")
    if not arns["taskArns"]:
        return []
    tasks: list[dict[str, Any]] = ecs.describe_tasks(cluster=cluster.name, tasks=arns["taskArns"])[
        "tasks"
    ]
    return tasks


def first_stopped(clients: Clients, sim: Simulator, cluster: SandboxCluster) -> dict[str, Any]:
    tick_until(sim, lambda: bool(stopped_tasks(clients, cluster)))
    return stopped_tasks(clients, cluster)[0]


def put(clients: Clients, name: str) -> None:
    clients.ssm.put_parameter(Name=name, Value="s3cr3t", Type="SecureString")


def test_a_missing_parameter_stops_the_task_before_it_runs_and_counts_as_a_failure(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    role = execution_role(clients)
    put(clients, "/app/PRESENT")
    definition = register_with_secrets(clients, role, "/app/PRESENT", "/app/MISSING")
    create_service(clients.ecs, cluster, definition, desired=2, breaker=True)

    task = first_stopped(clients, sim, cluster)

    assert task["stoppedReason"] == f"{RETRIEVAL_FAILED}invalid ssm parameters: /app/MISSING"
    assert (task["lastStatus"], task["stopCode"]) == ("STOPPED", "TaskFailedToStart")
    assert "startedAt" not in task  # it never reached RUNNING
    tick_until(sim, lambda: rollout_state(clients.ecs, cluster) == "FAILED")
    service = describe(clients.ecs, cluster)
    assert primary(service)["failedTasks"] >= 3
    assert service["runningCount"] == 0


def test_a_parameter_the_execution_role_may_not_read_is_access_denied(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    role = execution_role(clients, readable="/app/*")
    put(clients, "/other-team/KEY")
    definition = register_with_secrets(clients, role, "/other-team/KEY")
    create_service(clients.ecs, cluster, definition, desired=1)

    task = first_stopped(clients, sim, cluster)

    reason = task["stoppedReason"]
    assert reason.startswith(f"{RETRIEVAL_FAILED}operation error SSM: GetParameters, ")
    assert reason.endswith(
        f"api error AccessDeniedException: User: arn:aws:sts::{ACCOUNT}:assumed-role/exec/"
        f"{task['taskArn'].rsplit('/', 1)[-1]} is not authorized to perform: ssm:GetParameters "
        f"on resource: arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/other-team/KEY because no "
        "identity-based policy allows the ssm:GetParameters action"
    )
    assert task["stopCode"] == "TaskFailedToStart"


def test_secrets_the_role_may_read_by_name_or_arn_let_the_tasks_run(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    role = execution_role(clients)
    put(clients, "/app/BY_NAME")
    put(clients, "/app/BY_ARN")
    definition = register_with_secrets(
        clients, role, "/app/BY_NAME", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/app/BY_ARN"
    )
    create_service(clients.ecs, cluster, definition, desired=2)

    tick_until(sim, lambda: rollout_state(clients.ecs, cluster) == "COMPLETED")

    assert describe(clients.ecs, cluster)["runningCount"] == 2
    assert stopped_tasks(clients, cluster) == []


def test_an_execution_role_ecs_cannot_assume_stops_the_task(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    role = execution_role(clients)
    put(clients, "/app/KEY")
    definition = register_with_secrets(clients, role, "/app/KEY")
    clients.iam.delete_role_policy(RoleName="exec", PolicyName="read-secrets")
    clients.iam.delete_role(RoleName="exec")
    create_service(clients.ecs, cluster, definition, desired=1)

    task = first_stopped(clients, sim, cluster)

    assert task["stoppedReason"] == (
        f"ECS was unable to assume the role '{role}' that was provided for this task. Please "
        "verify that the role being passed has the proper trust relationship and permissions "
        "and that your IAM user has permissions to pass this role."
    )


def test_secrets_without_an_execution_role_are_refused_at_registration(
    clients: Clients,
) -> None:
    with pytest.raises(ClientError) as error:
        register_with_secrets(clients, None, "/app/KEY")

    assert refusal(error) == (
        "ClientException",
        "When you are specifying container secrets, you must also specify a value for "
        "'executionRoleArn'.",
    )

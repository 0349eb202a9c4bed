"""Container secrets, fetched as ECS fetches them: while the task is PENDING, with the task
definition's execution role.

A container's `secrets` name SSM parameters (by name or ARN). ECS reads them all before any
container starts, as the execution role, with `ssm:GetParameters`; a parameter the role may not
read, or one that does not exist, stops the task before it ever runs (stopCode
TaskFailedToStart, ECS's ResourceInitializationError). RegisterTaskDefinition refuses secrets
without an execution role. Secrets Manager ARNs are not fetched.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.ecs.exceptions import EcsClientException
from moto.ecs.models import Task, TaskDefinition
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.moto_api._internal import mock_random
from moto.ssm.models import ssm_backends

from deployments.sandbox import iam

TASK_PRINCIPAL = "ecs-tasks.amazonaws.com"
RETRIEVAL_FAILED = (
    "ResourceInitializationError: unable to pull secrets or registry auth: execution resource "
    "retrieval failed: unable to retrieve secrets from ssm: service call has been retried 1 "
    "time(s): "
)


def _ssm_secrets(task_definition: TaskDefinition) -> list[str]:
    """Every container's secret `valueFrom` that is an SSM parameter (a name or an ARN)."""
    containers: list[dict[str, Any]] = task_definition.container_definitions
    return [
        str(secret["valueFrom"])
        for container in containers
        for secret in container.get("secrets") or []
        if not str(secret.get("valueFrom", "")).startswith("arn:aws:secretsmanager:")
    ]


def _located(value_from: str, account: str, region: str) -> tuple[str, str, str]:
    """(account, region, parameter name) of a secret's `valueFrom`: an ARN names its own; a
    hierarchical name's ARN drops its leading slash."""
    if not value_from.startswith("arn:"):
        return account, region, value_from
    parts = value_from.split(":", 5)
    path = parts[5].removeprefix("parameter/")
    return parts[4], parts[3], f"/{path}" if "/" in path else path


def retrieval_failure(task: Task, task_definition: TaskDefinition) -> str | None:
    """Why ECS could not fetch the task's secrets (its stoppedReason), or None if it could."""
    names = _ssm_secrets(task_definition)
    if not names:
        return None
    account, region = task.task_arn.split(":")[4], task.task_arn.split(":")[3]
    role_arn = task_definition.execution_role_arn or ""
    role_name = role_arn.rsplit("/", 1)[-1]
    if not iam.service_may_assume(role_arn, TASK_PRINCIPAL):
        return (
            f"ECS was unable to assume the role '{role_arn}' that was provided for this task. "
            "Please verify that the role being passed has the proper trust relationship and "
            "permissions and that your IAM user has permissions to pass this role."
        )
    caller = iam.Caller(
        arn=f"arn:aws:sts::{account}:assumed-role/{role_name}/{task.id}",
        account_id=account,
        role_name=role_name,
    )
    documents = iam.role_policies(account, role_name)
    located = [_located(name, account, region) for name in names]
    for owner, where, name in located:
        need = iam.Need("ssm:GetParameters", iam.parameter_arn(name, owner, where))
        decision = iam.decide(documents, need)
        if decision != "allow":
            denied = iam.denial("ssm", caller, need, explicit=decision == "deny")
            return (
                f"{RETRIEVAL_FAILED}operation error SSM: GetParameters, https response error "
                f"StatusCode: 400, RequestID: {mock_random.uuid4()}, api error "
                f"{denied.code}: {denied.message}"
            )
    missing = [name for owner, where, name in located if not _exists(owner, where, name)]
    if missing:
        return f"{RETRIEVAL_FAILED}invalid ssm parameters: {','.join(missing)}"
    return None


def _exists(account: str, region: str, name: str) -> bool:
    return bool(ssm_backends[account][region].get_parameters([name]))


def apply() -> None:
    """ECS refuses a task definition whose secrets no execution role could fetch."""
    original = EC2ContainerServiceResponse.register_task_definition

    def register_task_definition(self: EC2ContainerServiceResponse) -> ActionResult:
        containers = self._get_param("containerDefinitions") or []
        if not self._get_param("executionRoleArn") and any(c.get("secrets") for c in containers):
            raise EcsClientException(
                "When you are specifying container secrets, you must also specify a value for "
                "'executionRoleArn'."
            )
        return original(self)

    EC2ContainerServiceResponse.register_task_definition = register_task_definition  # type: ignore[method-assign]

"""Task definitions: one family per app, one revision per release."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from deployments.aws import ownership
from deployments.aws.clients import AccountAccess, client

LOG_RETENTION_DAYS = 30
RELEASE_TAG = "tinystacks:release"


@dataclass(frozen=True)
class TaskDefinitionSpec:
    family: str
    release_id: int
    image: str
    cpu: int
    memory: int
    port: int
    health_check_path: str  # empty: no container health check
    execution_role_arn: str
    log_group: str
    region: str
    command: str = ""
    environment: dict[str, str] = field(default_factory=dict)
    # Secret env vars: name → SSM parameter name; ECS resolves them when a task starts.
    secrets: dict[str, str] = field(default_factory=dict)
    # The app's tags (aws_access.app_owner): put on each revision, required to adopt one.
    tags: dict[str, str] = field(default_factory=dict)


def ensure_log_group(access: AccountAccess, name: str) -> None:
    logs = client(access, "logs")
    try:
        logs.create_log_group(logGroupName=name)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceAlreadyExistsException":
            raise
    logs.put_retention_policy(logGroupName=name, retentionInDays=LOG_RETENTION_DAYS)


def health_check(port: int, path: str) -> dict[str, Any]:
    """A container health check fetching `path` on localhost; the URL is one quoted shell word,
    so `&` or `;` in it cannot end the command early (and make the check always pass)."""
    url = shlex.quote(f"http://localhost:{port}{path}")
    return {
        # Images carry curl or wget (busybox), rarely both.
        "command": ["CMD-SHELL", f"curl -fs {url} >/dev/null || wget -q -O /dev/null {url}"],
        "interval": 15,
        "timeout": 5,
        "retries": 3,
        "startPeriod": 60,
    }


def _container(spec: TaskDefinitionSpec) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "app",
        "image": spec.image,
        "essential": True,
        # hostPort 0: a dynamic host port, so several tasks of the app can share an instance.
        "portMappings": [{"containerPort": spec.port, "hostPort": 0, "protocol": "tcp"}],
        "environment": [{"name": k, "value": v} for k, v in sorted(spec.environment.items())],
        "secrets": [{"name": k, "valueFrom": v} for k, v in sorted(spec.secrets.items())],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": spec.log_group,
                "awslogs-region": spec.region,
                "awslogs-stream-prefix": "app",
            },
        },
    }
    if spec.health_check_path:
        container["healthCheck"] = health_check(spec.port, spec.health_check_path)
    if spec.command:
        container["command"] = ["sh", "-c", spec.command]
    return container


def _tags(access: AccountAccess, arn: str) -> dict[str, str]:
    described = client(access, "ecs").describe_task_definition(taskDefinition=arn, include=["TAGS"])
    return ownership.tag_map(described.get("tags"))


def _registered_for_release(access: AccountAccess, spec: TaskDefinitionSpec) -> str | None:
    """The family's newest revision if we registered it for this release (a crashed re-run)."""
    arns = client(access, "ecs").list_task_definitions(
        familyPrefix=spec.family, sort="DESC", maxResults=1
    )["taskDefinitionArns"]
    if not arns:
        return None
    tags = _tags(access, arns[0])
    mine = tags.get(RELEASE_TAG) == str(spec.release_id) and ownership.is_ours(tags, spec.tags)
    return arns[0] if mine else None


def register(access: AccountAccess, spec: TaskDefinitionSpec) -> str:
    """Register the release's revision (or adopt the one a crashed run registered); its ARN."""
    existing = _registered_for_release(access, spec)
    if existing:
        return existing
    ensure_log_group(access, spec.log_group)
    tags = {**spec.tags, RELEASE_TAG: str(spec.release_id)}
    registered = client(access, "ecs").register_task_definition(
        family=spec.family,
        networkMode="bridge",
        requiresCompatibilities=["EC2"],
        cpu=str(spec.cpu),
        memory=str(spec.memory),
        executionRoleArn=spec.execution_role_arn,
        containerDefinitions=[_container(spec)],
        tags=[{"key": k, "value": v} for k, v in tags.items()],
    )
    return str(registered["taskDefinition"]["taskDefinitionArn"])


def is_active(access: AccountAccess, arn: str) -> bool:
    try:
        described = client(access, "ecs").describe_task_definition(taskDefinition=arn)
    except ClientError as error:
        if error.response["Error"]["Code"] in ("ClientException", "InvalidParameterException"):
            return False
        raise
    return bool(described["taskDefinition"]["status"] == "ACTIVE")


def deregister_family(access: AccountAccess, family: str, owner: dict[str, str]) -> int:
    """Deregister every ACTIVE revision of `family` that carries `owner`'s tags (app teardown;
    others are left alone); how many there were."""
    ecs = client(access, "ecs")
    arns: list[str] = []
    for page in ecs.get_paginator("list_task_definitions").paginate(
        familyPrefix=family, status="ACTIVE"
    ):
        arns.extend(page["taskDefinitionArns"])
    ours = [arn for arn in arns if ownership.is_ours(_tags(access, arn), owner)]
    for arn in ours:
        ecs.deregister_task_definition(taskDefinition=arn)
    return len(ours)


def delete_log_group(access: AccountAccess, name: str) -> None:
    try:
        client(access, "logs").delete_log_group(logGroupName=name)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceNotFoundException":
            raise

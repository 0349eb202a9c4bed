"""Reading rollouts: one DescribeServices per 10 services, and what it says about a deployment.

A deployment is judged by its own ECS deployment (id and task definition), never by "the service
looks stable": the AWS waiter calls a circuit-breaker rollback that settled a success.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from deployments.aws.clients import AccountAccess, client

DESCRIBE_BATCH = 10  # DescribeServices takes at most 10 services
DESCRIBE_TASKS_BATCH = 100  # DescribeTasks takes at most 100 tasks
# How ECS words the stop of a task a rolling update or a scale-in no longer needed.
SCALED_IN = "Scaling activity initiated by"


@dataclass(frozen=True)
class EcsDeployment:
    id: str
    status: str  # PRIMARY | ACTIVE | INACTIVE
    task_definition: str
    rollout_state: str
    reason: str
    desired: int
    running: int
    pending: int
    failed: int


@dataclass(frozen=True)
class EcsEvent:
    id: str
    at: datetime
    message: str


@dataclass(frozen=True)
class ServiceView:
    name: str
    deployments: list[EcsDeployment]
    events: list[EcsEvent] = field(default_factory=list)

    def deployment(self, deployment_id: str) -> EcsDeployment | None:
        return next((d for d in self.deployments if d.id == deployment_id), None)

    @property
    def primary(self) -> EcsDeployment | None:
        return next((d for d in self.deployments if d.status == "PRIMARY"), None)


def _batches(names: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(names), size):
        yield names[start : start + size]


def _view(service: dict[str, Any]) -> ServiceView:
    return ServiceView(
        name=service["serviceName"],
        deployments=[
            EcsDeployment(
                id=d["id"],
                status=d["status"],
                task_definition=d["taskDefinition"],
                rollout_state=d.get("rolloutState", ""),
                reason=d.get("rolloutStateReason", ""),
                desired=d.get("desiredCount", 0),
                running=d.get("runningCount", 0),
                pending=d.get("pendingCount", 0),
                failed=d.get("failedTasks", 0),
            )
            for d in service.get("deployments", [])
        ],
        events=[EcsEvent(e["id"], e["createdAt"], e["message"]) for e in service.get("events", [])],
    )


def describe(access: AccountAccess, cluster: str, names: list[str]) -> dict[str, ServiceView]:
    """Every named service of one cluster, in ceil(n / 10) calls."""
    ecs = client(access, "ecs")
    views: dict[str, ServiceView] = {}
    for batch in _batches(sorted(set(names)), DESCRIBE_BATCH):
        for service in ecs.describe_services(cluster=cluster, services=batch)["services"]:
            views[service["serviceName"]] = _view(service)
    return views


def healthy_tasks(
    access: AccountAccess, cluster: str, deployment_id: str, task_definition: str, checked: bool
) -> int:
    """How many tasks of one ECS deployment run `task_definition` and are healthy: HEALTHY when
    the container has a health check (`checked`), else simply RUNNING (ECS reports UNKNOWN)."""
    ecs = client(access, "ecs")
    arns: list[str] = []
    # ECS sets a service task's startedBy to its deployment's id; startedBy must be the only filter.
    for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster, startedBy=deployment_id):
        arns.extend(page["taskArns"])
    healthy = {"HEALTHY"} if checked else {"HEALTHY", "UNKNOWN"}
    count = 0
    for batch in _batches(arns, DESCRIBE_TASKS_BATCH):
        for task in ecs.describe_tasks(cluster=cluster, tasks=batch)["tasks"]:
            count += (
                task.get("lastStatus") == "RUNNING"
                and task.get("taskDefinitionArn") == task_definition
                and task.get("healthStatus", "UNKNOWN") in healthy
            )
    return count


@dataclass(frozen=True)
class Stopped:
    """The ECS deployment's tasks that stopped other than by scaling in."""

    failed: int
    latest_reason: str  # "" if none


def stopped_tasks(access: AccountAccess, cluster: str, deployment_id: str) -> Stopped:
    """How many of the ECS deployment's tasks failed, and why the latest stopped. ECS says why on
    the task only — its service events say "tasks failed to start" — and keeps stopped tasks for
    about an hour, also after it drops the deployment itself; one page of them (100) tells."""
    ecs = client(access, "ecs")
    # ECS sets a service task's startedBy to its deployment's id.
    arns = ecs.list_tasks(cluster=cluster, startedBy=deployment_id, desiredStatus="STOPPED")[
        "taskArns"
    ]
    if not arns:
        return Stopped(0, "")
    failed = [
        task
        for task in ecs.describe_tasks(cluster=cluster, tasks=arns[:DESCRIBE_TASKS_BATCH])["tasks"]
        if task.get("stoppedReason") and not task["stoppedReason"].startswith(SCALED_IN)
    ]
    if not failed:
        return Stopped(0, "")
    latest = max(failed, key=lambda task: task.get("stoppedAt") or task["createdAt"])
    return Stopped(len(failed), str(latest["stoppedReason"]))


@dataclass(frozen=True)
class Assessment:
    """Where one deployment stands: in_progress, succeeded, failed or rolled_back."""

    outcome: str
    reason: str = ""
    rollout_state: str = ""
    desired: int = 0
    running: int = 0
    pending: int = 0
    failed: int = 0


def _revision(task_definition: str) -> str:
    return task_definition.rsplit("/", 1)[-1]


def _failure_reported(view: ServiceView, deployment_id: str) -> bool:
    """ECS's event "(deployment ecs-svc/…) deployment failed: …" for this deployment."""
    return any(f"(deployment {deployment_id}) deployment failed" in e.message for e in view.events)


def assess(
    view: ServiceView | None, deployment_id: str, task_definition: str, last_rollout_state: str
) -> Assessment:
    """Judge our deployment from what DescribeServices said about its service."""
    if view is None:
        return Assessment("failed", "The ECS service no longer exists.")
    ours = view.deployment(deployment_id)
    primary = view.primary
    rolled_back_to = (
        primary.task_definition
        if primary and primary.id != deployment_id and primary.task_definition != task_definition
        else None
    )
    if ours is None:
        # Drained away: ECS replaced it. Rolled back if it had failed — as we saw on an earlier
        # tick, or as the service's events say when the rollback was over before we looked.
        if rolled_back_to and (
            last_rollout_state == "FAILED" or _failure_reported(view, deployment_id)
        ):
            return Assessment(
                "rolled_back", f"ECS rolled back to {_revision(rolled_back_to)}.", "FAILED"
            )
        return Assessment("failed", "ECS replaced this deployment with another one.")

    def judged(outcome: str, reason: str) -> Assessment:
        return Assessment(
            outcome, reason, ours.rollout_state, ours.desired, ours.running, ours.pending,
            ours.failed,
        )  # fmt: skip

    if ours.rollout_state == "FAILED":
        if rolled_back_to:
            return judged(
                "rolled_back", f"{ours.reason} ECS rolled back to {_revision(rolled_back_to)}."
            )
        return judged("failed", ours.reason or "ECS marked the deployment failed.")
    completed = ours.rollout_state == "COMPLETED" and ours.status == "PRIMARY"
    if completed and ours.running >= ours.desired:
        return judged("succeeded", ours.reason)
    return judged("in_progress", ours.reason)

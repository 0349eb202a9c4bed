"""ECS services: create one per app on its first deploy, update it for every later one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deployments.aws import ownership
from deployments.aws.clients import AccountAccess, client

# Tasks spread over Availability Zones first, then over instances within a zone.
PLACEMENT = [
    {"type": "spread", "field": "attribute:ecs.availability-zone"},
    {"type": "spread", "field": "instanceId"},
]


@dataclass(frozen=True)
class ServiceSpec:
    cluster: str
    name: str
    task_definition: str
    desired_count: int
    min_healthy_percent: int
    max_percent: int
    circuit_breaker: bool
    capacity_provider: str
    # Put on the service, and required of one found under its name (ownership.is_ours).
    tags: dict[str, str]


@dataclass(frozen=True)
class Started:
    """What a create or update started: the ECS deployment to follow (or that already runs)."""

    service_arn: str
    deployment_id: str
    already_running: bool = False


def deployment_configuration(spec: ServiceSpec) -> dict[str, Any]:
    return {
        "minimumHealthyPercent": spec.min_healthy_percent,
        "maximumPercent": spec.max_percent,
        "deploymentCircuitBreaker": {
            "enable": spec.circuit_breaker,
            "rollback": spec.circuit_breaker,
        },
    }


def find(
    access: AccountAccess, cluster: str, name: str, owner: dict[str, str]
) -> dict[str, Any] | None:
    """The service if it exists and is not being deleted; NotOurs if it lacks `owner`'s tags."""
    services = client(access, "ecs").describe_services(
        cluster=cluster, services=[name], include=["TAGS"]
    )
    live = [s for s in services["services"] if s["status"] == "ACTIVE"]
    return ownership.first_ours("ECS service", name, live, owner)


def primary(service: dict[str, Any]) -> dict[str, Any]:
    return next(d for d in service["deployments"] if d["status"] == "PRIMARY")


def create(access: AccountAccess, spec: ServiceSpec, client_token: str) -> Started:
    """CreateService; `client_token` makes a retried create return the same service."""
    service = client(access, "ecs").create_service(
        cluster=spec.cluster,
        serviceName=spec.name,
        taskDefinition=spec.task_definition,
        desiredCount=spec.desired_count,
        schedulingStrategy="REPLICA",
        placementStrategy=PLACEMENT,
        capacityProviderStrategy=[{"capacityProvider": spec.capacity_provider, "weight": 1}],
        deploymentConfiguration=deployment_configuration(spec),
        deploymentController={"type": "ECS"},
        clientToken=client_token[:36],
        enableECSManagedTags=True,
        propagateTags="SERVICE",
        tags=[{"key": k, "value": v} for k, v in spec.tags.items()],
    )["service"]
    return Started(service["serviceArn"], primary(service)["id"])


def update(access: AccountAccess, spec: ServiceSpec, service: dict[str, Any]) -> Started:
    """UpdateService to the spec's task definition, unless the PRIMARY already runs it.

    UpdateService has no client token, so reading first is what makes a re-run safe. The desired
    count is left alone: autoscaling may have chosen it.
    """
    current = primary(service)
    if current["taskDefinition"] == spec.task_definition:
        return Started(service["serviceArn"], current["id"], already_running=True)
    updated = client(access, "ecs").update_service(
        cluster=spec.cluster,
        service=spec.name,
        taskDefinition=spec.task_definition,
        deploymentConfiguration=deployment_configuration(spec),
    )["service"]
    return Started(updated["serviceArn"], primary(updated)["id"])


def set_desired_count(access: AccountAccess, cluster: str, name: str, count: int) -> None:
    client(access, "ecs").update_service(cluster=cluster, service=name, desiredCount=count)


def delete(access: AccountAccess, cluster: str, name: str) -> None:
    """Scale to zero and delete the service (ECS drains its tasks); the caller found it ours."""
    ecs = client(access, "ecs")
    ecs.update_service(cluster=cluster, service=name, desiredCount=0)
    ecs.delete_service(cluster=cluster, service=name, force=True)

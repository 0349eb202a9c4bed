"""ECS service bookkeeping moto does not do: deployments, their configuration, service events.

moto serialises its model objects by attribute name, so a field stored on a `Service` under the
snake_case form of the API name (`deployment_configuration`, …) is returned like any other.
"""

from __future__ import annotations

import uuid
from typing import Any

from moto.core.utils import utcnow
from moto.ecs.models import EC2ContainerServiceBackend, Service
from moto.moto_api._internal import mock_random

from deployments.sandbox.state import ServiceSim, state_of

DEFAULT_DEPLOYMENT_CONFIGURATION: dict[str, Any] = {
    "deploymentCircuitBreaker": {"enable": False, "rollback": False},
    "maximumPercent": 200,
    "minimumHealthyPercent": 100,
}
# ECS's "AZ balanced spread", which the console also defaults to.
DEFAULT_PLACEMENT_STRATEGY: list[dict[str, str]] = [
    {"type": "spread", "field": "attribute:ecs.availability-zone"},
    {"type": "spread", "field": "instanceId"},
]
MAX_EVENTS = 100  # DescribeServices returns the 100 most recent events


def set_fields(obj: object, **fields: Any) -> None:
    """Set response fields moto's models do not declare; its serializer finds them by name."""
    vars(obj).update(fields)


def deployment_configuration(service: Service) -> dict[str, Any]:
    config: dict[str, Any] = vars(service).get("deployment_configuration") or {}
    return config


def placement_strategy(service: Service) -> list[dict[str, str]]:
    strategy: list[dict[str, str]] = vars(service).get("placement_strategy") or []
    return strategy or DEFAULT_PLACEMENT_STRATEGY


def capacity_provider_strategy(service: Service) -> list[dict[str, Any]]:
    strategy: list[dict[str, Any]] = vars(service).get("capacity_provider_strategy") or []
    return strategy


def new_deployment_id() -> str:
    return f"ecs-svc/{mock_random.randint(10**18, 10**19 - 1)}"


def add_event(service: Service, message: str) -> None:
    """Record a service event, newest first like ECS."""
    service.events.insert(
        0,
        {
            "id": str(uuid.uuid4()),
            "createdAt": utcnow(),
            "message": f"(service {service.name}) {message}",
        },
    )
    del service.events[MAX_EVENTS:]


def start_deployment(
    service: Service, task_definition_arn: str, reason: str = ""
) -> dict[str, Any]:
    """Make a new PRIMARY deployment; the previous ones become ACTIVE and drain."""
    for older in service.deployments:
        older["status"] = "ACTIVE"
        older["desiredCount"] = 0
    deployment_id = new_deployment_id()
    now = utcnow()
    deployment: dict[str, Any] = {
        "id": deployment_id,
        "status": "PRIMARY",
        "taskDefinition": task_definition_arn,
        "desiredCount": service.desired_count,
        "pendingCount": 0,
        "runningCount": 0,
        "failedTasks": 0,
        "createdAt": now,
        "updatedAt": now,
        "rolloutState": "IN_PROGRESS",
        "rolloutStateReason": reason or f"ECS deployment {deployment_id} in progress.",
    }
    if strategy := capacity_provider_strategy(service):
        deployment["capacityProviderStrategy"] = strategy
    else:
        deployment["launchType"] = service.launch_type
    if service.network_configuration:
        deployment["networkConfiguration"] = service.network_configuration
    service.deployments.insert(0, deployment)
    service.task_definition = task_definition_arn
    return deployment


def service_created(
    backend: EC2ContainerServiceBackend,
    service: Service,
    *,
    launch_type: str | None,
    deployment_config: dict[str, Any] | None,
    placement: list[dict[str, str]] | None,
    capacity_providers: list[dict[str, Any]] | None,
    client_token: str | None,
) -> None:
    """Finish what moto's CreateService leaves out: configuration kept, a real first deployment."""
    if not capacity_providers and not launch_type:
        # Like ECS: with neither given, the cluster's default capacity provider strategy applies.
        cluster = backend.clusters[service.cluster_name]
        capacity_providers = cluster.default_capacity_provider_strategy
    set_fields(
        service,
        deployment_configuration={**DEFAULT_DEPLOYMENT_CONFIGURATION, **(deployment_config or {})},
        placement_strategy=placement or None,  # None: ECS leaves out what was not given
        capacity_provider_strategy=capacity_providers or None,
        created_at=utcnow(),
    )
    if capacity_providers:
        service.launch_type = None  # ECS reports one or the other
    service.running_count = service.pending_count = 0
    service.deployments = []
    state_of(backend).services[service.arn] = ServiceSim(client_token=client_token)
    if service.task_definition:
        start_deployment(service, service.task_definition)


def service_updated(
    backend: EC2ContainerServiceBackend,
    service: Service,
    *,
    task_definition: str | None,
    desired_count: int | None,
    deployment_config: dict[str, Any] | None,
    placement: list[dict[str, str]] | None,
    capacity_providers: list[dict[str, Any]] | None,
    force_new_deployment: bool,
) -> None:
    """UpdateService as ECS does it: a new task definition or a forced one starts a deployment."""
    if desired_count is not None:
        service.desired_count = desired_count
        if service.deployments:
            service.deployments[0]["desiredCount"] = desired_count
    if deployment_config is not None:
        set_fields(
            service,
            deployment_configuration={**deployment_configuration(service), **deployment_config},
        )
    if placement is not None:
        set_fields(service, placement_strategy=placement)
    if capacity_providers is not None:
        set_fields(service, capacity_provider_strategy=capacity_providers)
        service.launch_type = None
    # ECS stores the full ARN whether it was given a family, family:revision or an ARN.
    new_arn = backend.describe_task_definition(task_definition).arn if task_definition else None
    if (new_arn and new_arn != service.task_definition) or force_new_deployment:
        start_deployment(service, new_arn or service.task_definition or "")

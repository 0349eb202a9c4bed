"""Service tasks: how they start, run, fail and stop, with the resources they hold on an instance.

Failure injection: an image whose tag contains `crashloop` or `unhealthy` (`nginx:crashloop`), or a
container environment variable SANDBOX_FAILURE with one of those words, makes every task of that
task definition fail the way such tasks fail on ECS.
"""

from __future__ import annotations

import random
from typing import Any

from moto.core.utils import utcnow
from moto.ecs.models import (
    Cluster,
    Container,
    ContainerInstance,
    EC2ContainerServiceBackend,
    Service,
    Task,
    TaskDefinition,
)
from moto.moto_api._internal import mock_random

from deployments.sandbox import placement
from deployments.sandbox.ecs_services import capacity_provider_strategy, set_fields
from deployments.sandbox.state import SandboxState, TaskSim, state_of

HEALTHY = "healthy"
CRASHLOOP = "crashloop"  # the essential container exits before the task reaches RUNNING
UNHEALTHY = "unhealthy"  # the task runs but fails its container health check
ESSENTIAL_CONTAINER_EXITED = "Essential container in task exited"
FAILED_HEALTH_CHECKS = "Task failed container health checks"
STOPPED_TASK_RETENTION_SECONDS = 3600  # ECS shows stopped tasks for about an hour
# ECS: a task waits in PROVISIONING for capacity for 10 to 30 minutes, then stops. The reason is
# the sandbox's wording: ECS's own for this stop was not found documented.
PROVISIONING_TIMEOUT_SECONDS = 30 * 60
PROVISIONING_TIMED_OUT = "Timed out waiting for capacity in PROVISIONING"


def draining_reason(service_name: str) -> str:
    """The stop reason of a service task moved off a DRAINING container instance."""
    return f"Service {service_name}: container instance is in DRAINING state"


def fate(task_definition: TaskDefinition) -> str:
    containers: list[dict[str, Any]] = task_definition.container_definitions
    for container in containers:
        image = str(container.get("image", ""))
        name_and_tag = image.split("@")[0].rsplit("/", 1)[-1]
        markers = [name_and_tag.partition(":")[2]] + [
            str(variable.get("value", ""))
            for variable in container.get("environment") or []
            if variable.get("name") == "SANDBOX_FAILURE"
        ]
        for failure in (CRASHLOOP, UNHEALTHY):
            if any(failure in marker for marker in markers):
                return failure
    return HEALTHY


def is_pending(task: Task) -> bool:
    return task.last_status in ("PROVISIONING", "PENDING")


def is_healthy(task: Task) -> bool:
    """Counts toward minimumHealthyPercent: RUNNING and not failing its health check."""
    return task.last_status == "RUNNING" and vars(task).get("health_status") != "UNHEALTHY"


def start_task(
    backend: EC2ContainerServiceBackend,
    cluster: Cluster,
    service: Service,
    deployment_id: str,
    task_definition: TaskDefinition,
    instance: ContainerInstance | None,
    rng: random.Random,
) -> Task:
    """A new service task, PENDING on `instance`; without one it waits in PROVISIONING while
    cluster auto scaling adds capacity."""
    requirements = backend._calculate_task_resource_requirements(task_definition)
    strategy = capacity_provider_strategy(service)
    task = Task(
        cluster,
        task_definition,
        None,
        requirements,  # hold_resources adds the host ports once the task is placed
        backend=backend,
        group=f"service:{service.name}",
        launch_type=service.launch_type or "",
        started_by=deployment_id,  # as on ECS: the id of the deployment that started the task
        tags=service.tags if service.propagate_tags == "SERVICE" else task_definition.tags,
        networking_configuration=service.network_configuration or None,
        capacity_provider_name=strategy[0]["capacityProvider"] if strategy else None,
    )
    task.id = mock_random.uuid4().hex  # ECS task ids are 32 hex digits
    task.last_status = "PROVISIONING"
    set_fields(
        task,
        created_at=utcnow(),
        cpu=task_definition.cpu,
        memory=task_definition.memory,
        health_status="UNKNOWN",
    )
    backend.tasks.setdefault(cluster.name, {})[task.task_arn] = task
    state = state_of(backend)
    state.tasks[task.task_arn] = TaskSim(
        deployment_id=deployment_id,
        fate=fate(task_definition),
        ticks_to_start=rng.randint(1, 3),
        created_at=state.clock,
    )
    if instance is not None:
        place_task(backend, task, task_definition, instance)
    return task


def place_task(
    backend: EC2ContainerServiceBackend,
    task: Task,
    task_definition: TaskDefinition,
    instance: ContainerInstance,
) -> None:
    """Put the task on the instance, which holds its resources: it is PENDING there."""
    task.container_instance_arn = instance.container_instance_arn
    task.last_status = "PENDING"
    set_fields(task, availability_zone=instance.attributes.get("ecs.availability-zone"))
    hold_resources(backend, task, task_definition, instance)


def hold_resources(
    backend: EC2ContainerServiceBackend,
    task: Task,
    task_definition: TaskDefinition,
    instance: ContainerInstance,
) -> None:
    """Reserve the task's CPU, memory and host ports on its instance, its dynamic ports chosen
    now and reported as its containers' networkBindings; `stop_task` gives them all back."""
    bindings = placement.network_bindings(task_definition, instance)
    requirements = {
        **backend._calculate_task_resource_requirements(task_definition),
        "PORTS": [binding["hostPort"] for container in bindings for binding in container],
    }
    task.resource_requirements = requirements
    backend.update_container_instance_resources(instance, requirements)
    task.containers = _containers(task, task_definition, bindings)


def _containers(
    task: Task, task_definition: TaskDefinition, bindings: list[list[dict[str, Any]]]
) -> list[Container]:
    """One container per container definition; moto makes one, from the first definition, and
    gives it the task definition's ARN as its task's."""
    containers = []
    definitions: list[dict[str, Any]] = task_definition.container_definitions
    for definition, container_bindings in zip(definitions, bindings, strict=True):
        container = Container(task_definition)  # type: ignore[abstract]  # as moto makes them
        container.task_arn = task.task_arn
        container.name = definition.get("name")
        container.image = definition.get("image")
        container.cpu = definition.get("cpu", 0)
        container.memory = definition.get("memory")
        container.environment = definition.get("environment")
        container.command = definition.get("command")
        set_fields(container, network_bindings=container_bindings)
        containers.append(container)
    return containers


def mark_running(task: Task, health_status: str) -> None:
    task.last_status = "RUNNING"
    set_fields(task, started_at=utcnow(), pull_started_at=utcnow(), health_status=health_status)
    for container in task.containers:
        container.last_status = "RUNNING"
        container.health_status = health_status


def stop_task(
    backend: EC2ContainerServiceBackend,
    task: Task,
    reason: str,
    stop_code: str = "ServiceSchedulerInitiated",
    exit_code: int | None = None,
) -> None:
    """Stop a task and give its CPU, memory and ports back to its instance."""
    instances = backend.container_instances.get(task.cluster_name, {})
    instance = instances.get((task.container_instance_arn or "").split("/")[-1])
    if instance is not None and task.resource_requirements:
        backend.update_container_instance_resources(
            instance, task.resource_requirements, removing=True
        )
    now = utcnow()
    task.last_status = task.desired_status = "STOPPED"
    task.stopped_reason = reason
    set_fields(task, stop_code=stop_code, stopping_at=now, stopped_at=now, execution_stopped_at=now)
    for container in task.containers:
        container.last_status = "STOPPED"
        if exit_code is not None:
            container.exitCode = exit_code
    state = state_of(backend)
    state.tasks.pop(task.task_arn, None)
    state.stopped_at[task.task_arn] = state.clock


def stop_pending_service_tasks(
    backend: EC2ContainerServiceBackend, instance: ContainerInstance
) -> None:
    """Draining: ECS stops the instance's PENDING service tasks at once (the service scheduler
    replaces its RUNNING ones within the deployment configuration)."""
    for task in list(backend.tasks.get(instance.cluster_name, {}).values()):
        if (
            task.container_instance_arn == instance.container_instance_arn
            and task.group.startswith("service:")
            and task.desired_status == "RUNNING"
            and is_pending(task)
        ):
            stop_task(backend, task, draining_reason(task.group.removeprefix("service:")))


def forget_old_stopped_tasks(backend: EC2ContainerServiceBackend, state: SandboxState) -> None:
    for arn, stopped_at in list(state.stopped_at.items()):
        if state.clock - stopped_at > STOPPED_TASK_RETENTION_SECONDS:
            del state.stopped_at[arn]
            for cluster_tasks in backend.tasks.values():
                cluster_tasks.pop(arn, None)


def container_health_status(task_definition: TaskDefinition) -> str:
    """HEALTHY once running if a container defines a health check; ECS says UNKNOWN otherwise."""
    has_check = any(c.get("healthCheck") for c in task_definition.container_definitions)
    return "HEALTHY" if has_check else "UNKNOWN"

"""Task placement like ECS's: resources and ports checked per instance, then the service's strategy.

moto places tasks on the first instance that fits; ECS filters the ACTIVE container instances by
CPU, memory and ports, then applies the placement strategies in order (spread, binpack, random),
each one narrowing the candidates the next one chooses among. A placed task's dynamic host ports
are chosen on its instance (`network_bindings`).
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from moto.ecs.models import ContainerInstance, Task, TaskDefinition

TROUBLESHOOTING = (
    "For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
)
# What an instance lacks, as the service event words it; RunTask's failures say RESOURCE:<key>.
SHORTFALLS = {
    "CPU": "has insufficient CPU units available",
    "MEMORY": "has insufficient memory available",
    "PORTS": "is already using a port required by your task",
}
# The ECS agent's dynamic host ports on Linux (the kernel's ip_local_port_range).
EPHEMERAL_PORTS = range(32768, 61000)


class NoPlacement(Exception):
    """No container instance can take the task; the message is ECS's service event."""


def remaining(instance: ContainerInstance, resource: str) -> Any:
    for entry in instance.remaining_resources:
        if entry["name"] == resource:
            return (
                entry["stringSetValue"] if entry["type"] == "STRINGSET" else entry["integerValue"]
            )
    return 0


def shortfall(instance: ContainerInstance, requirements: dict[str, Any]) -> str | None:
    """The resource (a key of SHORTFALLS) this instance lacks for the task, or None if it fits."""
    if requirements["CPU"] > remaining(instance, "CPU"):
        return "CPU"
    if requirements["MEMORY"] > remaining(instance, "MEMORY"):
        return "MEMORY"
    if any(str(port) in remaining(instance, "PORTS") for port in requirements["PORTS"]):
        return "PORTS"
    return None


def run_task_failures(
    instances: list[ContainerInstance], requirements: dict[str, Any]
) -> list[dict[str, str]]:
    """RunTask's `failures` when not every task was placed: each ACTIVE instance and what it
    lacks for one more."""
    return [
        {"arn": instance.container_instance_arn, "reason": f"RESOURCE:{lacking}"}
        for instance in instances
        if instance.status == "ACTIVE" and (lacking := shortfall(instance, requirements))
    ]


def network_bindings(
    task_definition: TaskDefinition, instance: ContainerInstance
) -> list[list[dict[str, Any]]]:
    """Each container's networkBindings on `instance`. A static host port is reported as given; a
    dynamic one (bridge mode, hostPort 0 or none) is the lowest port of the ephemeral range that
    neither the instance's live tasks nor this task hold. awsvpc tasks bind no host port."""
    containers: list[dict[str, Any]] = task_definition.container_definitions
    mappings = [c.get("portMappings") or [] for c in containers]
    if task_definition.network_mode == "awsvpc":
        return [[] for _ in containers]
    host_mode = task_definition.network_mode == "host"
    static = {
        str(port)
        for c in mappings
        for m in c
        if (port := m["containerPort"] if host_mode else m.get("hostPort"))
    }
    taken = set(remaining(instance, "PORTS")) | static
    free = (port for port in EPHEMERAL_PORTS if str(port) not in taken)
    return [
        [
            {
                "bindIP": "0.0.0.0",
                "containerPort": mapping["containerPort"],
                "hostPort": mapping["containerPort"]
                if host_mode
                else mapping.get("hostPort") or next(free),
                "protocol": mapping.get("protocol", "tcp"),
            }
            for mapping in container_mappings
        ]
        for container_mappings in mappings
    ]


def choose_instance(
    instances: list[ContainerInstance],
    requirements: dict[str, Any],
    strategy: list[dict[str, str]],
    service_tasks: list[Task],
    rng: random.Random,
) -> ContainerInstance:
    active = sorted(
        (instance for instance in instances if instance.status == "ACTIVE"),
        key=lambda instance: instance.ec2_instance_id,
    )
    if not active:
        raise NoPlacement(
            "was unable to place a task because no container instance met all of its requirements. "
            f"Reason: No Container Instances were found in your cluster. {TROUBLESHOOTING}"
        )
    candidates = [instance for instance in active if shortfall(instance, requirements) is None]
    if not candidates:
        closest = max(active, key=lambda instance: remaining(instance, "MEMORY"))
        lacking = shortfall(closest, requirements)
        assert lacking is not None  # no instance is a candidate
        raise NoPlacement(
            "was unable to place a task because no container instance met all of its "
            f"requirements. The closest matching container-instance {closest.id} "
            f"{SHORTFALLS[lacking]}. {TROUBLESHOOTING}"
        )
    by_arn = {instance.container_instance_arn: instance for instance in active}
    hosts = [
        by_arn[t.container_instance_arn]
        for t in service_tasks
        if t.container_instance_arn in by_arn
    ]
    for step in strategy:
        candidates = _apply(step, candidates, hosts, rng)
    return candidates[0]


def _apply(
    step: dict[str, str],
    candidates: list[ContainerInstance],
    hosts: list[ContainerInstance],
    rng: random.Random,
) -> list[ContainerInstance]:
    """One placement strategy step; `hosts` has the instance of each of the service's tasks."""
    field = step.get("field", "")
    if step["type"] == "spread":
        tasks_per_value = Counter(_value(host, field) for host in hosts)
        fewest = min(tasks_per_value[_value(instance, field)] for instance in candidates)
        return [c for c in candidates if tasks_per_value[_value(c, field)] == fewest]
    if step["type"] == "binpack":
        resource = "CPU" if field.lower() == "cpu" else "MEMORY"
        least = min(remaining(instance, resource) for instance in candidates)
        return [c for c in candidates if remaining(c, resource) == least]
    return [rng.choice(candidates)]  # random


def _value(instance: ContainerInstance, field: str) -> str:
    if field.lower() in ("instanceid", "host"):
        return instance.ec2_instance_id
    return str(instance.attributes.get(field.removeprefix("attribute:")))

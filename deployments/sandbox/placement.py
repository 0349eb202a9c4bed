"""Task placement like ECS's: resources and ports checked per instance, then the service's strategy.

moto places tasks on the first instance that fits; ECS filters the ACTIVE container instances by
CPU, memory and ports, then applies the placement strategies in order (spread, binpack, random),
each one narrowing the candidates the next one chooses among.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from moto.ecs.models import ContainerInstance, Task

TROUBLESHOOTING = (
    "For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
)


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
    """Why the task does not fit on this instance, worded as ECS words it, or None if it fits."""
    if requirements["CPU"] > remaining(instance, "CPU"):
        return "has insufficient CPU units available"
    if requirements["MEMORY"] > remaining(instance, "MEMORY"):
        return "has insufficient memory available"
    if any(str(port) in remaining(instance, "PORTS") for port in requirements["PORTS"]):
        return "is already using a port required by your task"
    return None


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
        raise NoPlacement(
            "was unable to place a task because no container instance met all of its "
            f"requirements. The closest matching container-instance {closest.id} "
            f"{shortfall(closest, requirements)}. {TROUBLESHOOTING}"
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

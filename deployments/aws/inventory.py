"""Reading a cluster's container instances: how many run in each availability zone, in which state,
and how much of their CPU and memory tasks hold.

ListContainerInstances pages at most 100 ARNs and DescribeContainerInstances takes at most 100, so
a cluster of n instances costs about 2 × ⌈n / 100⌉ calls (one, if it has none).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from itertools import batched
from typing import Any

from deployments.aws.clients import AccountAccess, client

LIST_PAGE_SIZE = 100  # ListContainerInstances' largest page
DESCRIBE_BATCH = 100  # DescribeContainerInstances takes at most 100 instances
ZONE_ATTRIBUTE = "ecs.availability-zone"  # set by the ECS agent when the instance registers


@dataclass(frozen=True)
class ZoneCapacity:
    """The container instances of one availability zone, summed."""

    zone: str
    instances: int  # registered with ECS, in any state
    active: int
    draining: int
    agents_connected: int
    cpu_registered: int  # CPU units (1024 = 1 vCPU)
    cpu_remaining: int
    memory_registered: int  # MiB
    memory_remaining: int
    running_tasks: int
    pending_tasks: int


def read(access: AccountAccess, cluster: str) -> list[ZoneCapacity]:
    """The cluster's container instances (every state but INACTIVE), per zone, zones sorted."""
    by_zone: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for instance in container_instances(access, cluster):
        by_zone[zone_of(instance)].append(instance)
    return [_zone(zone, by_zone[zone]) for zone in sorted(by_zone)]


def container_instances(access: AccountAccess, cluster: str) -> list[dict[str, Any]]:
    """The cluster's container instances in every state but INACTIVE, as ECS describes them."""
    ecs = client(access, "ecs")
    pages = ecs.get_paginator("list_container_instances").paginate(
        cluster=cluster, PaginationConfig={"PageSize": LIST_PAGE_SIZE}
    )
    arns = [arn for page in pages for arn in page["containerInstanceArns"]]
    return [
        instance
        for batch in batched(arns, DESCRIBE_BATCH)
        for instance in ecs.describe_container_instances(
            cluster=cluster, containerInstances=list(batch)
        )["containerInstances"]
    ]


def zone_of(instance: dict[str, Any]) -> str:
    """The instance's availability zone; "" when it has none (no EC2 instance lacks its zone)."""
    return next(
        (a.get("value", "") for a in instance.get("attributes", []) if a["name"] == ZONE_ATTRIBUTE),
        "",
    )


def _zone(zone: str, instances: list[dict[str, Any]]) -> ZoneCapacity:
    def total(resources: str, name: str) -> int:
        return sum(_resource(instance, resources, name) for instance in instances)

    return ZoneCapacity(
        zone=zone,
        instances=len(instances),
        active=sum(instance["status"] == "ACTIVE" for instance in instances),
        draining=sum(instance["status"] == "DRAINING" for instance in instances),
        agents_connected=sum(bool(instance.get("agentConnected")) for instance in instances),
        cpu_registered=total("registeredResources", "CPU"),
        cpu_remaining=total("remainingResources", "CPU"),
        memory_registered=total("registeredResources", "MEMORY"),
        memory_remaining=total("remainingResources", "MEMORY"),
        running_tasks=sum(instance.get("runningTasksCount", 0) for instance in instances),
        pending_tasks=sum(instance.get("pendingTasksCount", 0) for instance in instances),
    )


def _resource(instance: dict[str, Any], resources: str, name: str) -> int:
    return next(
        (int(r.get("integerValue", 0)) for r in instance.get(resources, []) if r["name"] == name), 0
    )

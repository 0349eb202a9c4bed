"""ECS cluster auto scaling: a capacity provider with managed scaling sizes its Auto Scaling group.

For a provider a cluster holds, ECS computes CapacityProviderReservation = M / N × 100, N the
group's instances and M the instances needed: those running a task plus enough new ones for the
tasks waiting in PROVISIONING. Above `targetCapacity` the group grows at once to M × 100 / target
(by at least minimumScalingStepSize and at most maximumScalingStepSize instances, within its
MaxSize); below it for the 15 minutes of ECS's low alarm the group shrinks to that size (within
its MinSize, step sizes do not apply). Which instances go is the group's choice, or, with managed
termination protection, only idle ones (`agent` releases them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup, autoscaling_backends
from moto.ecs.models import CapacityProvider, Cluster, EC2ContainerServiceBackend, Service

from deployments.sandbox import agent
from deployments.sandbox.capacity_providers import holding_cluster
from deployments.sandbox.ecs_services import capacity_provider_strategy
from deployments.sandbox.state import SandboxState, existing_backend

SCALE_IN_DELAY_SECONDS = 15 * 60  # ECS's low alarm: 15 one-minute datapoints below the target


def managed_scaling(provider: CapacityProvider) -> dict[str, Any] | None:
    """The provider's managed scaling settings, None unless it is ENABLED."""
    settings: dict[str, Any] = provider.auto_scaling_group_provider.get("managedScaling") or {}
    return settings if settings.get("status") == "ENABLED" else None


def provisions_capacity(backend: EC2ContainerServiceBackend, service: Service) -> bool:
    """Whether a task of the service that fits nowhere waits in PROVISIONING for new instances
    (the provider its tasks go to has managed scaling) rather than not being started."""
    strategy = capacity_provider_strategy(service)
    provider = backend._get_provider(strategy[0]["capacityProvider"]) if strategy else None
    return provider is not None and managed_scaling(provider) is not None


def evaluate(backend: EC2ContainerServiceBackend, state: SandboxState) -> None:
    auto_scaling = existing_backend(autoscaling_backends, backend)
    if auto_scaling is None:
        return
    for provider in backend.capacity_providers.values():
        settings = managed_scaling(provider)
        cluster = holding_cluster(backend, provider)
        group = _group(auto_scaling, provider)
        if settings is None or cluster is None or group is None:
            continue
        needed = instances_needed(backend, cluster, provider, group)
        wanted = math.ceil(needed * 100 / settings["targetCapacity"])
        _scale(state, provider, group, settings, wanted)


def _group(
    auto_scaling: AutoScalingBackend, provider: CapacityProvider
) -> FakeAutoScalingGroup | None:
    arn_or_name = provider.auto_scaling_group_provider.get("autoScalingGroupArn")
    return next(
        (
            group
            for group in auto_scaling.autoscaling_groups.values()
            if arn_or_name in (group.arn, group.name)
        ),
        None,
    )


def instances_needed(
    backend: EC2ContainerServiceBackend,
    cluster: Cluster,
    provider: CapacityProvider,
    group: FakeAutoScalingGroup,
) -> int:
    """M: the group's instances that run a task, plus the fewest new ones the tasks waiting in
    PROVISIONING for this provider would fit on."""
    members = {state.instance.id for state in group.instance_states}
    in_group = {
        instance.container_instance_arn
        for instance in backend.container_instances.get(cluster.name, {}).values()
        if instance.ec2_instance_id in members
    }
    live = [
        t for t in backend.tasks.get(cluster.name, {}).values() if t.desired_status == "RUNNING"
    ]
    busy = {t.container_instance_arn for t in live if t.container_instance_arn in in_group}
    waiting = [
        t.resource_requirements
        for t in live
        if t.last_status == "PROVISIONING" and t.capacity_provider_name == provider.name
    ]
    return len(busy) + _new_instances_for(waiting, agent.registered_capacity(group.instance_type))


@dataclass
class _Room:
    """What is left on one new instance as tasks are packed onto it."""

    cpu: int
    memory: int
    ports: set[str] = field(default_factory=set)

    def take(self, needs: dict[str, Any]) -> bool:
        ports = {str(port) for port in needs["PORTS"]}
        if needs["CPU"] > self.cpu or needs["MEMORY"] > self.memory or ports & self.ports:
            return False
        self.cpu -= needs["CPU"]
        self.memory -= needs["MEMORY"]
        self.ports |= ports
        return True


def _new_instances_for(waiting: list[Any], capacity: dict[str, int]) -> int:
    """First fit, largest first. A task bigger than an empty instance is left out: more
    instances of the group's type would not place it."""
    rooms: list[_Room] = []
    for needs in sorted(waiting, key=lambda n: (n["MEMORY"], n["CPU"]), reverse=True):
        if not _Room(capacity["CPU"], capacity["MEMORY"]).take(needs):
            continue
        if not any(room.take(needs) for room in rooms):
            room = _Room(capacity["CPU"], capacity["MEMORY"])
            room.take(needs)
            rooms.append(room)
    return len(rooms)


def _scale(
    state: SandboxState,
    provider: CapacityProvider,
    group: FakeAutoScalingGroup,
    settings: dict[str, Any],
    wanted: int,
) -> None:
    current = len(group.instance_states)
    if wanted > current:
        state.capacity_low_since.pop(provider.capacity_provider_arn, None)
        step = min(
            max(wanted - current, settings["minimumScalingStepSize"]),
            settings["maximumScalingStepSize"],
        )
        desired = min(current + step, group.max_size or 0)
        if desired > (group.desired_capacity or 0):
            group.set_desired_capacity(desired)
    elif wanted < current:
        low_since = state.capacity_low_since.setdefault(provider.capacity_provider_arn, state.clock)
        desired = max(wanted, group.min_size or 0)
        if state.clock - low_since >= SCALE_IN_DELAY_SECONDS and desired < (
            group.desired_capacity or 0
        ):
            state.capacity_low_since[provider.capacity_provider_arn] = state.clock
            group.set_desired_capacity(desired)
    else:
        state.capacity_low_since.pop(provider.capacity_provider_arn, None)

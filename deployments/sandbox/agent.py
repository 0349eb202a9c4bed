"""A fake ECS container agent: EC2 instances join the cluster their user data names, and leave it
when they are terminated.

The real agent reads ECS_CLUSTER from /etc/ecs/ecs.config, which user data usually
writes (`echo ECS_CLUSTER=name >> /etc/ecs/ecs.config`), and registers the instance with its CPU,
memory and Availability Zone.
"""

from __future__ import annotations

import re

from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup, autoscaling_backends
from moto.ec2.models import EC2Backend, ec2_backends
from moto.ec2.models.instances import Instance
from moto.ecs.models import ContainerInstance, EC2ContainerServiceBackend

from deployments.capacity import INSTANCE_TYPES
from deployments.sandbox.state import existing_backend
from deployments.sandbox.tasks import stop_task

ECS_CLUSTER = re.compile(r"ECS_CLUSTER=[\"']?([A-Za-z0-9_-]+)")
UNKNOWN_TYPE_CPU_UNITS = 2048
UNKNOWN_TYPE_MEMORY_MIB = 3700


def sync(backend: EC2ContainerServiceBackend) -> None:
    """One agent heartbeat for every instance in the backend's account and region."""
    ec2 = existing_backend(ec2_backends, backend)
    if ec2 is None:
        return
    auto_scaling = existing_backend(autoscaling_backends, backend)
    if auto_scaling is not None:
        _release_idle_protected_instances(backend, auto_scaling)
    _deregister_gone_instances(backend, ec2)
    _register_new_instances(backend, ec2)


def cluster_from_user_data(instance: Instance) -> str | None:
    if instance.user_data is None:
        return None
    try:
        match = ECS_CLUSTER.search(instance.user_data.decode())
    except UnicodeDecodeError:
        return None
    return match[1] if match else None


def _register_new_instances(backend: EC2ContainerServiceBackend, ec2: EC2Backend) -> None:
    registered = {
        instance.ec2_instance_id
        for instances in backend.container_instances.values()
        for instance in instances.values()
    }
    for instance in ec2.all_instances():
        cluster_name = cluster_from_user_data(instance)
        cluster = backend.clusters.get(cluster_name or "")
        if (
            instance.state == "running"
            and instance.id not in registered
            and cluster is not None
            and cluster.status == "ACTIVE"
        ):
            container_instance = backend.register_container_instance(cluster.name, instance.id)
            _set_capacity(container_instance, instance.instance_type)


def registered_capacity(instance_type: str) -> dict[str, int]:
    """The CPU units and memory an instance of this type registers with ECS."""
    known = INSTANCE_TYPES.get(instance_type)
    return {
        "CPU": known.cpu_units if known else UNKNOWN_TYPE_CPU_UNITS,
        "MEMORY": known.task_memory_mib if known else UNKNOWN_TYPE_MEMORY_MIB,
    }


def _set_capacity(container_instance: ContainerInstance, instance_type: str) -> None:
    capacity = registered_capacity(instance_type)
    for resources in (
        container_instance.registered_resources,
        container_instance.remaining_resources,
    ):
        for entry in resources:
            if entry["name"] in capacity:
                entry["integerValue"] = capacity[entry["name"]]


def _deregister_gone_instances(backend: EC2ContainerServiceBackend, ec2: EC2Backend) -> None:
    running = {instance.id for instance in ec2.all_instances() if instance.state == "running"}
    for cluster_name, instances in list(backend.container_instances.items()):
        if cluster_name not in backend.clusters:
            continue  # moto's "orphaned" pseudo-cluster
        for container_instance in list(instances.values()):
            if container_instance.ec2_instance_id in running:
                continue
            for task in backend.tasks.get(cluster_name, {}).values():
                if (
                    task.container_instance_arn == container_instance.container_instance_arn
                    and task.desired_status == "RUNNING"
                ):
                    reason = f"Host EC2 (instance {container_instance.ec2_instance_id}) terminated."
                    stop_task(backend, task, reason, stop_code="TerminationNotice")
            backend.deregister_container_instance(
                cluster_name, container_instance.container_instance_arn, force=True
            )


def _release_idle_protected_instances(
    backend: EC2ContainerServiceBackend, auto_scaling: AutoScalingBackend
) -> None:
    """Managed termination protection: when a group is above its desired capacity, ECS lifts the
    scale-in protection of instances that run no task so that the group can terminate them."""
    for group in list(auto_scaling.autoscaling_groups.values()):
        surplus = len(group.instance_states) - (group.desired_capacity or 0)
        if surplus <= 0 or not _managed_termination_protection(backend, group):
            continue
        busy = {
            instance.ec2_instance_id
            for instances in backend.container_instances.values()
            for instance in instances.values()
            if instance.running_tasks_count + instance.pending_tasks_count > 0
        }
        idle = [
            state
            for state in group.instance_states
            if state.protected_from_scale_in and state.instance.id not in busy
        ]
        for state in idle[:surplus]:
            state.protected_from_scale_in = False
        if idle:
            group.set_desired_capacity(group.desired_capacity)


def _managed_termination_protection(
    backend: EC2ContainerServiceBackend, group: FakeAutoScalingGroup
) -> bool:
    return any(
        provider.auto_scaling_group_provider.get("autoScalingGroupArn") in (group.arn, group.name)
        and provider.auto_scaling_group_provider.get("managedTerminationProtection") == "ENABLED"
        for provider in backend.capacity_providers.values()
    )

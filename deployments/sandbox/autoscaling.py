"""Simulated CPU load, its CloudWatch metric, and Application Auto Scaling target tracking on it.

The load set for a service (`set_cpu`) is demand: the utilisation it would show at the number of
tasks running when it was set. As tasks are added or removed the same demand is spread over them,
so target tracking settles the way it does on a real service. Like ECS, the sandbox publishes
`AWS/ECS CPUUtilization` once a simulated minute; the policies are evaluated every tick.
"""

from __future__ import annotations

import math
from typing import Any

from moto.applicationautoscaling.models import (
    FakeApplicationAutoscalingPolicy,
    applicationautoscaling_backends,
)
from moto.cloudwatch.models import cloudwatch_backends
from moto.core.utils import utcnow
from moto.ecs.models import EC2ContainerServiceBackend, Service

from deployments.sandbox.state import (
    SandboxState,
    ServiceSim,
    ecs_backends_in_use,
    existing_backend,
    state_of,
)

METRIC_PERIOD_SECONDS = 60.0
DEFAULT_COOLDOWN_SECONDS = 300  # Application Auto Scaling's default for ECS services
CPU_METRIC = "ECSServiceAverageCPUUtilization"
DESIRED_COUNT = "ecs:service:DesiredCount"


def set_cpu(cluster: str, service_name: str, percent: float, region: str | None = None) -> Service:
    """Set a service's average CPU utilisation, as seen at its current number of running tasks.

    Raises LookupError if no backend has that ACTIVE service (in that region)."""
    for backend in ecs_backends_in_use():
        service = backend.services.get(f"{cluster}:{service_name}")
        if (
            service is None
            or service.status != "ACTIVE"
            or region not in (None, backend.region_name)
        ):
            continue
        sim = state_of(backend).service(service.arn)
        sim.cpu_demand = percent / 100 * max(service.running_count, 1)
        sim.metric_published_at = None  # publish the new figure on the next tick
        return service
    raise LookupError(f"no ACTIVE service {service_name} in cluster {cluster}")


def cpu_utilization(service: Service, sim: ServiceSim) -> float | None:
    if sim.cpu_demand is None or service.running_count == 0:
        return None
    return sim.cpu_demand / service.running_count * 100


def evaluate(backend: EC2ContainerServiceBackend, state: SandboxState) -> None:
    for service in backend.services.values():
        sim = state.services.get(service.arn)
        utilization = cpu_utilization(service, sim) if sim else None
        if sim is None or utilization is None or service.status != "ACTIVE":
            continue
        _publish(backend, service, sim, utilization, state.clock)
        for policy in _cpu_policies(backend, service):
            _track_target(backend, service, sim, policy, utilization, state.clock)


def _publish(
    backend: EC2ContainerServiceBackend,
    service: Service,
    sim: ServiceSim,
    utilization: float,
    clock: float,
) -> None:
    if (
        sim.metric_published_at is not None
        and clock - sim.metric_published_at < METRIC_PERIOD_SECONDS
    ):
        return
    sim.metric_published_at = clock
    cloudwatch = cloudwatch_backends[backend.account_id][backend.region_name]
    cloudwatch.put_metric_data(
        "AWS/ECS",
        [
            {
                "MetricName": "CPUUtilization",
                "Dimensions": [
                    {"Name": "ClusterName", "Value": service.cluster_name},
                    {"Name": "ServiceName", "Value": service.name},
                ],
                "Timestamp": utcnow(),
                "Value": round(utilization, 2),
                "Unit": "Percent",
            }
        ],
    )


def _cpu_policies(
    backend: EC2ContainerServiceBackend, service: Service
) -> list[FakeApplicationAutoscalingPolicy]:
    scaling = existing_backend(applicationautoscaling_backends, backend)
    if scaling is None:
        return []
    resource_id = f"service/{service.cluster_name}/{service.name}"
    return [
        policy
        for policy in scaling.policies.values()
        if policy.service_namespace == "ecs"
        and policy.resource_id == resource_id
        and policy.scalable_dimension == DESIRED_COUNT
        and policy.policy_type == "TargetTrackingScaling"
        and _config(policy).get("PredefinedMetricSpecification", {}).get("PredefinedMetricType")
        == CPU_METRIC
    ]


def _config(policy: FakeApplicationAutoscalingPolicy) -> dict[str, Any]:
    return policy.target_tracking_scaling_policy_configuration or {}


def _track_target(
    backend: EC2ContainerServiceBackend,
    service: Service,
    sim: ServiceSim,
    policy: FakeApplicationAutoscalingPolicy,
    utilization: float,
    clock: float,
) -> None:
    """Like Application Auto Scaling: new = ceil(current × metric / target) within min and max;
    scale out unless in scale-out cooldown, scale in only after the scale-in cooldown."""
    scaling = applicationautoscaling_backends[backend.account_id][backend.region_name]
    target = scaling.targets.get(DESIRED_COUNT, {}).get(policy.resource_id)
    if target is None:
        return
    config = _config(policy)
    suspended: dict[str, Any] = (
        target.suspended_state if isinstance(target.suspended_state, dict) else {}
    )
    current = service.desired_count
    # Rounded first so that float noise (3.0000000001) does not add a task.
    wanted = math.ceil(round(current * utilization / float(config["TargetValue"]), 6))
    wanted = max(target.min_capacity or 0, min(target.max_capacity or wanted, wanted))
    if (
        wanted > current
        and not suspended.get("DynamicScalingOutSuspended")
        and _cooled_down(sim.scaled_out_at, config.get("ScaleOutCooldown"), clock)
    ):
        sim.scaled_out_at = clock
        service.desired_count = wanted
    elif (
        wanted < current
        and not suspended.get("DynamicScalingInSuspended")
        and not config.get("DisableScaleIn")
        and _cooled_down(sim.scaled_in_at, config.get("ScaleInCooldown"), clock)
    ):
        sim.scaled_in_at = clock
        service.desired_count = wanted


def _cooled_down(last: float | None, cooldown: float | None, clock: float) -> bool:
    if cooldown is None:
        cooldown = DEFAULT_COOLDOWN_SECONDS
    return last is None or clock - last >= cooldown

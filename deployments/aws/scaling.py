"""Service autoscaling: Application Auto Scaling target tracking on the service's average CPU."""

from __future__ import annotations

from deployments.aws.clients import AccountAccess, client

POLICY_NAME = "tinystacks-cpu-target"
DIMENSION = "ecs:service:DesiredCount"
SCALE_OUT_COOLDOWN = 60
SCALE_IN_COOLDOWN = 120


def resource_id(cluster: str, service: str) -> str:
    return f"service/{cluster}/{service}"


def track_cpu(
    access: AccountAccess, cluster: str, service: str, *, min_tasks: int, max_tasks: int,
    cpu_target: int,
) -> None:  # fmt: skip
    """Keep the service's average CPU near `cpu_target` % with between min and max tasks."""
    scaling = client(access, "application-autoscaling")
    scaling.register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=resource_id(cluster, service),
        ScalableDimension=DIMENSION,
        MinCapacity=min_tasks,
        MaxCapacity=max_tasks,
    )
    scaling.put_scaling_policy(
        PolicyName=POLICY_NAME,
        ServiceNamespace="ecs",
        ResourceId=resource_id(cluster, service),
        ScalableDimension=DIMENSION,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": float(cpu_target),
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "ECSServiceAverageCPUUtilization"
            },
            "ScaleOutCooldown": SCALE_OUT_COOLDOWN,
            "ScaleInCooldown": SCALE_IN_COOLDOWN,
        },
    )


def stop_tracking(access: AccountAccess, cluster: str, service: str) -> None:
    """Remove the scalable target (and so its policies), if there is one."""
    scaling = client(access, "application-autoscaling")
    targets = scaling.describe_scalable_targets(
        ServiceNamespace="ecs",
        ResourceIds=[resource_id(cluster, service)],
        ScalableDimension=DIMENSION,
    )["ScalableTargets"]
    if targets:
        scaling.deregister_scalable_target(
            ServiceNamespace="ecs",
            ResourceId=resource_id(cluster, service),
            ScalableDimension=DIMENSION,
        )


def desired_count(access: AccountAccess, cluster: str, service: str) -> int | None:
    """The desired count ECS holds now (autoscaling may have chosen it); None if no service."""
    services = client(access, "ecs").describe_services(cluster=cluster, services=[service])
    live = [s for s in services["services"] if s["status"] == "ACTIVE"]
    return int(live[0]["desiredCount"]) if live else None

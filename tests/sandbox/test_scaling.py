"""Simulated CPU load, its CloudWatch metric and target tracking on Application Auto Scaling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from deployments.sandbox import autoscaling
from deployments.sandbox.simulator import Simulator
from tests.sandbox.conftest import (
    Clients,
    SandboxCluster,
    create_service,
    describe,
    register_task_definition,
    rollout_state,
    tick_until,
)


def scale_on_cpu(clients: Clients, cluster: SandboxCluster, target: float = 50) -> None:
    scaling = clients.application_autoscaling
    resource_id = f"service/{cluster.name}/web"
    scaling.register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=resource_id,
        ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=1,
        MaxCapacity=6,
    )
    scaling.put_scaling_policy(
        PolicyName="cpu",
        ServiceNamespace="ecs",
        ResourceId=resource_id,
        ScalableDimension="ecs:service:DesiredCount",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": target,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "ECSServiceAverageCPUUtilization"
            },
            "ScaleOutCooldown": 60,
            "ScaleInCooldown": 300,  # five 60-second ticks
        },
    )


def desired(clients: Clients, cluster: SandboxCluster) -> int:
    count: int = describe(clients.ecs, cluster)["desiredCount"]
    return count


def test_target_tracking_scales_out_and_in_on_simulated_cpu(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    ecs = clients.ecs
    create_service(ecs, cluster, register_task_definition(ecs), desired=2)
    tick_until(sim, lambda: rollout_state(ecs, cluster) == "COMPLETED")
    scale_on_cpu(clients, cluster, target=50)

    autoscaling.set_cpu(cluster.name, "web", 90)  # 2 tasks at 90 % → ceil(2 × 90 / 50) = 4
    sim.tick()
    assert desired(clients, cluster) == 4
    tick_until(sim, lambda: describe(ecs, cluster)["runningCount"] == 4)
    for _ in range(3):  # the same load over 4 tasks is 45 %: on target, no more scaling
        sim.tick()
    assert desired(clients, cluster) == 4

    autoscaling.set_cpu(cluster.name, "web", 10)  # 4 tasks at 10 % → ceil(4 × 10 / 50) = 1
    sim.tick()
    assert desired(clients, cluster) == 1
    tick_until(sim, lambda: describe(ecs, cluster)["runningCount"] == 1)


def test_scaling_respects_the_maximum_and_the_cooldowns(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    ecs = clients.ecs
    create_service(ecs, cluster, register_task_definition(ecs), desired=2)
    tick_until(sim, lambda: rollout_state(ecs, cluster) == "COMPLETED")
    scale_on_cpu(clients, cluster, target=10)

    autoscaling.set_cpu(cluster.name, "web", 100)  # wants 20 tasks
    sim.tick()
    assert desired(clients, cluster) == 6  # MaxCapacity
    tick_until(sim, lambda: describe(ecs, cluster)["runningCount"] == 6)

    autoscaling.set_cpu(cluster.name, "web", 5)  # wants 3
    sim.tick()
    assert desired(clients, cluster) == 3
    autoscaling.set_cpu(cluster.name, "web", 1)  # wants 1, after the 300 s scale-in cooldown
    counts = []
    for _ in range(5):
        sim.tick()
        counts.append(desired(clients, cluster))
    assert counts == [3, 3, 3, 3, 1]


def test_cpu_utilization_is_published_to_cloudwatch(
    clients: Clients, sim: Simulator, cluster: SandboxCluster
) -> None:
    ecs = clients.ecs
    create_service(ecs, cluster, register_task_definition(ecs), desired=2)
    tick_until(sim, lambda: rollout_state(ecs, cluster) == "COMPLETED")

    autoscaling.set_cpu(cluster.name, "web", 42)
    sim.tick()

    now = datetime.now(UTC)
    datapoints = clients.cloudwatch.get_metric_statistics(
        Namespace="AWS/ECS",
        MetricName="CPUUtilization",
        Dimensions=[
            {"Name": "ClusterName", "Value": cluster.name},
            {"Name": "ServiceName", "Value": "web"},
        ],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=1),
        Period=60,
        Statistics=["Average"],
    )["Datapoints"]
    assert [point["Average"] for point in datapoints] == [42.0]

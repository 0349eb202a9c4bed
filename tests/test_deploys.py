"""Releases and rollouts end to end on the sandbox: deploy, follow, roll back, refuse."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from django.core.exceptions import ValidationError

from deployments import jobs, tracker
from deployments.aws import ecs_services
from deployments.models import App, Cluster, Deployment, Job, Release, Team
from deployments.sandbox.autoscaling import set_cpu
from deployments.sandbox.server import Sandbox
from deployments.services import (
    Conflict,
    app_create,
    app_delete,
    app_rollback,
    config_set,
    deployment_cancel,
    deployment_start,
    live_release,
    scaling_update,
)
from tests import factories
from tests.conftest import aws, wait_for_in_process
from tests.faults import throttled

pytestmark = pytest.mark.django_db(transaction=True)
TERMINAL = {"succeeded", "failed", "rolled_back", "timed_out", "cancelled"}


def follow(deployment: Deployment, timeout: float = 60, on_tick: Callable[[], None] | None = None
           ) -> Deployment:  # fmt: skip
    """Run the deployment's job, then tick as the scheduler would until it ends."""
    wait_for_in_process(deployment)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tracker.follow_rollouts()
        deployment.refresh_from_db()
        if on_tick:
            on_tick()
        if deployment.status in TERMINAL:
            return deployment
        time.sleep(0.2)
    raise AssertionError(
        f"{deployment} still {deployment.status}: {deployment.rollout_state_reason}"
    )


def deploy(app: App, image: str, **kwargs: Any) -> Deployment:
    return follow(deployment_start(app=app, actor=None, image=image), **kwargs)


def test_v1_then_v2_roll_out_and_are_followed_step_by_step(app: App, sandbox: Sandbox) -> None:
    first = deploy(app, "nginx:1.27")
    assert first.status == Deployment.Status.SUCCEEDED
    assert (first.running_count, first.desired_count) == (2, 2)

    seen: list[tuple[int, int]] = []
    deployment = deployment_start(app=app, actor=None, image="nginx:1.27-alpine")
    second = follow(
        deployment,
        on_tick=lambda: seen.append((deployment.running_count, deployment.pending_count)),
    )

    assert second.status == Deployment.Status.SUCCEEDED
    assert second.rollout_state == "COMPLETED"
    assert len(set(seen)) >= 2  # counts moved while it rolled out
    assert live_release(app) == second.release
    assert second.release.version == 2
    messages = list(second.events.values_list("message", flat=True))
    assert any("has started 2 tasks" in m for m in messages)
    assert any("deployment completed" in m or "steady state" in m for m in messages)
    service = aws(sandbox, "ecs").describe_services(
        cluster=app.cluster.ecs_name, services=[app.service_name]
    )
    assert service["services"][0]["taskDefinition"] == second.release.task_definition_arn


def test_a_crashing_image_is_rolled_back_and_the_previous_release_stays_live(app: App) -> None:
    good = deploy(app, "nginx:1.27")

    bad = deploy(app, "nginx:crashloop")

    assert bad.status == Deployment.Status.ROLLED_BACK
    assert "rolled back" in bad.rollout_state_reason
    assert bad.failed_count >= 3
    assert live_release(app) == good.release


def test_a_rollback_over_before_the_tracker_looked_still_counts_the_failed_tasks(
    app: App, sandbox: Sandbox
) -> None:
    good = deploy(app, "nginx:1.27")
    bad = deployment_start(app=app, actor=None, image="nginx:crashloop")
    wait_for_in_process(bad)
    ecs = aws(sandbox, "ecs")

    def rolled_back_and_forgotten() -> bool:
        [service] = ecs.describe_services(
            cluster=app.cluster.ecs_name, services=[app.service_name]
        )["services"]
        [only] = service["deployments"] if len(service["deployments"]) == 1 else [None]
        return bool(only and only["rolloutState"] == "COMPLETED" and only["taskDefinition"]
                    == good.release.task_definition_arn)  # fmt: skip

    deadline = time.monotonic() + 60
    while not rolled_back_and_forgotten():  # ECS drops the failed deployment at the end
        assert time.monotonic() < deadline, "the sandbox did not roll back"
        time.sleep(0.2)

    bad = follow(bad)

    assert bad.status == Deployment.Status.ROLLED_BACK
    assert bad.failed_count >= 3  # read from its stopped tasks: ECS no longer counts them
    assert "Essential container in task exited" in bad.rollout_state_reason


def test_without_the_breaker_a_crashing_image_times_out(app: App) -> None:
    deploy(app, "nginx:1.27")
    App.objects.filter(pk=app.pk).update(circuit_breaker=False, rollout_timeout_seconds=3)
    app.refresh_from_db()

    bad = deploy(app, "nginx:crashloop")

    assert bad.status == Deployment.Status.TIMED_OUT
    assert bad.rollout_state_reason.startswith("No progress for")


def test_rollback_to_v1_reuses_its_task_definition(app: App, sandbox: Sandbox) -> None:
    first = deploy(app, "nginx:1.27")
    deploy(app, "nginx:1.27-alpine")

    rollback = follow(app_rollback(app=app, actor=None, version=1))

    assert rollback.status == Deployment.Status.SUCCEEDED
    release = rollback.release
    assert (release.version, release.kind, release.rollback_of) == (3, "rollback", first.release)
    assert release.task_definition_arn == first.release.task_definition_arn
    arns = aws(sandbox, "ecs").list_task_definitions(familyPrefix=app.task_family)
    assert len(arns["taskDefinitionArns"]) == 2


def test_a_second_deploy_while_one_is_in_flight_is_refused(app: App) -> None:
    running = deployment_start(app=app, actor=None, image="nginx:1.27")

    with pytest.raises(Conflict, match="v1 is still rolling out"):
        deployment_start(app=app, actor=None, image="nginx:1.28")
    assert app.releases.count() == 1
    assert list(app.deployments.all()) == [running]


def test_bad_input_is_refused_before_anything_is_written(app: App) -> None:
    with pytest.raises(ValidationError):
        deployment_start(app=app, actor=None, image="not an image!")
    with pytest.raises(ValidationError):
        config_set(app=app, actor=None, config_vars={"AWS_SECRET": "x"})
    with pytest.raises(ValidationError, match="no release v7"):
        app_rollback(app=app, actor=None, version=7)
    assert not Release.objects.exists()
    assert not Job.objects.filter(kind="run_deployment").exists()


def test_config_change_makes_a_release_of_the_live_image(app: App, sandbox: Sandbox) -> None:
    deploy(app, "nginx:1.27")

    changed = follow(config_set(app=app, actor=None, config_vars={"GREETING": "hello"}))

    assert changed.status == Deployment.Status.SUCCEEDED
    assert (changed.release.kind, changed.release.image) == ("config", "nginx:1.27")
    assert changed.release.config["env"] == {"GREETING": "hello"}
    described = aws(sandbox, "ecs").describe_task_definition(
        taskDefinition=changed.release.task_definition_arn
    )["taskDefinition"]["containerDefinitions"][0]
    assert {"name": "GREETING", "value": "hello"} in described["environment"]


class WorkerKilled(BaseException):
    """Escapes run_job's error handling, as a SIGKILL would."""


def test_a_worker_killed_between_registering_and_updating_rolls_out_once(
    app: App, sandbox: Sandbox, rq_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment = deployment_start(app=app, actor=None, image="nginx:1.27")
    job = Job.objects.get(kind="run_deployment", target_id=deployment.pk)

    def killed(*args: Any, **kwargs: Any) -> None:
        raise WorkerKilled

    monkeypatch.setattr(ecs_services, "find", killed)
    with pytest.raises(WorkerKilled):
        jobs.run_job(job.pk)
    monkeypatch.undo()
    rq_redis.flushdb()
    factories.backdate_lost(job)
    assert jobs.jobs_requeue_lost() == 1

    finished = follow(deployment)

    assert finished.status == Deployment.Status.SUCCEEDED
    ecs = aws(sandbox, "ecs")
    assert len(ecs.list_task_definitions(familyPrefix=app.task_family)["taskDefinitionArns"]) == 1
    service = ecs.describe_services(cluster=app.cluster.ecs_name, services=[app.service_name])[
        "services"
    ][0]
    assert len(service["deployments"]) == 1


def test_ten_rollouts_on_one_cluster_take_one_describe_call_per_tick(
    team: Team, cluster: Cluster, sandbox: Sandbox
) -> None:
    Cluster.objects.filter(pk=cluster.pk).update(desired_instances=6)
    apps = [app_create(team=team, actor=None, cluster=cluster, name=f"app{i}", cpu=256, memory=512,
                       desired_count=1) for i in range(10)]  # fmt: skip
    deployments = [deployment_start(app=app, actor=None, image="nginx:1.27") for app in apps]
    for deployment in deployments:
        wait_for_in_process(deployment)

    sandbox.requests.clear()
    assert tracker.follow_rollouts() == 10
    assert sandbox.requests["ecs:DescribeServices"] == 1


def test_cancel_stops_a_stuck_rollout_and_rolls_back_to_the_last_good_release(app: App) -> None:
    good = deploy(app, "nginx:1.27")
    App.objects.filter(pk=app.pk).update(circuit_breaker=False)
    app.refresh_from_db()
    stuck = deployment_start(app=app, actor=None, image="nginx:crashloop")
    wait_for_in_process(stuck)

    rollback = deployment_cancel(deployment=stuck, actor=None)

    stuck.refresh_from_db()
    assert stuck.status == Deployment.Status.CANCELLED
    assert rollback is not None
    finished = follow(rollback)
    assert finished.status == Deployment.Status.SUCCEEDED
    assert finished.release.task_definition_arn == good.release.task_definition_arn
    assert live_release(app) == finished.release
    with pytest.raises(Conflict, match="already ended"):
        deployment_cancel(deployment=stuck, actor=None)


def test_autoscaling_moves_the_desired_count_and_deploys_keep_it(
    app: App, sandbox: Sandbox
) -> None:
    deploy(app, "nginx:1.27")
    ecs = aws(sandbox, "ecs")
    policies = aws(sandbox, "application-autoscaling").describe_scaling_policies(
        ServiceNamespace="ecs"
    )["ScalingPolicies"]
    assert policies[0]["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 75.0

    sandbox.simulator.tick_seconds = 60  # simulated minutes pass in a fraction of a second
    try:
        set_cpu(app.cluster.ecs_name, app.service_name, 100.0)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and desired(ecs, app) < 3:
            time.sleep(0.2)
    finally:
        sandbox.simulator.tick_seconds = 0.2
    scaled = desired(ecs, app)
    assert 3 <= scaled <= 5

    assert deploy(app, "nginx:1.27-alpine").status == Deployment.Status.SUCCEEDED
    assert desired(ecs, app) >= scaled - 1  # the deploy did not reset it to 2


def test_fixed_scaling_sets_the_desired_count(app: App, sandbox: Sandbox) -> None:
    deploy(app, "nginx:1.27")

    scaling_update(app=app, actor=None, autoscaling_enabled=False, desired_count=3)
    wait_for_in_process(app)

    assert desired(aws(sandbox, "ecs"), app) == 3
    targets = aws(sandbox, "application-autoscaling").describe_scalable_targets(
        ServiceNamespace="ecs"
    )["ScalableTargets"]
    assert targets == []


def test_deleting_an_app_removes_its_service_task_definitions_and_logs(
    app: App, sandbox: Sandbox
) -> None:
    deploy(app, "nginx:1.27")

    job = app_delete(app=app, actor=None)
    deadline = time.monotonic() + 30
    while Job.objects.filter(pk=job.pk, status__in=["queued", "running"]).exists():
        jobs.run_job(job.pk)
        assert time.monotonic() < deadline

    assert not App.objects.filter(pk=app.pk).exists()
    ecs = aws(sandbox, "ecs")
    active = ecs.list_task_definitions(familyPrefix=app.task_family, status="ACTIVE")
    assert active["taskDefinitionArns"] == []
    services = ecs.describe_services(cluster=app.cluster.ecs_name, services=[app.service_name])[
        "services"
    ]
    assert all(s["status"] != "ACTIVE" for s in services)
    groups = aws(sandbox, "logs").describe_log_groups(logGroupNamePrefix=app.aws_path)
    assert groups["logGroups"] == []


def desired(ecs: Any, app: App) -> int:
    service = ecs.describe_services(cluster=app.cluster.ecs_name, services=[app.service_name])[
        "services"
    ][0]
    return int(service["desiredCount"])


def test_throttling_on_30_percent_of_calls_gives_the_same_outcomes(app: App) -> None:
    with throttled(0.3) as hits:
        first = deploy(app, "nginx:1.27")
        bad = deploy(app, "nginx:crashloop")

    assert (first.status, bad.status) == (
        Deployment.Status.SUCCEEDED,
        Deployment.Status.ROLLED_BACK,
    )
    assert live_release(app) == first.release
    assert "ecs" in hits


def test_an_app_with_a_fixed_count_from_the_start_deploys(
    team: Team, cluster: Cluster, sandbox: Sandbox
) -> None:
    fixed = app_create(team=team, actor=None, cluster=cluster, name="fixed", desired_count=3)
    scaling_update(app=fixed, actor=None, autoscaling_enabled=False)

    first = deploy(fixed, "nginx:1.27")

    assert first.status == Deployment.Status.SUCCEEDED
    assert desired(aws(sandbox, "ecs"), fixed) == 3


def test_a_deploy_needing_more_instances_than_the_cluster_has_completes_as_the_group_grows(
    team: Team, cluster: Cluster, sandbox: Sandbox
) -> None:
    # One task per t3.medium: four tasks need twice the cluster's two instances.
    big = app_create(team=team, actor=None, cluster=cluster, name="big", memory=3000,
                     desired_count=4)  # fmt: skip
    scaling_update(app=big, actor=None, autoscaling_enabled=False)

    deployment = deploy(big, "nginx:1.27")

    assert deployment.status == Deployment.Status.SUCCEEDED, deployment.rollout_state_reason
    assert deployment.running_count == 4
    [group] = aws(sandbox, "autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[cluster.resources["auto_scaling_group_name"]]
    )["AutoScalingGroups"]
    assert (group["DesiredCapacity"], group["MaxSize"]) == (4, cluster.max_instances)

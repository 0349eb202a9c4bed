"""AWS throttling 30 % of the calls made by real workers (and by the tick): the same outcomes."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from deployments.models import App, AwsAccount, Cluster, Deployment, Job, Team
from deployments.sandbox.server import Sandbox
from deployments.services import app_create, cluster_create, deployment_start, live_release
from tests.conftest import aws, wait_for_in_process
from tests.faults import throttled
from tests.faults.conftest import (
    TERMINAL,
    Workers,
    age,
    assert_cluster_known,
    deploy_in_process,
    follow_in_process,
    jobs_of,
    settled,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)


def finish(deployment: Deployment, workers: Workers) -> Deployment:
    wait_until(
        lambda: Deployment.objects.get(pk=deployment.pk).status in TERMINAL,
        120,
        f"{deployment} ended",
        tick=True,
        logs=workers.logs,
    )
    deployment.refresh_from_db()
    return deployment


def test_30_percent_throttling_gives_the_same_outcomes(
    team: Team, account: AwsAccount, sandbox: Sandbox, workers: Workers
) -> None:
    workers.start(TINYSTACKS_FAULT_THROTTLE="0.3")
    cluster = cluster_create(team=team, actor=None, account=account, name="main")

    wait_until(
        lambda: (
            Cluster.objects.get(pk=cluster.pk).status in ("ready", "failed") and settled(cluster)
        ),
        180,
        f"{cluster} provisioned",
        tick=True,
        logs=workers.logs,
    )
    cluster.refresh_from_db()
    app = app_create(team=team, actor=None, cluster=cluster, name="web")
    good = finish(deployment_start(app=app, actor=None, image="nginx:1.27"), workers)
    bad = finish(deployment_start(app=app, actor=None, image="nginx:crashloop"), workers)

    assert cluster.status == Cluster.Status.READY, cluster.status_reason
    assert_cluster_known(sandbox, cluster)
    assert (good.status, bad.status) == (
        Deployment.Status.SUCCEEDED,
        Deployment.Status.ROLLED_BACK,
    )
    assert live_release(app) == good.release
    releases = list(app.releases.order_by("version"))
    assert all(r.task_definition_arn for r in releases)
    assert len({r.task_definition_arn for r in releases}) == len(releases)
    throttles = [f for f in workers.faults() if f.startswith("throttled")]
    assert {"throttled ec2", "throttled ecs"} <= set(throttles) and len(throttles) > 10
    assert all(job.status == Job.Status.SUCCEEDED for job in Job.objects.all())


def test_a_rollback_the_tick_could_not_watch_is_still_reported_as_rolled_back(
    app: App, sandbox: Sandbox
) -> None:
    good = deploy_in_process(app, "nginx:1.27")
    bad = deployment_start(app=app, actor=None, image="nginx:crashloop")
    wait_for_in_process(bad)
    ecs = aws(sandbox, "ecs")

    def rolled_back() -> bool:
        (service,) = ecs.describe_services(
            cluster=app.cluster.ecs_name, services=[app.service_name]
        )["services"]
        return [(d["taskDefinition"], d["rolloutState"]) for d in service["deployments"]] == [
            (good.release.task_definition_arn, "COMPLETED")
        ]

    with throttled(1.0):  # every read the tick makes is throttled while ECS rolls back
        wait_until(rolled_back, 60, "rolled back in ECS", tick=True)
    bad = follow_in_process(bad)

    assert bad.status == Deployment.Status.ROLLED_BACK
    assert live_release(app) == good.release


def test_a_throttled_job_is_not_run_again_before_its_back_off_ends(
    team: Team, account: AwsAccount, sandbox: Sandbox, workers: Workers
) -> None:
    cluster = cluster_create(team=team, actor=None, account=account, name="main")
    age(cluster)  # a job that has been going a while, as provisioning does on AWS
    workers.start(TINYSTACKS_FAULT_THROTTLE="1")

    def waits() -> list[tuple[datetime, float]]:
        (job,) = jobs_of(cluster)
        return [
            (datetime.fromisoformat(line["at"]), float(line["message"].split(" in ")[-1][:-2]))
            for line in job.log
            if "trying again in" in line["message"]
        ]

    wait_until(lambda: len(waits()) >= 3, 90, "backed off three times", tick=True)

    (first, first_delay), (second, second_delay), (third, _) = waits()[:3]
    assert (first_delay, second_delay) == (5, 10)
    assert second - first >= timedelta(seconds=first_delay)
    assert third - second >= timedelta(seconds=second_delay)
    assert jobs_of(cluster).get().status != Job.Status.FAILED

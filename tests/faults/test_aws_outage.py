"""AWS unreachable for 30 s (the sandbox server stopped, then started again on the same port with
the same resources) while real workers provision and deploy and the tick follows a rollout:
jobs record the error and back off, nothing fails, everything finishes once AWS is back."""

from __future__ import annotations

import time

import pytest

from deployments.models import App, Cluster, Deployment, Job, Team
from deployments.sandbox.server import Sandbox
from deployments.services import app_create, cluster_create, deployment_start
from tests.faults.conftest import (
    Workers,
    assert_cluster_known,
    assert_rollouts_known,
    deploy_in_process,
    jobs_of,
    settled,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)
OUTAGE_SECONDS = 30


def test_jobs_and_rollouts_wait_out_an_aws_outage(
    team: Team,
    cluster: Cluster,
    app: App,
    sandbox: Sandbox,
    workers: Workers,
) -> None:
    api = app_create(team=team, actor=None, cluster=cluster, name="api", cpu=256, memory=512)
    assert deploy_in_process(app, "nginx:1.27").status == Deployment.Status.SUCCEEDED
    # One worker; it pauses once, after the second cluster's subnets, for the outage to begin.
    workers.start(TINYSTACKS_FAULT_PAUSE_AFTER="step:subnets")
    rollout = deployment_start(app=app, actor=None, image="nginx:1.28")
    wait_until(
        lambda: Deployment.objects.get(pk=rollout.pk).status == Deployment.Status.IN_PROGRESS,
        30,
        "rolling out",
        logs=workers.logs,
    )
    second = cluster_create(team=team, actor=None, account=cluster.account, name="second")
    wait_until(lambda: workers.faults(), 30, "provisioning", logs=workers.logs)

    sandbox.stop()
    try:
        first_deploy = deployment_start(app=api, actor=None, image="nginx:1.27")
        workers.resume()
        outage_ends = time.monotonic() + OUTAGE_SECONDS
        wait_until(lambda: time.monotonic() > outage_ends, OUTAGE_SECONDS + 5, "", tick=True)

        # Nothing gave up; the jobs say why they wait.
        rollout.refresh_from_db()
        first_deploy.refresh_from_db()
        second.refresh_from_db()
        assert rollout.status == Deployment.Status.IN_PROGRESS
        assert first_deploy.status == Deployment.Status.REGISTERING
        assert second.status == Cluster.Status.PROVISIONING
        for target in (second, first_deploy):
            (job,) = jobs_of(target)
            assert job.status in (Job.Status.QUEUED, Job.Status.RUNNING), job.error
            assert job.retries >= 2
            assert "Could not reach AWS" in job.log[-1]["message"]
    finally:
        sandbox.start()

    wait_until(
        lambda: (
            Cluster.objects.get(pk=second.pk).status == Cluster.Status.READY
            and settled(second)
            and Deployment.objects.filter(
                pk__in=[rollout.pk, first_deploy.pk], status=Deployment.Status.SUCCEEDED
            ).count()
            == 2
        ),
        120,
        "all finished",
        tick=True,
        logs=workers.logs,
    )
    second.refresh_from_db()
    assert_cluster_known(sandbox, second)
    assert_rollouts_known(sandbox, app)
    assert_rollouts_known(sandbox, api)
    for target in (second, first_deploy):
        (job,) = jobs_of(target)
        assert (job.status, job.error) == (Job.Status.SUCCEEDED, "")

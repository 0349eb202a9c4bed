"""A worker SIGKILLed at any step of provisioning or of a deploy, then restarted: the same end
state, nothing in AWS twice, nothing in AWS the dashboard does not know.

The worker kills itself (tests.faults.workers) right after the step's AWS work and before the
database records it — the moment a re-run is most likely to duplicate. Every process of the
worker dies: the worker, its scheduler and the work horse, as when its host goes away. The
reconciler runs here, in the test, as the scheduled tick would; workers beat every second and a
job is stale after 3 s, and the dead job's row is backdated past the 30 s enqueue grace (see
`age`), so that a lost job is found in seconds rather than minutes.
"""

from __future__ import annotations

import time

import pytest

from deployments.aws import provisioning
from deployments.models import App, AwsAccount, Cluster, Deployment, Job, Team
from deployments.sandbox.server import Sandbox
from deployments.services import cluster_create, deployment_start
from tests.conftest import aws
from tests.faults.conftest import (
    Workers,
    age,
    assert_cluster_known,
    assert_rollouts_known,
    deploy_in_process,
    jobs_of,
    wait_for_ready,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)
STEP_NAMES = [name for name, _ in provisioning.STEPS]


def step_status(cluster: Cluster, name: str) -> str:
    return str(next((s["status"] for s in cluster.steps if s["name"] == name), "pending"))


@pytest.mark.slow
@pytest.mark.parametrize("step", STEP_NAMES)
def test_a_worker_killed_after_a_provisioning_step_is_finished_once_by_a_new_worker(
    step: str, team: Team, account: AwsAccount, sandbox: Sandbox, workers: Workers
) -> None:
    cluster = cluster_create(team=team, actor=None, account=account, name="main")

    doomed = workers.start(TINYSTACKS_FAULT_CRASH_AFTER=f"step:{step}")
    workers.wait_dead(doomed)

    # The step's AWS work is done; the database still shows it running, the job still claimed.
    assert workers.faults() == [f"crash worker after step:{step}"]
    cluster.refresh_from_db()
    assert step_status(cluster, step) == "running"
    (job,) = jobs_of(cluster)
    assert (job.status, job.attempts) == (Job.Status.RUNNING, 1)

    age(cluster)
    workers.start()
    cluster = wait_for_ready(cluster, workers)

    assert [s["status"] for s in cluster.steps] == ["done"] * len(STEP_NAMES)
    assert_cluster_known(sandbox, cluster)
    job.refresh_from_db()
    assert (job.status, job.attempts, job.error) == (Job.Status.SUCCEEDED, 2, "")
    assert cluster.current_job is None


def test_a_work_horse_killed_mid_provisioning_is_rerun_by_the_same_worker(
    team: Team, account: AwsAccount, sandbox: Sandbox, workers: Workers
) -> None:
    cluster = cluster_create(team=team, actor=None, account=account, name="main")

    # The OOM killer's choice: only the work horse dies; RQ's worker sees it and fails the RQ job.
    worker = workers.start(
        TINYSTACKS_FAULT_CRASH_AFTER="step:launch_template", TINYSTACKS_FAULT_CRASH_SCOPE="horse"
    )
    wait_until(lambda: workers.faults(), 60, "crashed", logs=workers.logs)
    age(cluster)
    cluster = wait_for_ready(cluster, workers)

    assert worker.poll() is None and len(workers.started) == 1
    assert_cluster_known(sandbox, cluster)
    (job,) = jobs_of(cluster)
    assert (job.status, job.attempts) == (Job.Status.SUCCEEDED, 2)


def test_a_worker_killed_from_outside_while_a_step_runs_leaves_nothing_behind(
    team: Team, account: AwsAccount, sandbox: Sandbox, workers: Workers
) -> None:
    cluster = cluster_create(team=team, actor=None, account=account, name="main")
    doomed = workers.start()

    # kill -9 of the worker's whole session the moment the database shows the step begun (in
    # the middle of its IAM calls, or just after them: the step is quick, the poll is not).
    deadline = time.monotonic() + 60
    while step_status(Cluster.objects.get(pk=cluster.pk), "roles") == "pending":
        assert time.monotonic() < deadline, workers.logs()
        time.sleep(0.01)
    workers.kill(doomed)
    age(cluster)
    workers.start()
    cluster = wait_for_ready(cluster, workers)

    assert_cluster_known(sandbox, cluster)
    (job,) = jobs_of(cluster)
    assert (job.status, job.attempts) == (Job.Status.SUCCEEDED, 2)


def test_a_worker_killed_while_a_job_waits_to_retry_leaves_it_to_the_next_worker(
    team: Team, account: AwsAccount, sandbox: Sandbox, workers: Workers
) -> None:
    cluster = cluster_create(team=team, actor=None, account=account, name="main")

    # AWS throttles every call of the first worker: the job backs off for 5 s, and the worker
    # is killed while the job waits.
    doomed = workers.start(TINYSTACKS_FAULT_THROTTLE="1")
    wait_until(
        lambda: jobs_of(cluster).filter(status=Job.Status.QUEUED, retries=1).exists(),
        60,
        "backing off",
        logs=workers.logs,
    )
    workers.kill(doomed)
    age(cluster)
    workers.start()

    wait_for_ready(cluster, workers, timeout=30)
    assert_cluster_known(sandbox, cluster)


def test_a_worker_killed_just_as_a_job_starts_waiting_leaves_it_to_the_next_worker(
    team: Team, account: AwsAccount, sandbox: Sandbox, workers: Workers
) -> None:
    cluster = cluster_create(team=team, actor=None, account=account, name="main")

    # The worker dies right after handing the job to RQ's scheduler (RQ never records that
    # execution as finished, so the RQ job stays SCHEDULED).
    doomed = workers.start(
        TINYSTACKS_FAULT_THROTTLE="1", TINYSTACKS_FAULT_CRASH_AFTER="retry:scheduled"
    )
    workers.wait_dead(doomed)
    (job,) = jobs_of(cluster)
    assert (job.status, job.retries) == (Job.Status.QUEUED, 1)
    age(cluster)
    workers.start()

    # 5 s of back-off, 3 s to look stale, a few seconds to run: 30 s is plenty.
    wait_for_ready(cluster, workers, timeout=30)
    assert_cluster_known(sandbox, cluster)


DEPLOY_CRASHES = [
    ("v1", "deploy:registered", Deployment.Status.REGISTERING),
    ("v1", "deploy:service", Deployment.Status.UPDATING),
    ("v2", "deploy:registered", Deployment.Status.REGISTERING),
    ("v2", "deploy:service", Deployment.Status.UPDATING),
]


@pytest.mark.parametrize(("version", "point", "status_at_crash"), DEPLOY_CRASHES)
def test_a_worker_killed_mid_deploy_rolls_out_once(
    version: str,
    point: str,
    status_at_crash: str,
    app: App,
    sandbox: Sandbox,
    workers: Workers,
) -> None:
    if version == "v2":
        assert deploy_in_process(app, "nginx:1.27").status == Deployment.Status.SUCCEEDED
    before = sandbox.requests.copy()
    deployment = deployment_start(app=app, actor=None, image="nginx:1.28")

    doomed = workers.start(TINYSTACKS_FAULT_CRASH_AFTER=point)
    workers.wait_dead(doomed)
    deployment.refresh_from_db()
    assert deployment.status == status_at_crash
    (job,) = jobs_of(deployment)
    assert job.status == Job.Status.RUNNING

    age(deployment)
    workers.start()
    wait_until(
        lambda: Deployment.objects.get(pk=deployment.pk).status == Deployment.Status.SUCCEEDED,
        60,
        f"{deployment} succeeded",
        tick=True,
        logs=workers.logs,
    )

    assert_rollouts_known(sandbox, app)
    # One rollout started in ECS (the sandbox's request log stands in for CloudTrail).
    started = sandbox.requests - before
    assert (started["ecs:CreateService"], started["ecs:UpdateService"]) == (
        (1, 0) if version == "v1" else (0, 1)
    )
    job.refresh_from_db()
    assert (job.status, job.attempts) == (Job.Status.SUCCEEDED, 2)
    app.scaling.refresh_from_db()
    assert app.scaling.applied_at is not None
    targets = aws(sandbox, "application-autoscaling").describe_scalable_targets(
        ServiceNamespace="ecs"
    )["ScalableTargets"]
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [
        (app.scaling.min_tasks, app.scaling.max_tasks)
    ]

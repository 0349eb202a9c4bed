"""Redis flushed mid-rollout: the tick follows every rollout in flight from the database, and the
reconciler re-enqueues the jobs whose RQ entries vanished — work is delayed, never lost."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import redis
from rq.job import Job as RqJob

from deployments import jobs
from deployments.models import App, AwsAccount, Cluster, Deployment, Job, Team
from deployments.sandbox.server import Sandbox
from deployments.services import app_create, cluster_create, deployment_start
from tests.conftest import aws
from tests.faults.conftest import (
    STALE_JOB_SECONDS,
    TERMINAL,
    Workers,
    age,
    assert_cluster_known,
    assert_rollouts_known,
    cluster_inventory,
    counts,
    jobs_of,
    wait_for_ready,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[Sandbox]:
    """A sandbox moving at `manage.py sandbox`'s pace (1 s a step), so that rollouts are still
    in flight when Redis is flushed."""
    server = Sandbox(port=0, tick_seconds=1.0)
    server.start()
    yield server
    server.stop()


def ecs_view(sandbox: Sandbox, deployment: Deployment) -> tuple[set[str], int, str]:
    """What ECS says now about the deployment: its service's events since the rollout started,
    its running task count and rollout state."""
    app = deployment.app
    (service,) = aws(sandbox, "ecs").describe_services(
        cluster=app.cluster.ecs_name, services=[app.service_name]
    )["services"]
    assert deployment.started_at is not None
    events = {e["id"] for e in service["events"] if e["createdAt"] >= deployment.started_at}
    ours = next(d for d in service["deployments"] if d["id"] == deployment.ecs_deployment_id)
    return events, ours["runningCount"], ours["rolloutState"]


def ecs_view_events(sandbox: Sandbox, deployment: Deployment) -> set[str]:
    return ecs_view(sandbox, deployment)[0]


def knows(deployment: Deployment, seen: tuple[set[str], int, str]) -> bool:
    """The dashboard's row tells at least what ECS said at `seen`."""
    deployment.refresh_from_db()
    events, running, state = seen
    recorded = set(
        deployment.events.exclude(ecs_event_id="").values_list("ecs_event_id", flat=True)
    )
    if deployment.status in TERMINAL:
        return events <= recorded
    return events <= recorded and deployment.running_count >= running and state != "COMPLETED"


def small_app(cluster: Cluster, name: str) -> App:
    return app_create(
        team=cluster.team, actor=None, cluster=cluster, name=name, cpu=256, memory=512
    )


def test_a_redis_flush_mid_rollout_loses_no_deployment(
    cluster: Cluster, sandbox: Sandbox, rq_redis: redis.Redis, workers: Workers
) -> None:
    web, api, cron, db = (small_app(cluster, name) for name in ("web", "api", "cron", "db"))
    # A worker that will be busy with cron's deploy (paused once it has registered its task
    # definition) when Redis goes, and another that starts web's and api's rollouts.
    busy = workers.start(TINYSTACKS_FAULT_PAUSE_AFTER="deploy:registered")
    running = deployment_start(app=cron, actor=None, image="nginx:1.27")
    wait_until(lambda: workers.faults(), 30, "cron's deploy running", logs=workers.logs)
    other = workers.start()
    in_flight = [deployment_start(app=app, actor=None, image="nginx:1.27") for app in (web, api)]
    wait_until(
        lambda: all(
            Deployment.objects.get(pk=d.pk).status == Deployment.Status.IN_PROGRESS
            for d in in_flight
        ),
        30,
        "rolling out",
        logs=workers.logs,
    )
    for deployment in in_flight:
        deployment.refresh_from_db()
        wait_until(partial(ecs_view_events, sandbox, deployment), 10, "ECS started tasks")
    workers.kill(other)
    queued = deployment_start(app=db, actor=None, image="nginx:1.27")  # no worker free for it
    age(running, queued)

    # Redis loses everything; the workers go down with it and come back.
    rq_redis.flushdb()
    workers.kill(busy)
    seen = {d.pk: ecs_view(sandbox, d) for d in in_flight}
    lost = {job.pk: job.rq_id for target in (running, queued) for job in jobs_of(target)}

    jobs.tick()
    jobs.tick()

    for deployment in in_flight:
        assert knows(deployment, seen[deployment.pk]), (deployment.status, seen[deployment.pk])
    # The queued job is queued again at once; the running one once its run's heartbeat, which
    # died with the busy worker, is stale.
    (waiting,) = jobs_of(queued)
    assert waiting.rq_id != lost[waiting.pk]
    wait_until(
        lambda: all(job.rq_id != lost[job.pk] for job in Job.objects.filter(pk__in=lost)),
        STALE_JOB_SECONDS + 10,
        "the busy worker's job queued again",
        tick=True,
    )
    for job in Job.objects.filter(pk__in=lost):
        assert RqJob.fetch(job.rq_id, connection=rq_redis) is not None

    workers.start()
    wait_until(
        lambda: Deployment.objects.filter(status=Deployment.Status.SUCCEEDED).count() == 4,
        60,
        "all four rolled out",
        tick=True,
        logs=workers.logs,
    )
    for app in (web, api, cron, db):
        assert_rollouts_known(sandbox, app)
    assert set(Job.objects.values_list("status", flat=True)) == {Job.Status.SUCCEEDED}


def test_a_job_running_when_redis_is_flushed_is_left_to_its_run(
    team: Team, account: AwsAccount, sandbox: Sandbox, rq_redis: redis.Redis, workers: Workers
) -> None:
    cluster = cluster_create(team=team, actor=None, account=account, name="main")
    workers.start(TINYSTACKS_FAULT_PAUSE_AFTER="aws:ec2.DescribeVpcs")
    wait_until(lambda: workers.faults(), 30, "looking for the VPC", logs=workers.logs)
    age(cluster)
    (job,) = jobs_of(cluster)
    running_as = job.rq_id

    rq_redis.flushdb()  # the worker lives on, in the middle of the job
    time.sleep(STALE_JOB_SECONDS + 1)  # longer than the heartbeat of a lost run would last
    jobs.tick()

    job.refresh_from_db()
    assert (job.status, job.rq_id, job.attempts) == (Job.Status.RUNNING, running_as, 1)
    workers.resume()
    wait_for_ready(cluster, workers)
    cluster.refresh_from_db()
    assert counts(cluster_inventory(sandbox, cluster))["vpcs"] == 1
    assert_cluster_known(sandbox, cluster)


def test_a_frozen_run_whose_job_went_to_another_run_changes_nothing_when_it_thaws(
    team: Team, account: AwsAccount, sandbox: Sandbox, workers: Workers
) -> None:
    cluster = cluster_create(team=team, actor=None, account=account, name="main")
    workers.start(TINYSTACKS_FAULT_PAUSE_AFTER="aws:ec2.DescribeVpcs")
    wait_until(lambda: workers.faults(), 30, "looking for the VPC", logs=workers.logs)
    age(cluster)
    (job,) = jobs_of(cluster)
    # Frozen (a stopped VM, a stalled host) after it found no VPC: its heartbeat stops too.
    frozen = paused_process(workers)
    os.kill(frozen, signal.SIGSTOP)

    wait_until(
        lambda: jobs_of(cluster).get().rq_id != job.rq_id, 30, "given to a new run", tick=True
    )
    workers.start()
    wait_for_ready(cluster, workers)
    workers.resume()
    os.kill(frozen, signal.SIGCONT)  # it goes on to create the VPC it did not find
    wait_until(lambda: not alive(frozen), 60, "the frozen run over", tick=True)

    assert "another run has the job; CreateVpc not called" in workers.output()
    cluster.refresh_from_db()
    assert counts(cluster_inventory(sandbox, cluster))["vpcs"] == 1
    assert_cluster_known(sandbox, cluster)
    assert jobs_of(cluster).get().status == Job.Status.SUCCEEDED


def paused_process(workers: Workers) -> int:
    log = (workers.fault_dir / "faults.log").read_text().splitlines()
    return next(int(line.split()[0]) for line in log if " paused after " in line)


def alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False

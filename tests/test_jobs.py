"""The background-job mechanism end to end: a real worker process, a real Redis, a Job row."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from django.utils import timezone
from moto.server import ThreadedMotoServer
from rq.job import Job as RqJob
from rq.job import JobStatus

from deployments import jobs
from deployments.models import AwsAccount, Job, Team
from deployments.services import account_verify
from tests import factories
from tests.conftest import run_worker

pytestmark = pytest.mark.django_db(transaction=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def aws_endpoint() -> Iterator[str]:
    """A moto server standing in for AWS (the sandbox's own tests cover the sandbox)."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def account(team: Team) -> AwsAccount:
    return factories.make_account(team, name="sandbox")


def test_a_job_runs_on_a_real_worker_and_records_success(
    account: AwsAccount, owner: Any, aws_endpoint: str, rq_redis: redis.Redis, redis_url: str
) -> None:
    job = account_verify(account=account, actor=owner)

    worker = run_worker(redis_url, TINYSTACKS_SANDBOX_URL=aws_endpoint)

    assert worker.returncode == 0, worker.stderr
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert (job.attempts, job.error, job.created_by) == (1, "", owner)
    assert job.started_at is not None and job.finished_at is not None
    assert job.log[-1]["message"].startswith("Connected as arn:aws:sts::")
    account.refresh_from_db()
    assert account.verified_at is not None


def test_a_failing_job_records_its_error_on_the_row(
    account: AwsAccount, rq_redis: redis.Redis, redis_url: str
) -> None:
    job = account_verify(account=account, actor=None)
    unreachable = f"http://127.0.0.1:{free_port()}"

    worker = run_worker(redis_url, TINYSTACKS_SANDBOX_URL=unreachable)

    assert worker.returncode == 0, worker.stderr
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error == f"Could not reach AWS at {unreachable}/."
    account.refresh_from_db()
    assert account.verified_at is None
    assert account.verification_error == job.error


def test_a_job_enqueued_twice_runs_once(
    account: AwsAccount, aws_endpoint: str, rq_redis: redis.Redis, redis_url: str
) -> None:
    job = account_verify(account=account, actor=None)
    jobs.enqueue(job)  # a duplicate, as a retry or a second scheduler might make

    worker = run_worker(redis_url, TINYSTACKS_SANDBOX_URL=aws_endpoint)

    assert worker.returncode == 0, worker.stderr
    job.refresh_from_db()
    assert (job.status, job.attempts) == (Job.Status.SUCCEEDED, 1)


def test_work_lost_by_redis_is_enqueued_again_by_the_tick(
    account: AwsAccount, aws_endpoint: str, rq_redis: redis.Redis, redis_url: str
) -> None:
    job = account_verify(account=account, actor=None)
    rq_redis.flushdb()  # Redis lost everything: the row is all that is left
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=1))

    jobs.tick()
    worker = run_worker(redis_url, TINYSTACKS_SANDBOX_URL=aws_endpoint)

    assert worker.returncode == 0, worker.stderr
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED


def test_a_job_whose_worker_died_is_run_again(
    account: AwsAccount, aws_endpoint: str, rq_redis: redis.Redis, redis_url: str
) -> None:
    job = factories.make_job(
        account.team, account, status=Job.Status.RUNNING, attempts=1, rq_id="lost-with-its-worker"
    )
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=1))

    assert jobs.jobs_requeue_lost() == 1
    worker = run_worker(redis_url, TINYSTACKS_SANDBOX_URL=aws_endpoint)

    assert worker.returncode == 0, worker.stderr
    job.refresh_from_db()
    assert (job.status, job.attempts) == (Job.Status.SUCCEEDED, 2)


def test_the_tick_gives_up_after_repeated_losses(
    account: AwsAccount, rq_redis: redis.Redis
) -> None:
    job = factories.make_job(
        account.team, account, status=Job.Status.RUNNING, attempts=jobs.MAX_ATTEMPTS, rq_id="gone"
    )
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=1))

    jobs.jobs_requeue_lost()

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "Gave up after 5 attempts" in job.error


def test_fresh_rows_are_left_for_their_own_enqueue(
    account: AwsAccount, rq_redis: redis.Redis
) -> None:
    factories.make_job(account.team, account, rq_id="not-yet-enqueued")

    assert jobs.jobs_requeue_lost() == 0


def test_a_started_job_whose_worker_stopped_beating_is_run_again(
    account: AwsAccount, rq_redis: redis.Redis
) -> None:
    job = account_verify(account=account, actor=None)
    jobs.enqueue(job)
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.RUNNING, created_at=timezone.now() - timedelta(minutes=5)
    )
    rq_job = RqJob.fetch(job.rq_id, connection=rq_redis)
    rq_job.set_status(JobStatus.STARTED)
    rq_job.heartbeat(timezone.now() - timedelta(minutes=1), ttl=600)
    assert jobs.jobs_requeue_lost() == 0  # still beating: leave it alone

    rq_job.heartbeat(timezone.now() - timedelta(seconds=121), ttl=600)

    assert jobs.jobs_requeue_lost() == 1
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED

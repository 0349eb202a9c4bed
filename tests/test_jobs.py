"""The background-job mechanism end to end: a real worker process, a real Redis, a Job row."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import django_rq
import pytest
import redis
from django.utils import timezone
from moto.server import ThreadedMotoServer
from rq.job import Job as RqJob
from rq.job import JobStatus

from deployments import jobs
from deployments.aws import clients
from deployments.aws_access import account_access
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
    factories.backdate_lost(job)

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
    factories.backdate_lost(job)

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
    factories.backdate_lost(job)

    jobs.jobs_requeue_lost()

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "Gave up after 5 attempts" in job.error


def test_fresh_rows_are_left_for_their_own_enqueue(
    account: AwsAccount, rq_redis: redis.Redis
) -> None:
    factories.make_job(account.team, account, rq_id="not-yet-enqueued")

    assert jobs.jobs_requeue_lost() == 0


def test_a_running_job_is_left_to_its_run_while_the_run_beats_even_if_redis_forgot_it(
    account: AwsAccount, rq_redis: redis.Redis
) -> None:
    job = factories.make_job(account.team, account, status=Job.Status.RUNNING, rq_id="flushed")
    beat(job, seconds_ago=60)
    assert jobs.jobs_requeue_lost() == 0  # still beating: leave it alone

    beat(job, seconds_ago=121)

    assert jobs.jobs_requeue_lost() == 1
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED
    assert RqJob.fetch(job.rq_id, connection=rq_redis).get_status() == JobStatus.QUEUED


def test_a_queued_job_picked_up_by_a_worker_that_stopped_beating_is_run_again(
    account: AwsAccount, rq_redis: redis.Redis
) -> None:
    job = account_verify(account=account, actor=None)
    jobs.enqueue(job)
    factories.backdate_lost(job)
    rq_job = RqJob.fetch(job.rq_id, connection=rq_redis)
    rq_job.set_status(JobStatus.STARTED)
    rq_job.heartbeat(timezone.now() - timedelta(minutes=1), ttl=600)
    assert jobs.jobs_requeue_lost() == 0  # about to claim the row

    rq_job.heartbeat(timezone.now() - timedelta(seconds=121), ttl=600)

    assert jobs.jobs_requeue_lost() == 1
    job.refresh_from_db()
    assert job.rq_id != rq_job.id


def test_a_job_waiting_out_its_back_off_is_requeued_only_once_overdue(
    account: AwsAccount, rq_redis: redis.Redis
) -> None:
    job = factories.make_job(account.team, account, rq_id="backing-off")
    factories.backdate_lost(job)
    queue = django_rq.get_queue("default")
    queue.enqueue_in(timedelta(seconds=30), jobs.run_job, job.pk, job_id=job.rq_id)
    assert jobs.jobs_requeue_lost() == 0

    # No scheduler moved it when it was due (the one holding RQ's lock died).
    due = timezone.now() - timedelta(seconds=121)
    queue.enqueue_at(due, jobs.run_job, job.pk, job_id=job.rq_id)

    assert jobs.jobs_requeue_lost() == 1
    job.refresh_from_db()
    assert job.rq_id != "backing-off"
    assert "backing-off" not in queue.scheduled_job_registry.get_job_ids()
    assert RqJob.fetch(job.rq_id, connection=rq_redis).get_status() == JobStatus.QUEUED


def test_a_lost_job_whose_old_run_left_a_half_written_execution_is_still_requeued(
    account: AwsAccount, rq_redis: redis.Redis
) -> None:
    """A run still beating after its execution hash expired re-creates it with only its last
    heartbeat; RQ's own delete then fails reading it. The tick must go on regardless."""
    job = factories.make_job(account.team, account, rq_id="left-half-written")
    factories.backdate_lost(job)
    queue = django_rq.get_queue("default")
    rq_job = queue.enqueue_at(
        timezone.now() - timedelta(seconds=121), jobs.run_job, job.pk, job_id=job.rq_id
    )
    rq_redis.zadd(rq_job.execution_registry.key, {"stale-run": 1e12})
    rq_redis.hset(f"rq:execution:{rq_job.id}:stale-run", "last_heartbeat", 1.0)

    assert jobs.jobs_requeue_lost() == 1
    job.refresh_from_db()
    assert job.rq_id != "left-half-written"
    assert RqJob.fetch_many(["left-half-written"], connection=rq_redis) == [None]
    assert RqJob.fetch(job.rq_id, connection=rq_redis).get_status() == JobStatus.QUEUED


def test_a_job_that_must_wait_is_scheduled_under_a_new_rq_id(
    account: AwsAccount, rq_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = account_verify(account=account, actor=None)
    first_id = job.rq_id

    def throttled(job: Job) -> None:
        raise jobs.RetryLater("AWS is throttling", 5, transient=True)

    monkeypatch.setitem(jobs.HANDLERS, "verify_account", throttled)
    jobs.run_job(job.pk)

    job.refresh_from_db()
    assert (job.status, job.retries, job.attempts) == (Job.Status.QUEUED, 1, 0)
    # RQ records the finished execution under the id it ran as; the wait must not be that one.
    assert job.rq_id != first_id
    assert RqJob.fetch(job.rq_id, connection=rq_redis).get_status() == JobStatus.SCHEDULED
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert jobs.jobs_requeue_lost() == 0  # waiting, not lost


def test_an_rq_job_the_reconciler_replaced_does_not_run(
    account: AwsAccount, rq_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = factories.make_job(account.team, account, rq_id="the-new-one")
    ran: list[Job] = []
    monkeypatch.setitem(jobs.HANDLERS, "verify_account", ran.append)
    monkeypatch.setattr(jobs, "rq_current_id", lambda: "left-behind")

    jobs.run_job(job.pk)

    job.refresh_from_db()
    assert (ran, job.status, job.attempts) == ([], Job.Status.QUEUED, 0)


def test_a_run_that_lost_its_job_to_another_run_can_no_longer_change_aws_or_the_row(
    account: AwsAccount, aws_endpoint: str, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.TINYSTACKS_SANDBOX_URL = aws_endpoint
    factories.connect_sandbox(account)
    job = factories.make_job(account.team, account, rq_id="first-run")
    ec2 = clients.client(account_access(account), "ec2")
    vpcs_before = len(ec2.describe_vpcs()["Vpcs"])
    seen: list[int | str] = []

    def superseded_midway(job: Job) -> None:
        # The run froze; the reconciler took its stale row for lost and gave it to another run.
        Job.objects.filter(pk=job.pk).update(rq_id="second-run")
        seen.append(len(ec2.describe_vpcs()["Vpcs"]))  # reading is harmless
        ec2.create_vpc(CidrBlock="10.9.0.0/16")
        seen.append("created")

    monkeypatch.setitem(jobs.HANDLERS, "verify_account", superseded_midway)
    jobs.run_job(job.pk)

    job.refresh_from_db()
    assert seen == [vpcs_before]
    assert len(ec2.describe_vpcs()["Vpcs"]) == vpcs_before
    assert (job.status, job.rq_id, job.finished_at) == (Job.Status.RUNNING, "second-run", None)


def beat(job: Job, seconds_ago: float) -> None:
    """The run's last heartbeat, `seconds_ago` (the reconciler's grace long past)."""
    Job.objects.filter(pk=job.pk).update(
        created_at=timezone.now() - timedelta(minutes=5),
        heartbeat_at=timezone.now() - timedelta(seconds=seconds_ago),
    )

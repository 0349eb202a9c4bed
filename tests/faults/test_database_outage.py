"""The database drops a worker's connections in the middle of a job (PostgreSQL restarted,
failed over, or an administrator's pg_terminate_backend): the worker survives, the job is run
again, and it ends as it would have."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection

from deployments.models import AwsAccount, Job, Team
from deployments.sandbox.server import Sandbox
from deployments.services import cluster_create
from tests.faults.conftest import (
    Workers,
    age,
    assert_cluster_known,
    jobs_of,
    wait_for_ready,
    wait_until,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="terminates server backends: PostgreSQL only (SQLite has no server to lose)",
    ),
]


def terminate_other_connections() -> int:
    """End every connection to the test database but this one; how many there were."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        row = cursor.fetchone()
    assert row is not None
    return int(row[0])


def test_a_worker_whose_database_connections_are_cut_mid_job_lives_on_and_finishes_it(
    team: Team, account: AwsAccount, sandbox: Sandbox, workers: Workers
) -> None:
    cluster = cluster_create(team=team, actor=None, account=account, name="main")
    worker = workers.start(TINYSTACKS_FAULT_PAUSE_AFTER="step:subnets")
    wait_until(lambda: workers.faults(), 60, "provisioning", logs=workers.logs)

    assert terminate_other_connections() >= 1  # the work horse's
    workers.resume()
    age(cluster)
    cluster = wait_for_ready(cluster, workers)

    assert worker.poll() is None and len(workers.started) == 1  # the same worker, still up
    assert_cluster_known(sandbox, cluster)
    (job,) = jobs_of(cluster)
    assert (job.status, job.attempts, job.error) == (Job.Status.SUCCEEDED, 2, "")
    assert "terminating connection" in workers.output()

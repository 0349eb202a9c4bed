from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
import django_rq
import pytest
import redis
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import Model

from deployments import embedded_redis, jobs
from deployments.aws import clients
from deployments.models import App, Cluster, Job, Membership, Team
from deployments.sandbox import propagation
from deployments.sandbox.server import Sandbox
from deployments.services import app_create, cluster_create
from tests import factories

BASE_DIR = Path(settings.BASE_DIR)


@pytest.fixture(autouse=True)
def fast_password_hasher(settings: Any) -> None:
    """Tests sign in often; the production hasher's cost protects nothing here."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _own_database(url: str) -> str:
    """Each pytest-xdist worker gets a Redis database of its own: tests flush theirs."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        return url
    parts = urlsplit(url)
    number = int(parts.path.strip("/") or 0) + 1 + int(worker.removeprefix("gw"))
    return urlunsplit(parts._replace(path=f"/{number}"))


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The machine's Redis when REDIS_URL is set (CI), else an embedded one for this test run
    (for each xdist worker, as each has its own session)."""
    process = None
    if settings.REDIS_URL:
        url = _own_database(settings.REDIS_URL)
    else:
        socket = tmp_path_factory.mktemp("redis") / "redis.sock"
        process = embedded_redis.start(socket)
        url = f"unix://{socket}"
    original = settings.RQ_QUEUES["default"]["URL"]
    settings.RQ_QUEUES["default"]["URL"] = url  # django-rq reads this dict on every connection
    yield url
    settings.RQ_QUEUES["default"]["URL"] = original
    if process is not None:
        process.terminate()
        process.wait(timeout=5)


@pytest.fixture
def rq_redis(redis_url: str) -> Iterator[redis.Redis]:
    """A clean Redis for the queue of one test."""
    connection = django_rq.get_connection("default")
    connection.flushdb()
    yield connection
    connection.flushdb()


def database_url() -> str:
    """The URL of the database this test run uses, for worker processes to share it."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def run_worker(redis_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a real RQ worker process until the queue is empty."""
    return subprocess.run(
        [sys.executable, "manage.py", "rqworker", "--burst", "default"],
        cwd=BASE_DIR,
        env={**os.environ, "DEBUG": "1", "DATABASE_URL": database_url(), "REDIS_URL": redis_url}
        | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[Sandbox]:
    """A sandbox server for one test module. Not longer: its ticker advances moto's in-process
    backends, which `mock_aws` tests in other modules use too."""
    server = Sandbox(
        port=0,
        tick_seconds=0.2,
        iam_propagation_seconds=settings.TINYSTACKS_SANDBOX_IAM_PROPAGATION_SECONDS,
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server: Sandbox, settings: Any) -> Sandbox:
    sandbox_server.reset()
    clients.forget_role_sessions()
    settings.TINYSTACKS_SANDBOX_URL = sandbox_server.url
    return sandbox_server


def aws(sandbox: Sandbox, service: str) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service,
        region_name="us-east-1",
        endpoint_url=sandbox.url,
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
    )


def wait_for_in_process[M: Model](target: M, rounds: int = 200) -> M:
    """Run `target`'s queued jobs here, in this process, until none is left; `target` refreshed."""
    for _ in range(rounds):
        pending = Job.objects.filter(
            target_type=ContentType.objects.get_for_model(target),
            target_id=target.pk,
            status__in=[Job.Status.QUEUED, Job.Status.RUNNING],
        ).first()
        if pending is None:
            target.refresh_from_db()
            return target
        jobs.run_job(pending.pk)
        # A job that waits would come back after its delay: let the sandbox's IAM see it pass.
        propagation.CLOCK.advance(jobs.STEP_RETRY_SECONDS)
        time.sleep(0.05)
    raise AssertionError(f"{target} still has jobs after {rounds} runs")


@pytest.fixture
def cluster(team: Team, sandbox: Sandbox, rq_redis: redis.Redis) -> Cluster:
    """A ready cluster on the sandbox, provisioned by the real job (run in-process)."""
    account = factories.connect_sandbox(
        factories.make_account(team, name="sandbox", region="us-east-1")
    )
    cluster = cluster_create(team=team, actor=None, account=account, name="main", max_instances=6)
    return wait_for_in_process(cluster)


@pytest.fixture
def app(team: Team, cluster: Cluster) -> App:
    """An app named web on that cluster, never deployed yet."""
    return app_create(team=team, actor=None, cluster=cluster, name="web")


@pytest.fixture
def team(db: Any) -> Team:
    return factories.make_team(name="Acme", slug="acme")


@pytest.fixture
def other_team(db: Any) -> Team:
    return factories.make_team(name="Globex", slug="globex")


@pytest.fixture
def owner(team: Team) -> Any:
    return factories.make_user(team, Membership.Role.OWNER, username="olivia")


@pytest.fixture
def viewer(team: Team) -> Any:
    return factories.make_user(team, Membership.Role.VIEWER, username="victor")


@pytest.fixture
def outsider(other_team: Team) -> Any:
    return factories.make_user(other_team, Membership.Role.OWNER, username="oscar")

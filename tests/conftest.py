from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import django_rq
import pytest
import redis
from django.conf import settings
from django.db import connection

from deployments import embedded_redis
from deployments.models import Membership, Team
from tests import factories

BASE_DIR = Path(settings.BASE_DIR)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The machine's Redis when REDIS_URL is set (CI), else an embedded one for this test run."""
    if settings.REDIS_URL:
        yield settings.REDIS_URL
        return
    socket = tmp_path_factory.mktemp("redis") / "redis.sock"
    process = embedded_redis.start(socket)
    url = f"unix://{socket}"
    original = settings.RQ_QUEUES["default"]["URL"]
    settings.RQ_QUEUES["default"]["URL"] = url  # django-rq reads this dict on every connection
    yield url
    settings.RQ_QUEUES["default"]["URL"] = original
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

"""Part 3: deploy latency — from the deploy request (`services.deployment_start`) to the
CreateService / UpdateService call arriving at the sandbox, with a real worker process
(`manage.py rqworker --with-scheduler`) on the benchmark's database and embedded Redis.

Arrivals are stamped by the benchmark sandbox's WSGI hook, in this process, on the clock the
request was stamped with. Deploys are made one at a time, each once the previous one's job has
finished, so that every sample measures an idle worker picking up a deploy, not a queue.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import django_rq
from django.conf import settings
from rq import Worker

from bench.harness import POLL_SECONDS, BenchSandbox, create_apps, provision_cluster
from bench.rollouts import TERMINAL, V1, V2, progress
from deployments import services, tracker
from deployments.models import App, AwsAccount, Deployment, Team

SAMPLES = 20
ARRIVAL_TIMEOUT = 60.0
WORKER_START_TIMEOUT = 60.0


@dataclass
class LatencyRow:
    """Deploy request → the ECS call that starts the rollout, per sample."""

    part: int
    scenario: str
    tool: str
    action: str
    seconds: list[float]
    missing: int  # deploys whose call never arrived within ARRIVAL_TIMEOUT

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def worker_env(sandbox: BenchSandbox) -> dict[str, str]:
    """The benchmark's own settings: its var dir (SQLite, Redis socket), or DATABASE_URL."""
    return os.environ | {"DEBUG": "1", "TINYSTACKS_SANDBOX_URL": sandbox.url}


def start_worker(sandbox: BenchSandbox, log: Path) -> subprocess.Popen[bytes]:
    """A real worker, as `make run` starts it, in its own process group (its scheduler too)."""
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "rqworker", "--with-scheduler", "default"],
            cwd=settings.BASE_DIR,
            env=worker_env(sandbox),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + WORKER_START_TIMEOUT
    connection = django_rq.get_connection("default")
    while not Worker.all(connection=connection):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_worker(process)
            raise RuntimeError(f"the rqworker did not start; see {log}")
        time.sleep(0.1)
    return process


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the worker's process group (worker, work horse, scheduler); kill after 10 s."""
    with contextlib.suppress(ProcessLookupError):  # the whole group may be gone already
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def arrival(sandbox: BenchSandbox, action: str, service: str, since: float) -> float | None:
    """When `action` naming `service` arrived at the sandbox after `since`."""
    deadline = time.time() + ARRIVAL_TIMEOUT
    while time.time() < deadline:
        for call in reversed(sandbox.calls):
            if call.at < since:
                break
            if call.action == action and service in call.services:
                return call.at
        time.sleep(0.005)
    return None


def wait_until_in_progress(deployment: Deployment, timeout: float = ARRIVAL_TIMEOUT) -> None:
    """The deploy job has finished (it hands over to the tick), or gave up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deployment.refresh_from_db(fields=["status"])
        if deployment.status == Deployment.Status.IN_PROGRESS or deployment.status in TERMINAL:
            return
        time.sleep(0.02)


def sample(sandbox: BenchSandbox, apps: Sequence[App], image: str, action: str) -> LatencyRow:
    seconds: list[float] = []
    missing = 0
    for app in apps:
        requested = time.time()
        deployment = services.deployment_start(app=app, actor=None, image=image)
        arrived = arrival(sandbox, action, app.name, requested)
        if arrived is None:
            missing += 1
        else:
            seconds.append(arrived - requested)
        wait_until_in_progress(deployment)
    first = action == "ecs:CreateService"
    return LatencyRow(
        part=3,
        scenario=f"deploy request → {action.split(':')[1]} ({'first deploy' if first else 'v2'})",
        tool="TinyStacks + rqworker",
        action=action,
        seconds=seconds,
        missing=missing,
    )


def finish_rollouts(apps: Sequence[App], timeout: float = 120.0) -> None:
    """Tick until these apps' rollouts have ended, so that each can be deployed again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tracker.follow_rollouts()
        active = Deployment.objects.filter(app__in=apps, status__in=Deployment.ACTIVE_STATUSES)
        if not active.exists():
            return
        time.sleep(POLL_SECONDS)
    raise TimeoutError("the rollouts of the latency apps did not end")


def part_three(
    sandbox: BenchSandbox, team: Team, account: AwsAccount, var_dir: Path, samples: int = SAMPLES
) -> list[LatencyRow]:
    progress("part 3: provisioning a cluster and starting a real rqworker")
    cluster = provision_cluster(team, account, "latency", instances=3)
    apps = create_apps(team, cluster, [f"latency-{i}" for i in range(samples)], desired_count=1)
    # Earlier parts ran their jobs in this process; what they enqueued must not keep this
    # worker busy while it is being timed.
    django_rq.get_connection("default").flushdb()
    worker = start_worker(sandbox, var_dir / "rqworker.log")
    try:
        progress(f"part 3: {samples} first deploys (CreateService), one at a time")
        created = sample(sandbox, apps, V1, "ecs:CreateService")
        finish_rollouts(apps)
        progress(f"part 3: {samples} v2 deploys (UpdateService), one at a time")
        updated = sample(sandbox, apps, V2, "ecs:UpdateService")
        finish_rollouts(apps)  # nothing of this part may still be in flight for the next
    finally:
        stop_worker(worker)
    return [created, updated]

"""An RQ worker class for fault tests: `manage.py rqworker --worker-class
tests.faults.workers.FaultWorker`. Production code knows nothing of it.

It compresses time honestly (RQ's job heartbeat every second instead of every 30 s, so a dead
worker's job looks stale after TINYSTACKS_STALE_JOB_SECONDS=3) and, inside the work horse only,
injects the faults that the environment asks for:

- TINYSTACKS_FAULT_CRASH_AFTER=<point>: SIGKILL right after <point> has done its AWS work and
  before the database records it. With TINYSTACKS_FAULT_CRASH_SCOPE=worker (the default) every
  process of the worker dies — the worker, its scheduler and the work horse, as when the host or
  container is lost; with =horse only the work horse dies (the OOM killer's pick) and the worker
  lives on to see it. A crash happens once per TINYSTACKS_FAULT_DIR, however many horses pass.
- TINYSTACKS_FAULT_PAUSE_AFTER=<point>: wait after <point> until the file `go` appears in
  TINYSTACKS_FAULT_DIR (the test does something to the world meanwhile), once as well.
- TINYSTACKS_FAULT_THROTTLE=<share>: answer that share of AWS calls with AWS's throttling error.

A <point> is `step:<name>` for a provisioning step (deployments.aws.provisioning.STEPS),
`deploy:registered` (the task definition is registered, its ARN not yet saved),
`deploy:service` (CreateService/UpdateService returned, the ECS deployment id not yet saved),
`retry:scheduled` (a job that must wait was handed to RQ's scheduler: RetryLater) or
`aws:<service>.<Operation>` (an AWS call answered, e.g. `aws:ec2.DescribeVpcs`).
Every fault injected is written as one line to TINYSTACKS_FAULT_DIR/faults.log.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import wraps
from pathlib import Path
from typing import Any

from rq.queue import Queue
from rq.worker import Worker

from deployments.aws import clients, ecs_services, provisioning, taskdefs
from tests.faults.throttling import throttling_response

CRASH_AFTER = "TINYSTACKS_FAULT_CRASH_AFTER"
CRASH_SCOPE = "TINYSTACKS_FAULT_CRASH_SCOPE"
PAUSE_AFTER = "TINYSTACKS_FAULT_PAUSE_AFTER"
THROTTLE = "TINYSTACKS_FAULT_THROTTLE"
FAULT_DIR = "TINYSTACKS_FAULT_DIR"
JOB_MONITORING_SECONDS = 1
PAUSE_LIMIT_SECONDS = 120


def fault_dir() -> Path:
    return Path(os.environ[FAULT_DIR])


def note(line: str) -> None:
    """Record an injected fault where the test can read it (appends are atomic for short lines)."""
    with (fault_dir() / "faults.log").open("a") as log:
        log.write(f"{os.getpid()} {line}\n")


def first_time(name: str) -> bool:
    """True for the first process to ask, across every horse and worker of this test."""
    try:
        (fault_dir() / name).touch(exist_ok=False)
    except FileExistsError:
        return False
    return True


def crash(point: str) -> None:
    if not first_time("crashed"):
        return
    scope = os.environ.get(CRASH_SCOPE, "worker")
    note(f"crash {scope} after {point}")
    if scope == "worker":
        # The horse has its own process group; the worker and its scheduler share the worker's,
        # which the tests start as a session of its own (never kill a group it does not lead).
        worker = os.getppid()
        if os.getpgid(worker) == worker:
            os.killpg(worker, signal.SIGKILL)
        else:
            os.kill(worker, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def pause(point: str) -> None:
    if not first_time("paused"):
        return
    note(f"paused after {point}")
    go = fault_dir() / "go"
    deadline = time.monotonic() + PAUSE_LIMIT_SECONDS
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    note(f"resumed after {point}")


def after(original: Callable[..., Any], point: str, fault: Callable[[str], None]) -> Any:
    @wraps(original)
    def run(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        fault(point)
        return result

    return run


@contextmanager
def patched(target: object, name: str, value: Any) -> Iterator[None]:
    original = getattr(target, name)
    setattr(target, name, value)
    try:
        yield
    finally:
        setattr(target, name, original)


@contextmanager
def fault_at(point: str, fault: Callable[[str], None]) -> Iterator[None]:
    """Run `fault` right after the AWS work of `point` (see the module docstring)."""
    kind, _, name = point.partition(":")
    with ExitStack() as stack:
        if kind == "step":
            if name not in dict(provisioning.STEPS):
                raise ValueError(f"no provisioning step {name!r}")
            steps = [(n, after(s, point, fault) if n == name else s) for n, s in provisioning.STEPS]
            stack.enter_context(patched(provisioning, "STEPS", steps))
        elif point == "deploy:registered":
            stack.enter_context(
                patched(taskdefs, "register", after(taskdefs.register, point, fault))
            )
        elif point == "deploy:service":
            for call in ("create", "update"):
                original = getattr(ecs_services, call)
                stack.enter_context(patched(ecs_services, call, after(original, point, fault)))
        elif point == "retry:scheduled":
            enqueue_in = Queue.enqueue_in
            stack.enter_context(patched(Queue, "enqueue_in", after(enqueue_in, point, fault)))
        elif kind == "aws":
            # botocore names the event by the service's event name: after-call.ec2.DescribeVpcs
            remove = clients.add_client_hook(f"after-call.{name}", lambda **kwargs: fault(point))
            stack.callback(remove)
        else:
            raise ValueError(f"unknown fault point {point!r}")
        yield


def next_number(prefix: str) -> int:
    """0, 1, 2, … to the processes that ask, in the order they ask, across the whole test."""
    number = 0
    while not first_time(f"{prefix}-{number}"):
        number += 1
    return number


@contextmanager
def throttling(share: float) -> Iterator[None]:
    # Each horse is a fresh fork: one seed per run, in the order jobs run, so that every run
    # sees a different sequence and the test sees the same ones each time it runs.
    chance = random.Random(next_number("throttle-seed"))

    def throttle(request: Any, event_name: str, **kwargs: Any) -> Any:
        if chance.random() < share:
            service = event_name.split(".")[1]
            note(f"throttled {service}")
            return throttling_response(request, service)
        return None

    remove = clients.add_client_hook("before-send", throttle)
    try:
        yield
    finally:
        remove()


@contextmanager
def faults_from_environment() -> Iterator[None]:
    with ExitStack() as stack:
        if point := os.environ.get(CRASH_AFTER):
            stack.enter_context(fault_at(point, crash))
        if point := os.environ.get(PAUSE_AFTER):
            stack.enter_context(fault_at(point, pause))
        if share := os.environ.get(THROTTLE):
            stack.enter_context(throttling(float(share)))
        yield


class FaultWorker(Worker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["job_monitoring_interval"] = JOB_MONITORING_SECONDS
        super().__init__(*args, **kwargs)

    def perform_job(self, job: Any, queue: Any) -> bool:
        """Runs in the work horse (a fork per job): the faults live and die with it."""
        with faults_from_environment():
            return bool(super().perform_job(job, queue))

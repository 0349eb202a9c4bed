"""What every benchmark shares: a sandbox that records when each AWS call arrives and when each
ECS deployment settles, and the few steps to get a team, an account, clusters and apps on it.

The sandbox runs in the benchmark's own process, so "when ECS said COMPLETED" is read off the
simulator itself, on the same clock as "when the tool said done": no polling of ours skews it.
"""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import reset_queries
from django.db.models import Model

from deployments import jobs, services
from deployments.models import App, AwsAccount, Cluster, Job, ScalingSettings, Team
from deployments.sandbox.server import Sandbox, StartResponse, request_action
from deployments.sandbox.simulator import Simulator
from deployments.sandbox.state import ecs_backends_in_use

REGION = "us-east-1"
POLL_SECONDS = 1.0  # the one poll period every tool gets, and the sandbox's tick
SETTLED_STATES = ("COMPLETED", "FAILED")
# The calls that start a rollout, and the reads a tool follows one with.
STARTING_ACTIONS = ("ecs:CreateService", "ecs:UpdateService")
FOLLOWING_ACTIONS = ("ecs:DescribeServices", "ecs:ListTasks", "ecs:DescribeTasks")


@dataclass(frozen=True)
class Call:
    """One AWS request as it arrived at the sandbox (before it waited for the sandbox's lock)."""

    at: float
    action: str
    services: tuple[str, ...]  # the ECS services an ECS request names, if any


@dataclass(frozen=True)
class Settled:
    """The first tick at whose end an ECS deployment showed COMPLETED or FAILED."""

    at: float
    cluster: str
    service: str
    deployment_id: str
    state: str


class RecordingSimulator(Simulator):
    """The sandbox's simulator, noting the moment each deployment settles.

    The note is taken at the end of the tick, still under the sandbox's lock, so no API call can
    see the new state before the moment recorded. While `paused`, simulated ECS stands still:
    rollouts started meanwhile all begin on the same tick, however long starting them took.
    """

    def __init__(self, tick_seconds: float) -> None:
        super().__init__(tick_seconds=tick_seconds)
        self.settled: list[Settled] = []
        self._seen: set[tuple[str, str]] = set()
        self.tick_durations: list[float] = []
        self.paused = False

    def tick(self) -> None:
        if self.paused:
            return
        started = time.perf_counter()
        super().tick()
        self.tick_durations.append(time.perf_counter() - started)
        self._note_settled(time.time())

    def _note_settled(self, now: float) -> None:
        for backend in ecs_backends_in_use():
            for service in list(backend.services.values()):
                for deployment in service.deployments:
                    key = (str(deployment["id"]), str(deployment.get("rolloutState")))
                    if key[1] in SETTLED_STATES and key not in self._seen:
                        self._seen.add(key)
                        self.settled.append(
                            Settled(now, service.cluster_name, service.name, key[0], key[1])
                        )


class BenchSandbox(Sandbox):
    """The real sandbox server with a WSGI-level hook: every AWS call's arrival time and action."""

    def __init__(self, port: int = 0, tick_seconds: float = POLL_SECONDS) -> None:
        super().__init__(port=port, tick_seconds=tick_seconds)
        self.simulator: RecordingSimulator = RecordingSimulator(tick_seconds)
        self.calls: list[Call] = []

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if not environ.get("PATH_INFO", "").startswith("/_sandbox"):
            arrived = time.time()
            action = request_action(environ)
            self.calls.append(Call(arrived, action, _named_services(environ, action)))
        return super().__call__(environ, start_response)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Hold simulated ECS still (API calls are still answered)."""
        with self._lock:
            self.simulator.paused = True
        try:
            yield
        finally:
            with self._lock:
                self.simulator.paused = False

    def clear_counters(self) -> None:
        """Zero the sandbox's per-action counters between tools (resources stay)."""
        with self._lock:
            self.requests.clear()

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self.requests.items()))

    def calls_since(self, since: float, until: float | None = None) -> list[Call]:
        end = math.inf if until is None else until
        return [call for call in list(self.calls) if since <= call.at <= end]

    def settled_since(
        self, cluster: str, service: str, since: float, state: str = "COMPLETED"
    ) -> Settled | None:
        """The first deployment of `service` to reach `state` after `since`."""
        return next(
            (
                s
                for s in list(self.simulator.settled)
                if s.cluster == cluster and s.service == service and s.state == state
                if s.at >= since
            ),
            None,
        )


def _named_services(environ: dict[str, Any], action: str) -> tuple[str, ...]:
    """The services an ECS request names ("service", "serviceName", "services"); the body is put
    back for moto to read."""
    if not action.startswith("ecs:"):
        return ()
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    try:
        fields = json.loads(body or b"{}")
    except json.JSONDecodeError:
        return ()
    named = [fields.get("service"), fields.get("serviceName"), *fields.get("services", [])]
    return tuple(str(name).rsplit("/", 1)[-1] for name in named if name)


def following_calls(calls: Iterable[Call]) -> int:
    """How many of `calls` were spent following rollouts: reads of a service (DescribeServices,
    ListTasks) made after its CreateService/UpdateService, and DescribeTasks (which names no
    service) made after any. Reads before that are part of starting the deploy."""
    started: set[str] = set()
    following = 0
    for call in sorted(calls, key=lambda c: c.at):
        if call.action in STARTING_ACTIONS:
            started.update(call.services)
        elif (
            call.action in FOLLOWING_ACTIONS
            and started
            and (not call.services or started.intersection(call.services))
        ):
            following += 1
    return following


def percentile(values: Sequence[float], percent: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def ecs_client(sandbox: Sandbox) -> Any:
    """A plain boto3 client on the sandbox, for the benchmark's own reads and clean-ups."""
    return boto3.client(
        "ecs",
        region_name=REGION,
        endpoint_url=sandbox.url,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )


# The TinyStacks side: rows made through its services, jobs run here in this process.


def bench_team() -> tuple[Team, AwsAccount]:
    """The bench team and its sandbox account, connected (its customer role made and verified)
    as a user connects one."""
    team, _ = Team.objects.get_or_create(slug="bench", defaults={"name": "Benchmarks"})
    account = AwsAccount.objects.filter(team=team, name="sandbox").first()
    if account is None:
        account = services.account_create(
            team=team, actor=None, name="sandbox", mode=AwsAccount.Mode.SANDBOX, region=REGION
        )
    else:
        services.account_verify(account=account, actor=None)
    run_jobs_in_process(account)
    account.refresh_from_db()
    if account.verified_at is None:
        raise RuntimeError(f"the bench account did not verify: {account.verification_error}")
    return team, account


def run_jobs_in_process(target: Model, timeout: float = 120.0) -> None:
    """Run `target`'s queued jobs here until none is left, as a worker would; jobs that wait on
    AWS (instances joining) ask to be run again, and are, after a short pause."""
    kind = ContentType.objects.get_for_model(target)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = (
            Job.objects.filter(
                target_type=kind,
                target_id=target.pk,
                status__in=[Job.Status.QUEUED, Job.Status.RUNNING],
            )
            .order_by("pk")
            .first()
        )
        if pending is None:
            return
        jobs.run_job(pending.pk)
        pending.refresh_from_db()
        if pending.status == Job.Status.QUEUED:  # RetryLater: give the sandbox a tick
            time.sleep(0.2)
    raise TimeoutError(f"{target} still has unfinished jobs after {timeout:g} s")


def provision_cluster(
    team: Team, account: AwsAccount, name: str, *, instances: int, max_instances: int = 100
) -> Cluster:
    """A cluster of large instances, provisioned for real (every step, on the sandbox)."""
    cluster = services.cluster_create(
        team=team,
        actor=None,
        account=account,
        name=name,
        instance_type="m6i.2xlarge",
        min_instances=1,
        desired_instances=instances,
        max_instances=max_instances,
    )
    run_jobs_in_process(cluster, timeout=180)
    cluster.refresh_from_db()
    if cluster.status != Cluster.Status.READY:
        raise RuntimeError(f"cluster {name} is {cluster.status}: {cluster.status_reason}")
    return cluster


def create_apps(
    team: Team, cluster: Cluster, names: Iterable[str], *, desired_count: int
) -> list[App]:
    """Small apps (0.25 vCPU, 512 MiB) held at `desired_count` tasks.

    Autoscaling stays on with min = max = the desired count rather than off: with it off, the
    first deploy's DeregisterScalableTarget gets moto's ValidationException where AWS answers
    ObjectNotFoundException, which TinyStacks (rightly, for AWS) does not expect.
    """
    apps = [
        services.app_create(
            team=team,
            actor=None,
            cluster=cluster,
            name=name,
            cpu=256,
            memory=512,
            desired_count=desired_count,
        )  # fmt: skip
        for name in names
    ]
    ScalingSettings.objects.filter(app__in=apps).update(
        min_tasks=desired_count, max_tasks=desired_count
    )
    return apps


def forget_queries() -> None:
    """DEBUG keeps every SQL query in memory; a long benchmark must not."""
    if settings.DEBUG:
        reset_queries()

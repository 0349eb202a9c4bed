"""Real worker processes for fault tests, and the reconciler's clock compressed honestly.

Workers run `manage.py rqworker --with-scheduler` with tests.faults.workers.FaultWorker, each in a
session of its own so that a test can SIGKILL every process of one worker (worker, scheduler,
work horse) and the teardown can leave none behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model
from django.utils import timezone

from deployments import jobs
from deployments.aws_access import app_names
from deployments.models import App, Cluster, Deployment, Job, Team
from deployments.sandbox.server import Sandbox
from deployments.services import deployment_start
from tests import factories
from tests.conftest import BASE_DIR, aws, database_url, wait_for_in_process
from tests.faults import workers as fault_workers

STALE_JOB_SECONDS = 3
WORKER_CLASS = "tests.faults.workers.FaultWorker"
# How often the tests run the scheduled tick: the test sandbox moves every 0.2 s, five times as
# fast as `manage.py sandbox`, and the tick keeps pace as `make run`'s 1 s tick does with that.
TICK_SECONDS = 0.2
FAULT_VARIABLES = (
    fault_workers.CRASH_AFTER,
    fault_workers.CRASH_SCOPE,
    fault_workers.PAUSE_AFTER,
    fault_workers.THROTTLE,
    fault_workers.FAULT_DIR,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: a long parametrization of tests/faults (still runs in `make test`)"
    )


@pytest.fixture(autouse=True)
def stale_job_seconds(settings: Any) -> None:
    """The in-process reconciler takes a job whose RQ heartbeat is 3 s old as lost (workers beat
    every second, see FaultWorker); the workers get the same value through their environment."""
    settings.TINYSTACKS_STALE_JOB_SECONDS = STALE_JOB_SECONDS


def session_pids(session: int) -> list[int]:
    """Every live process of `session` (a worker started with start_new_session=True)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, _ppid, _pgrp, sid = stat.rsplit(")", 1)[1].split()[:4]
        if int(sid) == session and state != "Z":
            found.append(int(entry.name))
    return found


class Workers:
    """Starts real workers against this test's database, Redis and sandbox; kills them all."""

    def __init__(self, sandbox: Sandbox, redis_url: str, directory: Path) -> None:
        self.sandbox = sandbox
        self.redis_url = redis_url
        self.directory = directory
        self.fault_dir = directory / "faults"
        self.fault_dir.mkdir()
        self.started: list[subprocess.Popen[bytes]] = []

    def environment(self, **faults: str) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if k not in FAULT_VARIABLES}
        return inherited | {
            "DEBUG": "1",
            "DATABASE_URL": database_url(),
            "REDIS_URL": self.redis_url,
            "TINYSTACKS_SANDBOX_URL": self.sandbox.url,
            "TINYSTACKS_STALE_JOB_SECONDS": str(STALE_JOB_SECONDS),
            fault_workers.FAULT_DIR: str(self.fault_dir),
            **faults,
        }

    def start(self, **faults: str) -> subprocess.Popen[bytes]:
        """A worker with its scheduler; `faults` are FaultWorker's environment variables."""
        log = (self.directory / f"worker-{len(self.started) + 1}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "manage.py", "rqworker", "--with-scheduler",
             "--worker-class", WORKER_CLASS, "default"],
            cwd=BASE_DIR,
            env=self.environment(**faults),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        self.started.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL every process of the worker: the worker, its scheduler, its work horse."""
        deadline = time.monotonic() + 10
        while pids := session_pids(process.pid):  # again, in case one forked meanwhile
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):  # it died meanwhile
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                raise AssertionError(f"processes {pids} of worker {process.pid} survive SIGKILL")
            time.sleep(0.01)
        process.wait(timeout=10)

    def wait_dead(self, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
        """Until no process of the worker is left (after a fault killed them)."""
        wait_until(lambda: not session_pids(process.pid), timeout, f"worker {process.pid} died")
        process.wait(timeout=5)

    def faults(self) -> list[str]:
        path = self.fault_dir / "faults.log"
        lines = path.read_text().splitlines() if path.exists() else []
        return [line.split(" ", 1)[1] for line in lines]

    def resume(self) -> None:
        """Let a worker paused by TINYSTACKS_FAULT_PAUSE_AFTER go on."""
        (self.fault_dir / "go").touch()

    def output(self) -> str:
        """Everything the workers wrote."""
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')}"
            for path in sorted(self.directory.glob("worker-*.log"))
        )

    def logs(self) -> str:
        """The end of the workers' output, for a failing test's message."""
        return self.output()[-6000:]

    def stop_all(self) -> None:
        for process in self.started:
            self.kill(process)


@pytest.fixture
def workers(
    sandbox: Sandbox, redis_url: str, rq_redis: redis.Redis, tmp_path: Path
) -> Iterator[Workers]:
    started = Workers(sandbox, redis_url, tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


def wait_until(
    condition: Callable[[], object],
    timeout: float,
    what: str,
    *,
    tick: bool = False,
    logs: Callable[[], str] | None = None,
) -> None:
    """Poll `condition`; with `tick`, run the scheduled tick (tracker + reconciler) meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if tick:
            jobs.tick()
        time.sleep(TICK_SECONDS)
    raise AssertionError(f"not {what} after {timeout:g} s\n{logs() if logs else ''}")


def jobs_of(target: Model) -> Any:
    return Job.objects.filter(
        target_type=ContentType.objects.get_for_model(target), target_id=target.pk
    ).order_by("pk")


def settled(target: Model) -> bool:
    """None of the target's jobs is still queued or running."""
    return not jobs_of(target).filter(status__in=[Job.Status.QUEUED, Job.Status.RUNNING]).exists()


def wait_for_ready(cluster: Cluster, workers: Workers, timeout: float = 60) -> Cluster:
    """Until the cluster is ready and its job has ended (it releases the cluster after)."""
    wait_until(
        lambda: (
            Cluster.objects.get(pk=cluster.pk).status == Cluster.Status.READY and settled(cluster)
        ),
        timeout,
        f"{cluster} ready",
        tick=True,
        logs=workers.logs,
    )
    cluster.refresh_from_db()
    return cluster


def age(*targets: Model) -> None:
    """Make the targets' unfinished Job rows older than ENQUEUE_GRACE.

    The reconciler leaves rows younger than 30 s alone because their on_commit enqueue may still
    be on its way. These rows were enqueued and picked up long ago in every sense that matters
    (a worker ran them and died); backdating them spares each test 30 s of waiting, and changes
    nothing the reconciler decides about them.
    """
    for target in targets:
        jobs_of(target).filter(status__in=[Job.Status.QUEUED, Job.Status.RUNNING]).update(
            created_at=timezone.now() - jobs.ENQUEUE_GRACE - timedelta(seconds=1)
        )


@pytest.fixture
def account(team: Team, sandbox: Sandbox) -> Any:
    return factories.connect_sandbox(
        factories.make_account(team, name="sandbox", region="us-east-1")
    )


# One of each, three subnets (one per AZ), the two roles: what a provisioned cluster owns.
EXPECTED_INVENTORY = {
    "vpcs": 1,
    "internet_gateways": 1,
    "route_tables": 1,
    "subnets": 3,
    "security_groups": 1,
    "roles": 2,
    "instance_profiles": 1,
    "launch_templates": 1,
    "auto_scaling_groups": 1,
    "ecs_clusters": 1,
    "capacity_providers": 1,
}


def cluster_inventory(sandbox: Sandbox, cluster: Cluster) -> dict[str, list[str]]:
    """The cluster's AWS resources, read back from the sandbox by tag and by name."""
    tag: list[Any] = [{"Name": "tag:tinystacks:cluster", "Values": [str(cluster.uuid)]}]
    ec2, ecs, iam = aws(sandbox, "ec2"), aws(sandbox, "ecs"), aws(sandbox, "iam")
    groups = aws(sandbox, "autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    spec = jobs.cluster_spec(cluster)
    providers = ecs.describe_capacity_providers(capacityProviders=[spec.name("capacity")])
    clusters = ecs.describe_clusters(clusters=ecs.list_clusters()["clusterArns"])["clusters"]
    prefix = spec.name("")  # names made from the cluster's uuid
    return {
        "vpcs": [v["VpcId"] for v in ec2.describe_vpcs(Filters=tag)["Vpcs"]],
        "internet_gateways": [
            g["InternetGatewayId"]
            for g in ec2.describe_internet_gateways(Filters=tag)["InternetGateways"]
        ],
        "route_tables": [
            t["RouteTableId"] for t in ec2.describe_route_tables(Filters=tag)["RouteTables"]
        ],
        "subnets": [s["SubnetId"] for s in ec2.describe_subnets(Filters=tag)["Subnets"]],
        "security_groups": [
            g["GroupId"] for g in ec2.describe_security_groups(Filters=tag)["SecurityGroups"]
        ],
        "roles": [r["RoleName"] for r in iam.list_roles()["Roles"]
                  if r["RoleName"].startswith(prefix)],
        "instance_profiles": [p["InstanceProfileName"]
                              for p in iam.list_instance_profiles()["InstanceProfiles"]
                              if p["InstanceProfileName"].startswith(prefix)],
        "launch_templates": [t["LaunchTemplateId"]
                             for t in ec2.describe_launch_templates()["LaunchTemplates"]
                             if t["LaunchTemplateName"].startswith(prefix)],
        "auto_scaling_groups": [g["AutoScalingGroupName"] for g in groups
                                if g["AutoScalingGroupName"].startswith(prefix)],
        "ecs_clusters": [c["clusterArn"] for c in clusters
                         if c["clusterName"] == cluster.ecs_name and c["status"] == "ACTIVE"],
        "capacity_providers": [p["capacityProviderArn"] for p in providers["capacityProviders"]
                               if p["status"] == "ACTIVE"],
    }  # fmt: skip


def counts(inventory: dict[str, list[str]]) -> dict[str, int]:
    return {kind: len(found) for kind, found in inventory.items()}


def assert_cluster_known(sandbox: Sandbox, cluster: Cluster) -> None:
    """One of everything in AWS, and the dashboard's row names exactly those resources."""
    found = cluster_inventory(sandbox, cluster)
    assert counts(found) == EXPECTED_INVENTORY, found
    resources = cluster.resources
    assert found["vpcs"] == [resources["vpc_id"]]
    assert sorted(found["subnets"]) == sorted(resources["subnet_ids"])
    assert found["security_groups"] == [resources["security_group_id"]]
    assert found["launch_templates"] == [resources["launch_template_id"]]
    assert found["auto_scaling_groups"] == [resources["auto_scaling_group_name"]]
    assert found["capacity_providers"] == [resources["capacity_provider_arn"]]
    assert found["ecs_clusters"] == [resources["cluster_arn"]]


TERMINAL = {"succeeded", "failed", "rolled_back", "timed_out", "cancelled"}


def follow_in_process(deployment: Deployment, timeout: float = 60) -> Deployment:
    """Run the deployment's job here, then tick until it ends (setting the scene, not the test)."""
    wait_for_in_process(deployment)
    wait_until(
        lambda: Deployment.objects.get(pk=deployment.pk).status in TERMINAL,
        timeout,
        f"{deployment} ended",
        tick=True,
    )
    deployment.refresh_from_db()
    return deployment


def deploy_in_process(app: App, image: str) -> Deployment:
    return follow_in_process(deployment_start(app=app, actor=None, image=image))


def assert_rollouts_known(sandbox: Sandbox, app: App) -> None:
    """One task definition revision per release, each the one its release names; the service
    runs the live release's revision under the ECS deployment the dashboard followed."""
    ecs = aws(sandbox, "ecs")
    names = app_names(app)
    revisions = ecs.list_task_definitions(familyPrefix=names["family"])["taskDefinitionArns"]
    releases = list(app.releases.order_by("version"))
    assert sorted(revisions) == sorted(r.task_definition_arn for r in releases), revisions
    service = ecs.describe_services(cluster=app.cluster.ecs_name, services=[names["service"]])
    (live,) = service["services"]
    latest = app.deployments.order_by("-pk").first()
    assert latest is not None
    assert [(d["id"], d["taskDefinition"]) for d in live["deployments"]] == [
        (latest.ecs_deployment_id, latest.release.task_definition_arn)
    ]

"""Clusters end to end: services queue jobs, real workers run them against the sandbox.

The sandbox (moto plus the ECS simulator, whose fake agent registers the Auto Scaling group's
instances with ECS) serves on a free port; workers reach it through TINYSTACKS_SANDBOX_URL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from botocore.exceptions import EndpointConnectionError
from django.core.exceptions import ValidationError
from django.utils import timezone

from deployments import jobs
from deployments.aws import clients, provisioning
from deployments.models import AwsAccount, Cluster, Job, Team
from deployments.sandbox import propagation
from deployments.sandbox.server import Sandbox
from deployments.services import cluster_create, cluster_delete, cluster_retry, cluster_scale
from tests import factories
from tests.conftest import BASE_DIR, aws, database_url, wait_for_in_process
from tests.faults import throttled

pytestmark = pytest.mark.django_db(transaction=True)
REGION = "us-east-1"
STEP_NAMES = [name for name, _ in provisioning.STEPS]


@pytest.fixture
def worker(sandbox: Sandbox, redis_url: str, rq_redis: redis.Redis) -> Iterator[None]:
    """A real worker with its scheduler (jobs that wait are re-enqueued a few seconds later)."""
    environment = os.environ | {
        "DEBUG": "1",
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url,
        "TINYSTACKS_SANDBOX_URL": sandbox.url,
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "--with-scheduler", "default"],
        cwd=BASE_DIR,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture
def account(team: Team, sandbox: Sandbox) -> AwsAccount:
    return factories.connect_sandbox(factories.make_account(team, name="sandbox", region=REGION))


def wait_for(cluster: Cluster, status: str, timeout: float = 90) -> Cluster:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cluster.refresh_from_db()
        if cluster.status == status:
            return cluster
        time.sleep(0.3)
    raise AssertionError(f"{cluster} is {cluster.status} ({cluster.status_reason}), not {status}")


def inventory(sandbox: Sandbox, cluster: Cluster) -> dict[str, Any]:
    """The cluster's AWS resources, read back from the sandbox by tag and by name."""
    tag: list[Any] = [{"Name": "tag:tinystacks:cluster", "Values": [str(cluster.uuid)]}]
    ec2, ecs = aws(sandbox, "ec2"), aws(sandbox, "ecs")
    spec = jobs.cluster_spec(cluster)
    groups = aws(sandbox, "autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    return {
        "vpcs": sorted(v["VpcId"] for v in ec2.describe_vpcs(Filters=tag)["Vpcs"]),
        "subnets": sorted(s["SubnetId"] for s in ec2.describe_subnets(Filters=tag)["Subnets"]),
        "security_groups": len(ec2.describe_security_groups(Filters=tag)["SecurityGroups"]),
        "roles": sorted(r["RoleName"] for r in aws(sandbox, "iam").list_roles()["Roles"]),
        "launch_templates": len(ec2.describe_launch_templates()["LaunchTemplates"]),
        "auto_scaling_groups": [g["AutoScalingGroupName"] for g in groups],
        "capacity_providers": len(
            ecs.describe_capacity_providers(capacityProviders=[spec.name("capacity")])[
                "capacityProviders"
            ]
        ),
    }


def joined_zones(sandbox: Sandbox, cluster: Cluster) -> list[str]:
    ecs = aws(sandbox, "ecs")
    arns = ecs.list_container_instances(cluster=cluster.ecs_name)["containerInstanceArns"]
    instances = ecs.describe_container_instances(cluster=cluster.ecs_name, containerInstances=arns)[
        "containerInstances"
    ]
    return [
        attribute["value"]
        for instance in instances
        for attribute in instance["attributes"]
        if attribute["name"] == "ecs.availability-zone"
    ]


def create(team: Team, account: AwsAccount, **fields: Any) -> Cluster:
    return cluster_create(team=team, actor=None, account=account, name="main", **fields)


def create_and_run_once(team: Team, account: AwsAccount) -> tuple[Cluster, Job]:
    """A new cluster whose provisioning job has run once, in this process."""
    cluster = create(team, account)
    job = Job.objects.get(target_id=cluster.pk, kind="provision_cluster")
    jobs.run_job(job.pk)
    return cluster, job


def test_provisioning_builds_a_ready_cluster_across_zones(
    team: Team, account: AwsAccount, sandbox: Sandbox, worker: None
) -> None:
    cluster = wait_for(create(team, account), Cluster.Status.READY)

    assert [step["status"] for step in cluster.steps] == ["done"] * len(STEP_NAMES)
    assert cluster.resources["cluster_arn"].endswith(f"cluster/{cluster.ecs_name}")
    zones = joined_zones(sandbox, cluster)
    assert len(zones) == 2 and len(set(zones)) == 2
    described = aws(sandbox, "ecs").describe_clusters(clusters=[cluster.ecs_name])["clusters"][0]
    assert (
        described["defaultCapacityProviderStrategy"][0]["capacityProvider"]
        == (cluster.resources["capacity_provider_name"])
    )
    assert cluster.current_job is None


def test_provisioning_again_creates_nothing_new(
    team: Team, account: AwsAccount, sandbox: Sandbox, worker: None
) -> None:
    cluster = wait_for(create(team, account), Cluster.Status.READY)
    before = inventory(sandbox, cluster)

    Cluster.objects.filter(pk=cluster.pk).update(status=Cluster.Status.FAILED)

    cluster_retry(cluster=cluster, actor=None)  # every step runs again
    wait_for(cluster, Cluster.Status.READY)

    assert inventory(sandbox, cluster) == before
    assert Job.objects.filter(kind="provision_cluster", status="succeeded").count() == 2


class WorkerKilled(BaseException):
    """Escapes run_job's error handling, as a SIGKILL would: the row stays running."""


@pytest.mark.parametrize("crash_after", STEP_NAMES[:-1])
def test_a_job_that_dies_after_any_step_is_finished_by_the_reconciler(
    crash_after: str,
    team: Team,
    account: AwsAccount,
    sandbox: Sandbox,
    rq_redis: redis.Redis,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reference = wait_for_in_process(create(team, account, desired_instances=2))
    expected = shape(inventory(sandbox, reference))
    start_afresh(sandbox, account)
    Cluster.objects.filter(pk=reference.pk).update(status=Cluster.Status.DELETED)

    cluster = create(team, account)
    monkeypatch.setattr(propagation.settings, "seconds", 0.0)  # the one run reaches every step
    die_after(crash_after, monkeypatch)
    job = Job.objects.get(target_id=cluster.pk, kind="provision_cluster")
    with pytest.raises(WorkerKilled):
        jobs.run_job(job.pk)
    monkeypatch.undo()
    rq_redis.flushdb()  # the dead worker's RQ job is gone with it
    factories.backdate_lost(job)

    assert jobs.jobs_requeue_lost() == 1
    finished = wait_for_in_process(cluster)

    assert shape(inventory(sandbox, finished)) == expected
    assert finished.resources["vpc_id"] == inventory(sandbox, finished)["vpcs"][0]


def start_afresh(sandbox: Sandbox, account: AwsAccount) -> None:
    """An empty sandbox, where the customer connects the account again (the old role is gone)."""
    sandbox.reset()
    clients.forget_role_sessions()
    factories.connect_sandbox(account)


def die_after(step_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def dying(step: provisioning.Step) -> provisioning.Step:
        def run(spec: provisioning.ClusterSpec) -> dict[str, Any] | None:
            step(spec)
            raise WorkerKilled(step_name)

        return run

    steps = [(n, dying(s) if n == step_name else s) for n, s in provisioning.STEPS]
    monkeypatch.setattr(provisioning, "STEPS", steps)


def shape(found: dict[str, Any]) -> dict[str, int]:
    """How many of each resource there are (ids differ between two provisionings)."""
    return {kind: value if isinstance(value, int) else len(value) for kind, value in found.items()}


def test_throttling_on_30_percent_of_calls_reaches_the_same_end_state(
    team: Team, account: AwsAccount, sandbox: Sandbox, rq_redis: redis.Redis
) -> None:
    reference = wait_for_in_process(create(team, account))
    expected = shape(inventory(sandbox, reference))
    start_afresh(sandbox, account)
    Cluster.objects.filter(pk=reference.pk).update(status=Cluster.Status.DELETED)
    with throttled(0.3) as hits:
        cluster = wait_for_in_process(create(team, account), rounds=400)

    assert cluster.status == Cluster.Status.READY
    assert shape(inventory(sandbox, cluster)) == expected
    assert len(hits) > 10


def test_scaling_changes_the_instances_in_ecs(
    team: Team, account: AwsAccount, sandbox: Sandbox, rq_redis: redis.Redis
) -> None:
    cluster = wait_for_in_process(create(team, account))

    for desired in (3, 1):
        cluster = cluster_scale(
            cluster=cluster, actor=None, min_instances=1, desired_instances=desired
        )
        wait_for_in_process(cluster)
        deadline = time.monotonic() + 20
        while len(joined_zones(sandbox, cluster)) != desired and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(joined_zones(sandbox, cluster)) == desired

    cluster = cluster_scale(cluster=cluster, actor=None, instance_type="t3.large")
    wait_for_in_process(cluster)
    template = aws(sandbox, "ec2").describe_launch_template_versions(
        LaunchTemplateName=cluster.resources["launch_template_name"], Versions=["$Latest"]
    )["LaunchTemplateVersions"][0]
    assert template["LaunchTemplateData"]["InstanceType"] == "t3.large"


def test_bad_scaling_is_refused_before_anything_runs(
    team: Team, account: AwsAccount, rq_redis: redis.Redis
) -> None:
    cluster = factories.make_cluster(account, status=Cluster.Status.READY)

    with pytest.raises(ValidationError, match="min ≤ desired ≤ max"):
        cluster_scale(cluster=cluster, actor=None, min_instances=5, max_instances=4)
    with pytest.raises(ValidationError):
        cluster_scale(cluster=cluster, actor=None, max_instances=101, desired_instances=101)
    assert not Job.objects.filter(kind="scale_cluster").exists()


def test_teardown_refuses_while_apps_run_then_leaves_nothing(
    team: Team, account: AwsAccount, sandbox: Sandbox, rq_redis: redis.Redis
) -> None:
    cluster = wait_for_in_process(create(team, account))
    app = factories.make_app(cluster, name="web")

    with pytest.raises(ValidationError, match="still runs 1 app.*web"):
        cluster_delete(cluster=cluster, actor=None)
    app.delete()
    cluster = wait_for_in_process(cluster_delete(cluster=cluster, actor=None))

    assert cluster.status == Cluster.Status.DELETED
    tagging = aws(sandbox, "resourcegroupstaggingapi")
    tagged = tagging.get_resources(
        TagFilters=[{"Key": "tinystacks:cluster", "Values": [str(cluster.uuid)]}]
    )["ResourceTagMappingList"]
    live = [t["ResourceARN"] for t in tagged if ":instance/" not in t["ResourceARN"]
            and ":cluster/" not in t["ResourceARN"]]  # fmt: skip
    assert live == []
    running = aws(sandbox, "ec2").describe_instances(
        Filters=[
            {"Name": "tag:tinystacks:cluster", "Values": [str(cluster.uuid)]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]
    )["Reservations"]
    assert running == []


def test_an_unreachable_aws_is_waited_out_with_growing_back_off(
    team: Team, account: AwsAccount, sandbox: Sandbox, rq_redis: redis.Redis
) -> None:
    outage = {"calls_left": 25}
    this_thread = threading.get_ident()  # stray threads of other tests must not use it up

    def unreachable(request: Any, **kwargs: Any) -> None:
        if outage["calls_left"] > 0 and threading.get_ident() == this_thread:
            outage["calls_left"] -= 1
            raise EndpointConnectionError(endpoint_url=request.url)

    remove = clients.add_client_hook("before-send", unreachable)
    try:
        cluster = wait_for_in_process(create(team, account), rounds=400)
    finally:
        remove()

    assert cluster.status == Cluster.Status.READY
    job = Job.objects.get(kind="provision_cluster", target_id=cluster.pk)
    # Only the outage's waits: waiting for instances to join is not a failure and not counted.
    waits = [line["message"] for line in job.log if "Could not reach AWS" in line["message"]]
    assert waits
    assert "in 5 s" in waits[0] and "in 10 s" in waits[1]
    assert (job.status, job.attempts, job.retries) == (Job.Status.SUCCEEDED, 1, len(waits))


def test_provisioning_waits_for_the_new_instance_profile_to_propagate(
    team: Team,
    account: AwsAccount,
    sandbox: Sandbox,
    rq_redis: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(propagation.settings, "seconds", 30.0)

    cluster, job = create_and_run_once(team, account)  # up to the group, IAM not ready for it

    cluster.refresh_from_db()
    assert cluster.status == Cluster.Status.PROVISIONING
    waiting = next(step for step in cluster.steps if step["name"] == "auto_scaling_group")
    assert "to propagate in IAM" in waiting["error"]
    assert Job.objects.get(pk=job.pk).status == Job.Status.QUEUED

    cluster = wait_for_in_process(cluster)  # each retry comes back 5 s later

    assert cluster.status == Cluster.Status.READY, cluster.status_reason


def test_an_instance_profile_that_never_propagates_fails_the_cluster_saying_so(
    team: Team,
    account: AwsAccount,
    sandbox: Sandbox,
    rq_redis: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(propagation.settings, "seconds", 10_000.0)
    cluster, job = create_and_run_once(team, account)
    Job.objects.filter(pk=job.pk).update(
        created_at=timezone.now() - jobs.INSTANCES_JOIN_TIMEOUT - timedelta(seconds=1)
    )

    cluster = wait_for_in_process(cluster)

    assert cluster.status == Cluster.Status.FAILED
    assert cluster.status_reason.startswith("auto_scaling_group: Timed out: waiting for the new")
    assert aws(sandbox, "autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"] == []


def test_teardown_waits_while_an_instance_still_uses_the_network_then_leaves_nothing(
    team: Team, account: AwsAccount, sandbox: Sandbox, rq_redis: redis.Redis
) -> None:
    cluster = wait_for_in_process(create(team, account))
    ec2 = aws(sandbox, "ec2")
    straggler = ec2.run_instances(
        ImageId="ami-0a1b2c3d4e5f67890", MinCount=1, MaxCount=1,
        SubnetId=cluster.resources["subnet_ids"][0],
        SecurityGroupIds=[cluster.resources["security_group_id"]],
    )["Instances"][0]["InstanceId"]  # fmt: skip
    cluster_delete(cluster=cluster, actor=None)
    job = Job.objects.get(target_id=cluster.pk, kind="delete_cluster")

    jobs.run_job(job.pk)  # waits while ECS deletes the capacity provider
    sandbox.step()
    jobs.run_job(job.pk)

    cluster.refresh_from_db()
    assert cluster.status == Cluster.Status.DELETING
    waiting = next(step for step in cluster.steps if step["name"] == "security_group")
    assert "has a dependent object" in waiting["error"]
    ec2.terminate_instances(InstanceIds=[straggler])
    cluster = wait_for_in_process(cluster)

    assert cluster.status == Cluster.Status.DELETED, cluster.status_reason
    tag = [{"Name": "tag:tinystacks:cluster", "Values": [str(cluster.uuid)]}]
    assert ec2.describe_vpcs(Filters=tag)["Vpcs"] == []
    assert ec2.describe_subnets(Filters=tag)["Subnets"] == []


def test_teardown_goes_on_when_ecs_deregistered_an_instance_first(
    team: Team, account: AwsAccount, sandbox: Sandbox, rq_redis: redis.Redis
) -> None:
    """ECS deregisters an instance itself as its EC2 instance terminates, between our listing and
    our deregistering it."""
    cluster = wait_for_in_process(create(team, account))
    ecs = aws(sandbox, "ecs")

    def deregistered_by_ecs_first(params: dict[str, Any], **kwargs: Any) -> None:
        ecs.deregister_container_instance(
            cluster=params["cluster"], containerInstance=params["containerInstance"], force=True
        )

    remove = clients.add_client_hook(
        "before-parameter-build.ecs.DeregisterContainerInstance", deregistered_by_ecs_first
    )
    try:
        cluster = wait_for_in_process(cluster_delete(cluster=cluster, actor=None))
    finally:
        remove()

    assert cluster.status == Cluster.Status.DELETED, cluster.status_reason
    [gone] = ecs.describe_clusters(clusters=[cluster.ecs_name])["clusters"]
    assert gone["status"] == "INACTIVE"


def test_the_group_starts_empty_and_instances_are_asked_for_once_the_capacity_provider_owns_it(
    team: Team, account: AwsAccount, sandbox: Sandbox, rq_redis: redis.Redis
) -> None:
    autoscaling = aws(sandbox, "autoscaling")
    seen_by_the_capacity_provider: list[tuple[int, int]] = []

    def group_when_attached(params: dict[str, Any], **kwargs: Any) -> None:
        name = params["autoScalingGroupProvider"]["autoScalingGroupArn"].split("/")[-1]
        [group] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
            "AutoScalingGroups"
        ]
        seen_by_the_capacity_provider.append((group["DesiredCapacity"], len(group["Instances"])))

    remove = clients.add_client_hook(
        "before-parameter-build.ecs.CreateCapacityProvider", group_when_attached
    )
    try:
        cluster = wait_for_in_process(create(team, account, desired_instances=2))
    finally:
        remove()

    assert cluster.status == Cluster.Status.READY, cluster.status_reason
    assert seen_by_the_capacity_provider == [(0, 0)]
    [group] = autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[cluster.resources["auto_scaling_group_name"]]
    )["AutoScalingGroups"]
    assert (group["MinSize"], group["DesiredCapacity"]) == (cluster.min_instances, 2)
    assert all(instance["ProtectedFromScaleIn"] for instance in group["Instances"])


def test_a_resize_leaves_the_desired_count_to_managed_scaling_unless_it_is_what_changed(
    team: Team, account: AwsAccount, sandbox: Sandbox, rq_redis: redis.Redis
) -> None:
    cluster = wait_for_in_process(create(team, account, desired_instances=2, max_instances=6))
    autoscaling = aws(sandbox, "autoscaling")
    name = cluster.resources["auto_scaling_group_name"]
    autoscaling.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=3)  # tasks waited

    def desired() -> int:
        [group] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
            "AutoScalingGroups"
        ]
        return int(group["DesiredCapacity"])

    cluster = wait_for_in_process(cluster_scale(cluster=cluster, actor=None, max_instances=8))
    assert desired() == 3
    cluster = wait_for_in_process(cluster_scale(cluster=cluster, actor=None, desired_instances=4))
    assert desired() == 4

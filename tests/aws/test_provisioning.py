"""Provisioning steps against moto: all tagged; a re-run adopts instead of copying."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any, Literal

import boto3
import pytest
from moto import mock_aws

from deployments import jobs
from deployments.aws import ownership, provisioning
from deployments.aws.clients import AccountAccess
from deployments.aws.provisioning import ClusterSpec
from deployments.sandbox import patches, propagation
from deployments.sandbox.simulator import Simulator

REGION = "us-east-1"
# The last step waits for instances to join ECS, which needs the sandbox's ECS agent.
RESOURCE_STEPS = provisioning.STEPS[:-1]


EXPECTED_INVENTORY = {
    "vpcs": 1, "subnets": 3, "gateways": 1, "route_tables": 1, "security_groups": 1,
    "launch_templates": 1, "auto_scaling_groups": 1, "capacity_providers": 1, "roles": 2,
}  # fmt: skip


@pytest.fixture(autouse=True)
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh moto account per test: a Region holds 5 VPCs, as AWS's default quota says."""
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    patches.apply()
    with mock_aws():
        yield


def new_spec(cluster_uuid: str | None = None) -> ClusterSpec:
    unique = uuid.UUID(cluster_uuid) if cluster_uuid else uuid.uuid4()
    return ClusterSpec(
        access=AccountAccess(mode="ambient", region=REGION),
        uuid=str(unique),
        team_slug="acme",
        ecs_name=f"tinystacks-acme-main-{unique.hex}",
        name_prefix=f"tinystacks-{unique.hex}",
        instance_type="t3.medium",
        min_instances=2,
        desired_instances=2,
        max_instances=4,
        secrets_path="/tinystacks/acme",
    )


def run_steps(spec: ClusterSpec, steps: list[tuple[str, Any]]) -> None:
    """Run `steps` as the job would: a step that waits on AWS is run again once time has passed
    (for IAM's propagation, and a simulator tick for ECS and instances shutting down)."""
    simulator = Simulator(seed=7)
    for _, step in steps:
        for _ in range(10):
            try:
                spec.resources.update(step(spec) or {})
                break
            except provisioning.StepPending:
                propagation.CLOCK.advance(jobs.STEP_RETRY_SECONDS)
                simulator.tick()
        else:
            raise AssertionError(f"{step.__name__} still waits")


def provision(spec: ClusterSpec, steps: list[tuple[str, Any]] = RESOURCE_STEPS) -> None:
    run_steps(spec, steps)


def inventory(spec: ClusterSpec) -> dict[str, int]:
    """How many of each kind of resource this cluster has, read back from AWS."""
    tag: list[Any] = [{"Name": "tag:tinystacks:cluster", "Values": [spec.uuid]}]
    ec2 = boto3.client("ec2", region_name=REGION)
    named: list[Any] = [{"Name": "launch-template-name", "Values": [spec.name("instances")]}]
    groups = boto3.client("autoscaling", region_name=REGION).describe_auto_scaling_groups(
        AutoScalingGroupNames=[spec.name("instances")]
    )
    providers = boto3.client("ecs", region_name=REGION).describe_capacity_providers(
        capacityProviders=[spec.name("capacity")]
    )
    return {
        "vpcs": len(ec2.describe_vpcs(Filters=tag)["Vpcs"]),
        "subnets": len(ec2.describe_subnets(Filters=tag)["Subnets"]),
        "gateways": len(ec2.describe_internet_gateways(Filters=tag)["InternetGateways"]),
        "route_tables": len(ec2.describe_route_tables(Filters=tag)["RouteTables"]),
        "security_groups": len(ec2.describe_security_groups(Filters=tag)["SecurityGroups"]),
        "launch_templates": len(ec2.describe_launch_templates(Filters=named)["LaunchTemplates"]),
        "auto_scaling_groups": len(groups["AutoScalingGroups"]),
        "capacity_providers": len(providers["capacityProviders"]),
        "roles": len(
            [
                r
                for r in boto3.client("iam").list_roles()["Roles"]
                if r["RoleName"].startswith(spec.name(""))
            ]
        ),  # fmt: skip
    }


def test_provisioning_builds_the_whole_inventory() -> None:
    spec = new_spec()

    provision(spec)

    assert inventory(spec) == EXPECTED_INVENTORY
    ecs = boto3.client("ecs", region_name=REGION)
    cluster = ecs.describe_clusters(clusters=[spec.ecs_name], include=["SETTINGS"])["clusters"][0]
    assert cluster["defaultCapacityProviderStrategy"][0]["capacityProvider"] == spec.name(
        "capacity"
    )
    group = boto3.client("autoscaling", region_name=REGION).describe_auto_scaling_groups(
        AutoScalingGroupNames=[spec.name("instances")]
    )["AutoScalingGroups"][0]
    assert set(group["VPCZoneIdentifier"].split(",")) == set(spec.resources["subnet_ids"])
    assert group["NewInstancesProtectedFromScaleIn"] is True
    assert {"Key": "tinystacks:cluster", "Value": spec.uuid} in [
        {"Key": t["Key"], "Value": t["Value"]} for t in group["Tags"]
    ]
    assert len(set(spec.resources["availability_zones"])) == 3


def test_launch_template_joins_the_ecs_cluster_with_imdsv2() -> None:
    spec = new_spec()
    provision(spec)

    data = boto3.client("ec2", region_name=REGION).describe_launch_template_versions(
        LaunchTemplateId=spec.resources["launch_template_id"]
    )["LaunchTemplateVersions"][0]["LaunchTemplateData"]

    assert f"ECS_CLUSTER={spec.ecs_name}" in base64.b64decode(data["UserData"]).decode()
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["ImageId"].startswith("ami-")


def secrets_readable_by(spec: ClusterSpec) -> Any:
    """What the execution role's secrets policy lets it read, as IAM holds it."""
    document: Any = boto3.client("iam").get_role_policy(
        RoleName=spec.name("execution"), PolicyName=provisioning.SECRETS_POLICY_NAME
    )["PolicyDocument"]
    [read] = [s for s in document["Statement"] if s["Action"] == ["ssm:GetParameters"]]
    return read["Resource"]


def test_the_execution_role_reads_only_its_teams_parameters_in_its_region() -> None:
    spec = new_spec()

    provision(spec)

    account = spec.resources["execution_role_arn"].split(":")[4]
    assert secrets_readable_by(spec) == (
        f"arn:aws:ssm:{REGION}:{account}:parameter/tinystacks/acme/*"
    )


def test_a_cluster_provisioned_with_the_account_wide_policy_is_narrowed_on_resize() -> None:
    spec = new_spec()
    provision(spec)
    boto3.client("iam").put_role_policy(  # what earlier versions wrote
        RoleName=spec.name("execution"),
        PolicyName=provisioning.SECRETS_POLICY_NAME,
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["ssm:GetParameters"],
                        "Resource": "arn:aws:ssm:*:*:parameter/tinystacks/*",
                    }
                ],
            }
        ),
    )

    provisioning.scale_instances(spec)

    assert secrets_readable_by(spec).endswith(":parameter/tinystacks/acme/*")
    assert secrets_readable_by(spec).startswith(f"arn:aws:ssm:{REGION}:")


def test_running_every_step_again_creates_nothing_new() -> None:
    spec = new_spec()
    provision(spec)
    first_resources, first_inventory = dict(spec.resources), inventory(spec)

    provision(spec)

    assert spec.resources == first_resources
    assert inventory(spec) == first_inventory


@pytest.mark.parametrize("crash_after", range(1, len(RESOURCE_STEPS)))
def test_a_crash_that_lost_the_stored_ids_is_resumed_without_duplicates(crash_after: int) -> None:
    spec = new_spec()
    provision(spec, RESOURCE_STEPS[:crash_after])  # the worker dies before saving the ids

    resumed = new_spec(spec.uuid)
    provision(resumed)

    assert inventory(spec) == EXPECTED_INVENTORY
    tag: list[Any] = [{"Name": "tag:tinystacks:cluster", "Values": [spec.uuid]}]
    [vpc] = boto3.client("ec2", region_name=REGION).describe_vpcs(Filters=tag)["Vpcs"]
    assert resumed.resources["vpc_id"] == vpc["VpcId"]


def tagged_resources(spec: ClusterSpec) -> list[str]:
    """Every live resource carrying this cluster's tag, found by the tagging API. AWS keeps
    terminated instances and deleted (INACTIVE) ECS clusters visible for a while: not live."""
    tagging = boto3.client("resourcegroupstaggingapi", region_name=REGION)
    found = tagging.get_resources(TagFilters=[{"Key": "tinystacks:cluster", "Values": [spec.uuid]}])
    return [
        mapping["ResourceARN"]
        for mapping in found["ResourceTagMappingList"]
        if is_live(mapping["ResourceARN"])
    ]


def is_live(arn: str) -> bool:
    if ":instance/" in arn:
        instance_id = arn.rsplit("/", 1)[1]
        reservations = boto3.client("ec2", region_name=REGION).describe_instances(
            InstanceIds=[instance_id]
        )["Reservations"]
        return bool(reservations[0]["Instances"][0]["State"]["Name"] != "terminated")
    if ":ecs:" in arn and ":cluster/" in arn:
        clusters = boto3.client("ecs", region_name=REGION).describe_clusters(clusters=[arn])
        return any(cluster["status"] == "ACTIVE" for cluster in clusters["clusters"])
    return True


def teardown(spec: ClusterSpec) -> None:
    run_steps(spec, provisioning.TEARDOWN_STEPS)


def test_teardown_leaves_nothing_tagged_behind() -> None:
    spec = new_spec()
    provision(spec)
    assert tagged_resources(spec)

    teardown(spec)

    assert tagged_resources(spec) == []
    assert inventory(spec) == dict.fromkeys(EXPECTED_INVENTORY, 0)


def test_teardown_resumes_after_a_crash() -> None:
    spec = new_spec()
    provision(spec)
    run_steps(spec, provisioning.TEARDOWN_STEPS[:3])  # the worker dies after three steps

    teardown(spec)

    assert inventory(spec) == dict.fromkeys(EXPECTED_INVENTORY, 0)


def test_teardown_waits_while_a_service_still_uses_the_capacity_provider() -> None:
    spec = new_spec()
    provision(spec)
    ecs = boto3.client("ecs", region_name=REGION)
    definition = ecs.register_task_definition(
        family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}]
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(  # on the cluster's default strategy: our capacity provider
        cluster=spec.ecs_name, serviceName="web", taskDefinition=definition, desiredCount=0
    )

    with pytest.raises(provisioning.StepPending, match="capacity provider is in use"):
        provisioning.teardown_capacity_provider(spec)
    [cluster] = ecs.describe_clusters(clusters=[spec.ecs_name])["clusters"]
    assert cluster["capacityProviders"] == [spec.name("capacity")]

    ecs.delete_service(cluster=spec.ecs_name, service="web", force=True)
    teardown(spec)  # the service drains on the next tick

    assert inventory(spec) == dict.fromkeys(EXPECTED_INVENTORY, 0)


def foreign_role(spec: ClusterSpec) -> str:
    name = spec.name("instance")
    boto3.client("iam").create_role(
        RoleName=name,
        AssumeRolePolicyDocument="{}",
        Tags=[{"Key": "tinystacks:cluster", "Value": str(uuid.uuid4())}],
    )
    return name


def foreign_template(spec: ClusterSpec) -> str:
    name = spec.name("instances")
    boto3.client("ec2", region_name=REGION).create_launch_template(
        LaunchTemplateName=name, LaunchTemplateData={"InstanceType": "t3.micro"}
    )
    return name


def still_there(kind: str, name: str) -> bool:
    if kind == "IAM role":
        return bool(boto3.client("iam").get_role(RoleName=name)["Role"])
    found = boto3.client("ec2", region_name=REGION).describe_launch_templates(
        LaunchTemplateNames=[name]
    )["LaunchTemplates"]
    return bool(found)


@pytest.mark.parametrize(
    ("kind", "put"), [("IAM role", foreign_role), ("Launch template", foreign_template)]
)
def test_a_resource_under_our_name_without_our_tags_is_refused_and_left_alone(
    kind: str, put: Any
) -> None:
    spec = new_spec()
    name = put(spec)

    with pytest.raises(ownership.NotOurs, match=f"{kind} {name} exists in this account but "
                                                 "belongs to something else"):  # fmt: skip
        provision(spec)
    teardown(spec)

    assert still_there(kind, name)


def provisioned_with_a_service(sim: Simulator, instances: int, tasks: int) -> ClusterSpec:
    """A provisioned cluster whose instances have joined, running a service of `tasks` tasks
    (spread across the instances) on its default capacity provider."""
    spec = new_spec()
    spec.desired_instances = instances
    provision(spec)
    sim.tick()  # the agents register the instances
    ecs = boto3.client("ecs", region_name=REGION)
    definition = ecs.register_task_definition(
        family="web",
        cpu="256",
        memory="512",
        containerDefinitions=[
            {"name": "web", "image": "nginx:1.27", "portMappings": [{"containerPort": 80}]}
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(
        cluster=spec.ecs_name, serviceName="web", taskDefinition=definition, desiredCount=tasks
    )
    for _ in range(5):
        sim.tick()
    assert service_tasks(spec, "RUNNING") and len(service_tasks(spec, "RUNNING")) == tasks
    return spec


def service_tasks(
    spec: ClusterSpec, desired_status: Literal["PENDING", "RUNNING", "STOPPED"]
) -> list[dict[str, Any]]:
    ecs = boto3.client("ecs", region_name=REGION)
    arns = ecs.list_tasks(cluster=spec.ecs_name, serviceName="web", desiredStatus=desired_status)
    if not arns["taskArns"]:
        return []
    tasks: list[Any] = ecs.describe_tasks(cluster=spec.ecs_name, tasks=arns["taskArns"])["tasks"]
    return tasks


def container_instance_states(spec: ClusterSpec) -> list[str]:
    ecs = boto3.client("ecs", region_name=REGION)
    arns = ecs.list_container_instances(cluster=spec.ecs_name)["containerInstanceArns"]
    described = ecs.describe_container_instances(cluster=spec.ecs_name, containerInstances=arns)
    return sorted(instance["status"] for instance in described["containerInstances"])


def test_a_resize_down_drains_the_instances_it_takes_away_so_their_tasks_move_first() -> None:
    sim = Simulator(tick_seconds=60, seed=7)
    spec = provisioned_with_a_service(sim, instances=3, tasks=3)

    spec.desired_instances = 2
    changes = provisioning.scale_instances(spec)
    assert "1 container instances set DRAINING" in changes
    for _ in range(10):
        sim.tick()
        running = [t for t in service_tasks(spec, "RUNNING") if t["lastStatus"] == "RUNNING"]
        assert len(running) >= 3  # the service's minimumHealthyPercent (100) holds throughout

    assert container_instance_states(spec) == ["ACTIVE", "ACTIVE"]
    [moved] = service_tasks(spec, "STOPPED")
    assert moved["stoppedReason"] == "Service web: container instance is in DRAINING state"
    [group] = boto3.client("autoscaling", region_name=REGION).describe_auto_scaling_groups(
        AutoScalingGroupNames=[spec.name("instances")]
    )["AutoScalingGroups"]
    assert (group["DesiredCapacity"], len(group["Instances"])) == (2, 2)


def test_a_resize_drains_an_idle_instance_first_and_one_back_up_sets_it_active_again() -> None:
    sim = Simulator(tick_seconds=60, seed=7)
    spec = provisioned_with_a_service(sim, instances=3, tasks=2)
    ecs = boto3.client("ecs", region_name=REGION)

    def instances() -> list[dict[str, Any]]:
        arns = ecs.list_container_instances(cluster=spec.ecs_name)["containerInstanceArns"]
        described: list[Any] = ecs.describe_container_instances(
            cluster=spec.ecs_name, containerInstances=arns
        )["containerInstances"]
        return described

    spec.desired_instances = 2
    provisioning.scale_instances(spec)
    [draining] = [i for i in instances() if i["status"] == "DRAINING"]
    assert draining["runningTasksCount"] == 0  # the idle one, which ECS lets go at once

    spec.desired_instances = 3
    provisioning.scale_instances(spec)
    assert [i["status"] for i in instances()] == ["ACTIVE"] * 3

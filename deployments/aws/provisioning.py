"""Provision and tear down an ECS cluster of EC2 instances, one resumable step at a time.

Every step first looks its resource up (by our tags, or by the name stored on the Cluster row
where AWS has no tag search) and adopts it when it exists, so a step re-run after a crash,
a retry or a throttle never creates a second copy. A resource found by name is adopted only if it
carries the cluster's tags; one that does not is refused (provisioning) or left alone (teardown).
Each step returns the ids it owns; the caller stores them on the Cluster row after every step.
"""

from __future__ import annotations

import base64
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import batched
from typing import Any

from botocore.exceptions import ClientError

from deployments.aws import inventory, ownership
from deployments.aws.clients import AccountAccess, client
from deployments.aws.permissions import SERVICE_LINKED_ROLES

logger = logging.getLogger(__name__)

ECS_AMI_PARAMETER = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"
INSTANCE_ROLE_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
EXECUTION_ROLE_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
# Tasks read their app's secret config vars from Parameter Store when they start, as the
# cluster's task-execution role (secrets_policy).
SECRETS_POLICY_NAME = "tinystacks-read-secrets"
MAX_AZS = 3
VPC_QUOTA_CODE = "L-F678F1CE"  # Amazon VPC: VPCs per Region
ECS_RESERVED_MEMORY_MIB = 256
STATE_UPDATE_BATCH = 10  # UpdateContainerInstancesState takes at most 10 instances


class StepPending(Exception):
    """The step is waiting on AWS (instances booting); run it again later."""


@dataclass
class ClusterSpec:
    """What to provision, as plain values taken from the Cluster row."""

    access: AccountAccess
    uuid: str
    team_slug: str
    ecs_name: str
    name_prefix: str
    instance_type: str
    min_instances: int
    desired_instances: int
    max_instances: int
    # Where the team's apps keep their secrets in Parameter Store (models.team_aws_path).
    secrets_path: str
    resources: dict[str, Any] = field(default_factory=dict)

    def name(self, kind: str) -> str:
        """The name of a resource found by name rather than by tag."""
        return f"{self.name_prefix}-{kind}"

    def owner(self) -> dict[str, str]:
        """The tags that make a resource this cluster's."""
        return {ownership.CLUSTER_TAG: self.uuid, ownership.TEAM_TAG: self.team_slug}

    def tags(self) -> list[dict[str, str]]:
        return [
            {"Key": key, "Value": value}
            for key, value in {**self.owner(), "Name": self.ecs_name}.items()
        ]

    def ecs_tags(self) -> list[dict[str, str]]:
        return [{"key": t["Key"], "value": t["Value"]} for t in self.tags()]

    def first_ours(
        self, kind: str, name: str, found: list[dict[str, Any]]
    ) -> dict[str, Any] | None:
        """The first resource found by `name`, or None; NotOurs unless it carries this cluster's
        tags."""
        return ownership.first_ours(kind, name, found, self.owner())

    def client(self, service: str) -> Any:
        return client(self.access, service)


def _ec2_tagged(spec: ClusterSpec, kind: str, describe: str, key: str, **filters: Any) -> Any:
    """The first EC2 resource of this cluster returned by `describe`, or None."""
    ec2 = spec.client("ec2")
    response = getattr(ec2, describe)(
        Filters=[{"Name": "tag:tinystacks:cluster", "Values": [spec.uuid]}]
        + [{"Name": name, "Values": values} for name, values in filters.items()]
    )
    found = response[key]
    return found[0] if found else None


def _tag_spec(spec: ClusterSpec, resource_type: str) -> list[dict[str, Any]]:
    return [{"ResourceType": resource_type, "Tags": spec.tags()}]


def step_service_linked_roles(spec: ClusterSpec) -> dict[str, Any]:
    """A fresh account lacks the roles ECS, Auto Scaling and Application Auto Scaling act
    through, and AWS creates them only on some calls (never on CreateCapacityProvider)."""
    iam = spec.client("iam")
    for service in SERVICE_LINKED_ROLES:
        try:
            iam.create_service_linked_role(AWSServiceName=service)
        except ClientError as error:
            if "has been taken" not in error.response["Error"].get("Message", ""):
                raise  # anything but "it exists already"
    return {}


class QuotaReached(Exception):
    """An AWS quota leaves no room for what the cluster needs."""


def _check_vpc_quota(spec: ClusterSpec) -> None:
    quota = spec.client("service-quotas").get_service_quota(
        ServiceCode="vpc", QuotaCode=VPC_QUOTA_CODE
    )["Quota"]
    used = len(spec.client("ec2").describe_vpcs()["Vpcs"])
    if used >= quota["Value"]:
        raise QuotaReached(
            f'The Region already has {used} VPCs, its quota "{quota["QuotaName"]}" '
            f"(Service Quotas: vpc / {VPC_QUOTA_CODE}) is {quota['Value']:g}: delete a VPC or "
            "ask AWS to raise the quota, then retry."
        )


def step_network(spec: ClusterSpec) -> dict[str, Any]:
    ec2 = spec.client("ec2")
    vpc = _ec2_tagged(spec, "vpc", "describe_vpcs", "Vpcs")
    if vpc is None:
        _check_vpc_quota(spec)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=_tag_spec(spec, "vpc"))[
            "Vpc"
        ]
        ec2.modify_vpc_attribute(VpcId=vpc["VpcId"], EnableDnsHostnames={"Value": True})
    vpc_id = vpc["VpcId"]
    gateway = _ec2_tagged(spec, "igw", "describe_internet_gateways", "InternetGateways")
    if gateway is None:
        gateway = ec2.create_internet_gateway(
            TagSpecifications=_tag_spec(spec, "internet-gateway")
        )["InternetGateway"]
    if not any(a["VpcId"] == vpc_id for a in gateway.get("Attachments", [])):
        ec2.attach_internet_gateway(InternetGatewayId=gateway["InternetGatewayId"], VpcId=vpc_id)
    table = _ec2_tagged(spec, "rtb", "describe_route_tables", "RouteTables")
    if table is None:
        table = ec2.create_route_table(
            VpcId=vpc_id, TagSpecifications=_tag_spec(spec, "route-table")
        )["RouteTable"]
    if not any(r.get("DestinationCidrBlock") == "0.0.0.0/0" for r in table.get("Routes", [])):
        ec2.create_route(
            RouteTableId=table["RouteTableId"],
            DestinationCidrBlock="0.0.0.0/0",
            GatewayId=gateway["InternetGatewayId"],
        )
    return {
        "vpc_id": vpc_id,
        "internet_gateway_id": gateway["InternetGatewayId"],
        "route_table_id": table["RouteTableId"],
    }


def step_subnets(spec: ClusterSpec) -> dict[str, Any]:
    ec2 = spec.client("ec2")
    zones = [
        zone["ZoneName"]
        for zone in ec2.describe_availability_zones(
            Filters=[{"Name": "state", "Values": ["available"]}]
        )["AvailabilityZones"]
    ][:MAX_AZS]
    existing = {
        subnet["AvailabilityZone"]: subnet["SubnetId"]
        for subnet in ec2.describe_subnets(
            Filters=[{"Name": "tag:tinystacks:cluster", "Values": [spec.uuid]}]
        )["Subnets"]
    }
    subnet_ids = []
    for index, zone in enumerate(zones):
        subnet_id = existing.get(zone)
        if subnet_id is None:
            subnet_id = ec2.create_subnet(
                VpcId=spec.resources["vpc_id"],
                CidrBlock=f"10.0.{index * 16}.0/20",
                AvailabilityZone=zone,
                TagSpecifications=_tag_spec(spec, "subnet"),
            )["Subnet"]["SubnetId"]
            ec2.modify_subnet_attribute(SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": True})
            ec2.associate_route_table(
                RouteTableId=spec.resources["route_table_id"], SubnetId=subnet_id
            )
        subnet_ids.append(subnet_id)
    return {"subnet_ids": subnet_ids, "availability_zones": zones}


def step_security_group(spec: ClusterSpec) -> dict[str, Any]:
    group = _ec2_tagged(spec, "sg", "describe_security_groups", "SecurityGroups")
    if group is None:
        group_id = spec.client("ec2").create_security_group(
            GroupName=spec.name("instances"),
            Description=f"TinyStacks cluster {spec.ecs_name} instances",
            VpcId=spec.resources["vpc_id"],
            TagSpecifications=_tag_spec(spec, "security-group"),
        )["GroupId"]
    else:
        group_id = group["GroupId"]
    return {"security_group_id": group_id}


def _find_iam(spec: ClusterSpec, kind: str, name: str) -> dict[str, Any] | None:
    """Our role or instance profile (`kind`) called `name`, or None if there is none."""
    iam = spec.client("iam")
    try:
        if kind == "IAM role":
            found: dict[str, Any] = iam.get_role(RoleName=name)["Role"]
        else:
            found = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    except ClientError as error:
        _ignore_missing(error, "NoSuchEntity")
        return None
    return spec.first_ours(kind, name, [found])


def _ensure_role(spec: ClusterSpec, name: str, principal: str, policy_arn: str) -> str:
    iam = spec.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": principal}, "Action": "sts:AssumeRole"}
        ],
    }
    role = (
        _find_iam(spec, "IAM role", name)
        or iam.create_role(
            RoleName=name, AssumeRolePolicyDocument=json.dumps(trust), Tags=spec.tags()
        )["Role"]
    )
    iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)  # idempotent
    return str(role["Arn"])


def step_roles(spec: ClusterSpec) -> dict[str, Any]:
    iam = spec.client("iam")
    instance_role = spec.name("instance")
    _ensure_role(spec, instance_role, "ec2.amazonaws.com", INSTANCE_ROLE_POLICY)
    profile = (
        _find_iam(spec, "IAM instance profile", instance_role)
        or (
            iam.create_instance_profile(InstanceProfileName=instance_role, Tags=spec.tags())[
                "InstanceProfile"
            ]
        )
    )
    if not any(role["RoleName"] == instance_role for role in profile.get("Roles", [])):
        iam.add_role_to_instance_profile(InstanceProfileName=instance_role, RoleName=instance_role)
    execution_role_arn = _ensure_role(
        spec, spec.name("execution"), "ecs-tasks.amazonaws.com", EXECUTION_ROLE_POLICY
    )
    _scope_secrets(spec, execution_role_arn)
    return {
        "instance_role_name": instance_role,
        "instance_profile_arn": profile["Arn"],
        "execution_role_arn": execution_role_arn,
    }


def secrets_policy(spec: ClusterSpec, execution_role_arn: str) -> dict[str, Any]:
    """The execution role reads its own team's parameters only, in the cluster's Region and
    account. A cluster runs one team's apps, and every app's parameters lie under the team's path
    (the slug cannot change once the team exists). Not one statement per app: a new app would
    have to wait out IAM's propagation before its first task could start, and a role's inline
    policies hold 10,240 characters, about 70 apps' paths."""
    partition, account = execution_role_arn.split(":")[1], execution_role_arn.split(":")[4]
    region = spec.access.region
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["ssm:GetParameters"],
                "Resource": f"arn:{partition}:ssm:{region}:{account}:parameter"
                f"{spec.secrets_path}/*",
            },
            {
                # SecureStrings, decrypted only on Parameter Store's behalf.
                "Effect": "Allow",
                "Action": ["kms:Decrypt"],
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:ViaService": f"ssm.{region}.amazonaws.com"}},
            },
        ],
    }


def _scope_secrets(spec: ClusterSpec, execution_role_arn: str) -> None:
    """Idempotent: the same document replaces itself, and one written by an earlier version
    (every team's parameters) is narrowed on the cluster's next provisioning or resize."""
    spec.client("iam").put_role_policy(
        RoleName=spec.name("execution"),
        PolicyName=SECRETS_POLICY_NAME,
        PolicyDocument=json.dumps(secrets_policy(spec, execution_role_arn)),
    )


def user_data(ecs_name: str) -> str:
    script = (
        "#!/bin/bash\n"
        f"echo ECS_CLUSTER={ecs_name} >> /etc/ecs/ecs.config\n"
        f"echo ECS_RESERVED_MEMORY={ECS_RESERVED_MEMORY_MIB} >> /etc/ecs/ecs.config\n"
        "echo ECS_ENABLE_CONTAINER_METADATA=true >> /etc/ecs/ecs.config\n"
    )
    return base64.b64encode(script.encode()).decode()


def _launch_template_data(spec: ClusterSpec) -> dict[str, Any]:
    image_id = spec.client("ssm").get_parameter(Name=ECS_AMI_PARAMETER)["Parameter"]["Value"]
    return {
        "ImageId": image_id,
        "InstanceType": spec.instance_type,
        "IamInstanceProfile": {"Arn": spec.resources["instance_profile_arn"]},
        "SecurityGroupIds": [spec.resources["security_group_id"]],
        "UserData": user_data(spec.ecs_name),
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
        "TagSpecifications": _tag_spec(spec, "instance"),
    }


def _find_launch_template(spec: ClusterSpec) -> dict[str, Any] | None:
    name = spec.name("instances")
    found = spec.client("ec2").describe_launch_templates(
        Filters=[{"Name": "launch-template-name", "Values": [name]}]
    )["LaunchTemplates"]
    return spec.first_ours("Launch template", name, found)


def step_launch_template(spec: ClusterSpec) -> dict[str, Any]:
    ec2 = spec.client("ec2")
    name = spec.name("instances")
    found = _find_launch_template(spec)
    if found:
        template_id = found["LaunchTemplateId"]
    else:
        template_id = ec2.create_launch_template(
            LaunchTemplateName=name,
            LaunchTemplateData=_launch_template_data(spec),
            TagSpecifications=_tag_spec(spec, "launch-template"),
        )["LaunchTemplate"]["LaunchTemplateId"]
    return {"launch_template_id": template_id, "launch_template_name": name}


def _find_ecs_cluster(spec: ClusterSpec) -> dict[str, Any] | None:
    found = [
        c for c in spec.client("ecs").describe_clusters(
            clusters=[spec.ecs_name], include=["TAGS"]
        )["clusters"]
        if c["status"] == "ACTIVE"
    ]  # fmt: skip
    return spec.first_ours("ECS cluster", spec.ecs_name, found)


def step_ecs_cluster(spec: ClusterSpec) -> dict[str, Any]:
    found = _find_ecs_cluster(spec)
    if found:
        return {"cluster_arn": found["clusterArn"]}
    cluster = spec.client("ecs").create_cluster(
        clusterName=spec.ecs_name,
        settings=[{"name": "containerInsights", "value": "enabled"}],
        tags=spec.ecs_tags(),
    )["cluster"]
    return {"cluster_arn": cluster["clusterArn"]}


def _describe_group(spec: ClusterSpec) -> dict[str, Any] | None:
    name = spec.name("instances")
    groups = spec.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"
    ]
    return spec.first_ours("Auto Scaling group", name, groups)


def _wait_out_instance_profile_propagation(spec: ClusterSpec, error: ClientError) -> None:
    """A new instance profile takes seconds to reach EC2 and Auto Scaling, which call it invalid
    meanwhile; re-raise any other error."""
    if "Invalid IAM Instance Profile" not in error.response["Error"].get("Message", ""):
        raise error
    raise StepPending(
        f"waiting for the new instance profile {spec.name('instance')} to propagate in IAM"
    ) from error


def step_auto_scaling_group(spec: ClusterSpec) -> dict[str, Any]:
    name = spec.name("instances")
    group = _describe_group(spec)
    if group is None:
        try:
            spec.client("autoscaling").create_auto_scaling_group(
                AutoScalingGroupName=name,
                LaunchTemplate={
                    "LaunchTemplateId": spec.resources["launch_template_id"],
                    "Version": "$Latest",
                },
                # Empty until the capacity provider owns it: instances are asked for after.
                MinSize=0,
                MaxSize=spec.max_instances,
                DesiredCapacity=0,
                VPCZoneIdentifier=",".join(spec.resources["subnet_ids"]),
                NewInstancesProtectedFromScaleIn=True,
                Tags=[{**tag, "PropagateAtLaunch": True} for tag in spec.tags()],
            )
        except ClientError as error:
            _wait_out_instance_profile_propagation(spec, error)
        group = _describe_group(spec)
        assert group is not None
    return {"auto_scaling_group_name": name, "auto_scaling_group_arn": group["AutoScalingGroupARN"]}


def _find_capacity_provider(spec: ClusterSpec) -> dict[str, Any] | None:
    name = spec.name("capacity")
    found = [
        p for p in spec.client("ecs").describe_capacity_providers(
            capacityProviders=[name], include=["TAGS"]
        )["capacityProviders"]
        if p.get("status") == "ACTIVE"
    ]  # fmt: skip
    return spec.first_ours("Capacity provider", name, found)


def step_capacity_provider(spec: ClusterSpec) -> dict[str, Any]:
    ecs = spec.client("ecs")
    name = spec.name("capacity")
    found = _find_capacity_provider(spec)
    if found:
        arn = found["capacityProviderArn"]
    else:
        arn = ecs.create_capacity_provider(
            name=name,
            autoScalingGroupProvider={
                "autoScalingGroupArn": spec.resources["auto_scaling_group_arn"],
                "managedScaling": {"status": "ENABLED", "targetCapacity": 100},
                "managedTerminationProtection": "ENABLED",
            },
            tags=spec.ecs_tags(),
        )["capacityProvider"]["capacityProviderArn"]
    ecs.put_cluster_capacity_providers(
        cluster=spec.ecs_name,
        capacityProviders=[name],
        defaultCapacityProviderStrategy=[{"capacityProvider": name, "weight": 1, "base": 0}],
    )
    return {"capacity_provider_name": name, "capacity_provider_arn": arn}


def step_instances_requested(spec: ClusterSpec) -> dict[str, Any]:
    """Ask for the instances once managed scaling owns the group (never fewer than it holds)."""
    group = _describe_group(spec)
    assert group is not None
    _update_group_counts(spec, group, set_desired=True)
    return {"desired_instances_applied": spec.desired_instances}


def _desired_count(spec: ClusterSpec, group: dict[str, Any], *, set_desired: bool) -> int:
    """The group's desired count: the spec's when `set_desired`, else the group's as managed
    scaling left it, within the spec's bounds either way."""
    desired = spec.desired_instances if set_desired else group["DesiredCapacity"]
    return int(min(max(desired, spec.min_instances), spec.max_instances))


def _update_group_counts(spec: ClusterSpec, group: dict[str, Any], *, set_desired: bool) -> bool:
    """Bring the group's min and max to the spec's; its desired count too when `set_desired` or
    when the new bounds exclude it. Managed scaling moves the desired count between the bounds
    as tasks need, so it is not reset otherwise. Returns whether anything changed."""
    desired = _desired_count(spec, group, set_desired=set_desired)
    counts = (spec.min_instances, desired, spec.max_instances)
    if (group["MinSize"], group["DesiredCapacity"], group["MaxSize"]) == counts:
        return False
    spec.client("autoscaling").update_auto_scaling_group(
        AutoScalingGroupName=group["AutoScalingGroupName"],
        MinSize=spec.min_instances,
        DesiredCapacity=desired,
        MaxSize=spec.max_instances,
    )
    return True


def step_instances_joined(spec: ClusterSpec) -> dict[str, Any]:
    """Succeeds once the desired number of instances have registered with the ECS cluster."""
    arns = spec.client("ecs").list_container_instances(cluster=spec.ecs_name, status="ACTIVE")[
        "containerInstanceArns"
    ]
    if len(arns) < spec.desired_instances:
        raise StepPending(
            f"{len(arns)} of {spec.desired_instances} instances have joined the ECS cluster"
        )
    return {"container_instances": len(arns)}


# A step returns the ids it found or made (teardown steps return None).
Step = Callable[[ClusterSpec], dict[str, Any] | None]
STEPS: list[tuple[str, Step]] = [
    ("service_linked_roles", step_service_linked_roles),
    ("network", step_network),
    ("subnets", step_subnets),
    ("security_group", step_security_group),
    ("roles", step_roles),
    ("launch_template", step_launch_template),
    ("ecs_cluster", step_ecs_cluster),
    ("auto_scaling_group", step_auto_scaling_group),
    ("capacity_provider", step_capacity_provider),
    ("instances_requested", step_instances_requested),
    ("instances_joined", step_instances_joined),
]


def scale_instances(spec: ClusterSpec) -> list[str]:
    """Bring the Auto Scaling group to the spec's counts and instance type; returns what changed.

    A type change is a new launch template version and an instance refresh, which replaces the
    instances a few at a time while ECS moves their tasks.
    """
    autoscaling = spec.client("autoscaling")
    ec2 = spec.client("ec2")
    group = _describe_group(spec)
    if group is None:
        raise StepPending("the cluster has no Auto Scaling group yet")
    changes = []
    asked = spec.desired_instances != spec.resources.get("desired_instances_applied")
    changes += _drain_surplus(spec, keep=_desired_count(spec, group, set_desired=asked))
    if _update_group_counts(spec, group, set_desired=asked):
        changes.append(
            f"instances min/max set to {spec.min_instances}/{spec.max_instances}"
            + (f", desired to {spec.desired_instances}" if asked else "")
        )
    spec.resources["desired_instances_applied"] = spec.desired_instances
    template = _find_launch_template(spec)
    if template is None:
        raise StepPending("the cluster has no launch template yet")
    latest = ec2.describe_launch_template_versions(
        LaunchTemplateId=template["LaunchTemplateId"], Versions=["$Latest"]
    )["LaunchTemplateVersions"][0]
    if latest["LaunchTemplateData"].get("InstanceType") != spec.instance_type:
        ec2.create_launch_template_version(
            LaunchTemplateId=template["LaunchTemplateId"],
            SourceVersion=str(latest["VersionNumber"]),
            LaunchTemplateData={"InstanceType": spec.instance_type},
        )
        autoscaling.start_instance_refresh(
            AutoScalingGroupName=group["AutoScalingGroupName"],
            Preferences={"MinHealthyPercentage": 100, "MaxHealthyPercentage": 200},
        )
        changes.append(f"instance type changed to {spec.instance_type}; instance refresh started")
    if "execution_role_arn" in spec.resources:
        _scope_secrets(spec, spec.resources["execution_role_arn"])
    return changes


def _drain_surplus(spec: ClusterSpec, *, keep: int) -> list[str]:
    """Drain the container instances beyond `keep` before the group shrinks, so that their tasks
    move to the instances kept first; set ACTIVE again those kept that were draining (a resize
    back up). With managed termination protection ECS lets only idle instances go, so the idlest
    are drained (from the AZ with the most instances among equals): they are the ones to go.
    Returns what changed."""
    instances = inventory.container_instances(spec.access, spec.ecs_name)
    per_zone = Counter(inventory.zone_of(instance) for instance in instances)
    idlest_first = sorted(
        instances,
        key=lambda i: (
            i["runningTasksCount"] + i["pendingTasksCount"],
            -per_zone[inventory.zone_of(i)],
            i["ec2InstanceId"],
        ),
    )
    cut = max(0, len(instances) - keep)
    leaving, kept = idlest_first[:cut], idlest_first[cut:]
    changes = []
    for status, instances_to_set in (("DRAINING", leaving), ("ACTIVE", kept)):
        arns = [i["containerInstanceArn"] for i in instances_to_set if i["status"] != status]
        for batch in batched(arns, STATE_UPDATE_BATCH):
            spec.client("ecs").update_container_instances_state(
                cluster=spec.ecs_name, containerInstances=list(batch), status=status
            )
        if arns:
            changes.append(f"{len(arns)} container instances set {status}")
    return changes


def _ignore_missing(error: ClientError, *codes: str) -> None:
    """Re-raise unless AWS says the resource is already gone (a re-run after a crash)."""
    if error.response["Error"]["Code"] not in codes:
        raise error


# AWS's refusals to delete what something still uses: instances shutting down, tasks stopping.
IN_USE_CODES = frozenset(
    {
        "DependencyViolation",
        "ClusterContainsServicesException",
        "ClusterContainsTasksException",
        "ClusterContainsContainerInstancesException",
        "ClusterContainsCapacityProviderException",
        "ResourceInUseException",
    }
)


@contextmanager
def _waiting_while_in_use() -> Iterator[None]:
    """Come back later while AWS says the resource is still in use (the job bounds the wait)."""
    try:
        yield
    except ClientError as error:
        details = error.response["Error"]
        message = details.get("Message", "")
        if details.get("Code") in IN_USE_CODES or "Capacity Providers are attached" in message:
            raise StepPending(f"waiting: {error.operation_name}: {message}") from error
        raise


def _ours_to_delete[T](find: Callable[[], T | None]) -> T | None:
    """What `find` finds, for teardown to delete; None if it is gone or is not ours. One that is
    not ours is left where it is: holding our name, it kept ours from ever being made."""
    try:
        return find()
    except ownership.NotOurs as foreign:
        logger.warning("Teardown leaves it alone: %s", foreign)
        return None


def teardown_capacity_provider(spec: ClusterSpec) -> None:
    """Detach the provider from the cluster (ECS refuses while a service or task still uses it),
    then delete it. ECS answers DeleteCapacityProvider at once but deletes in the background, and
    refuses (DELETE_FAILED, in the answer) while a cluster still holds the provider."""
    ecs = spec.client("ecs")
    if _ours_to_delete(lambda: _find_ecs_cluster(spec)):
        with _waiting_while_in_use():
            ecs.put_cluster_capacity_providers(
                cluster=spec.ecs_name, capacityProviders=[], defaultCapacityProviderStrategy=[]
            )
    provider = _ours_to_delete(lambda: _find_capacity_provider(spec))
    if provider is None:
        return
    if provider.get("updateStatus") != "DELETE_IN_PROGRESS":
        provider = ecs.delete_capacity_provider(capacityProvider=spec.name("capacity"))[
            "capacityProvider"
        ]
    if provider.get("updateStatus") == "DELETE_FAILED":
        raise StepPending(f"waiting: DeleteCapacityProvider: {provider.get('updateStatusReason')}")
    raise StepPending(f"waiting for the capacity provider {spec.name('capacity')} to be deleted")


def teardown_auto_scaling_group(spec: ClusterSpec) -> None:
    """Drain the group to zero, then delete it. Instances are protected from scale-in (so the
    capacity provider decides what stops), so lift that first."""
    autoscaling = spec.client("autoscaling")
    group = _ours_to_delete(lambda: _describe_group(spec))
    if group is None:
        return
    name = group["AutoScalingGroupName"]
    instances = [i["InstanceId"] for i in group["Instances"]]
    if instances:
        autoscaling.set_instance_protection(
            AutoScalingGroupName=name, InstanceIds=instances, ProtectedFromScaleIn=False
        )
        autoscaling.update_auto_scaling_group(
            AutoScalingGroupName=name, MinSize=0, DesiredCapacity=0, MaxSize=0
        )
        group = _describe_group(spec)
        if group and group["Instances"]:
            raise StepPending(f"waiting for {len(group['Instances'])} instances to terminate")
    autoscaling.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
    if _describe_group(spec) is not None:
        raise StepPending("waiting for the Auto Scaling group to be deleted")


def _container_instances(spec: ClusterSpec) -> list[str]:
    listed = spec.client("ecs").list_container_instances(cluster=spec.ecs_name)
    return list(listed["containerInstanceArns"])


def teardown_ecs_cluster(spec: ClusterSpec) -> None:
    ecs = spec.client("ecs")
    if not _ours_to_delete(lambda: _find_ecs_cluster(spec)):
        return
    for arn in _container_instances(spec):
        try:
            ecs.deregister_container_instance(
                cluster=spec.ecs_name, containerInstance=arn, force=True
            )
        except ClientError:
            # ECS deregisters an instance itself once its EC2 instance terminates: gone is done.
            if arn in _container_instances(spec):
                raise
    with _waiting_while_in_use():
        ecs.delete_cluster(cluster=spec.ecs_name)


def teardown_launch_template(spec: ClusterSpec) -> None:
    template = _ours_to_delete(lambda: _find_launch_template(spec))
    if template is None:
        return
    try:
        spec.client("ec2").delete_launch_template(LaunchTemplateId=template["LaunchTemplateId"])
    except ClientError as error:
        _ignore_missing(error, "InvalidLaunchTemplateId.NotFound")


def _delete_role(spec: ClusterSpec, name: str) -> None:
    if not _ours_to_delete(lambda: _find_iam(spec, "IAM role", name)):
        return
    iam = spec.client("iam")
    try:
        for policy in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
        for policy_name in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
        iam.delete_role(RoleName=name)
    except ClientError as error:
        _ignore_missing(error, "NoSuchEntity")


def teardown_roles(spec: ClusterSpec) -> None:
    iam = spec.client("iam")
    name = spec.name("instance")
    if _ours_to_delete(lambda: _find_iam(spec, "IAM instance profile", name)):
        try:
            iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=name)
        except ClientError as error:
            _ignore_missing(error, "NoSuchEntity")
        try:
            iam.delete_instance_profile(InstanceProfileName=name)
        except ClientError as error:
            _ignore_missing(error, "NoSuchEntity")
    _delete_role(spec, name)
    _delete_role(spec, spec.name("execution"))


def teardown_security_group(spec: ClusterSpec) -> None:
    group = _ec2_tagged(spec, "sg", "describe_security_groups", "SecurityGroups")
    if group is not None:
        with _waiting_while_in_use():
            spec.client("ec2").delete_security_group(GroupId=group["GroupId"])


def teardown_network(spec: ClusterSpec) -> None:
    with _waiting_while_in_use():
        _delete_network(spec)


def _delete_network(spec: ClusterSpec) -> None:
    ec2 = spec.client("ec2")
    tag = [{"Name": "tag:tinystacks:cluster", "Values": [spec.uuid]}]
    for subnet in ec2.describe_subnets(Filters=tag)["Subnets"]:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    for table in ec2.describe_route_tables(Filters=tag)["RouteTables"]:
        for association in table.get("Associations", []):
            if not association.get("Main"):
                ec2.disassociate_route_table(AssociationId=association["RouteTableAssociationId"])
        ec2.delete_route_table(RouteTableId=table["RouteTableId"])
    for gateway in ec2.describe_internet_gateways(Filters=tag)["InternetGateways"]:
        for attachment in gateway.get("Attachments", []):
            ec2.detach_internet_gateway(
                InternetGatewayId=gateway["InternetGatewayId"], VpcId=attachment["VpcId"]
            )
        ec2.delete_internet_gateway(InternetGatewayId=gateway["InternetGatewayId"])
    for vpc in ec2.describe_vpcs(Filters=tag)["Vpcs"]:
        ec2.delete_vpc(VpcId=vpc["VpcId"])


# Provisioning walked backwards; every step finds what is left and deletes only that.
TEARDOWN_STEPS: list[tuple[str, Step]] = [
    ("capacity_provider", teardown_capacity_provider),
    ("auto_scaling_group", teardown_auto_scaling_group),
    ("ecs_cluster", teardown_ecs_cluster),
    ("launch_template", teardown_launch_template),
    ("roles", teardown_roles),
    ("security_group", teardown_security_group),
    ("network", teardown_network),
]

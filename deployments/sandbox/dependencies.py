"""What AWS refuses to delete while something still depends on it, and the VPC quota, worded as
AWS words it; a dry-run CreateVpc creates nothing.

moto deletes a subnet or security group under running instances, and an ECS cluster that still
has services, tasks, container instances or capacity providers.
"""

from __future__ import annotations

from moto.core.responses import ActionResult
from moto.ec2.exceptions import DependencyViolationError, EC2ClientError
from moto.ec2.models import ec2_backends
from moto.ec2.models.instances import Instance
from moto.ec2.responses.security_groups import SecurityGroups
from moto.ec2.responses.subnets import Subnets
from moto.ec2.responses.vpcs import VPCs
from moto.ecs.exceptions import EcsClientException, ECSException
from moto.ecs.models import EC2ContainerServiceBackend
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.servicequotas.models import servicequotas_backends

from deployments.aws.provisioning import VPC_QUOTA_CODE

GONE = ("terminated",)  # an instance's network interface is released once it is terminated


def apply() -> None:
    _patch_delete_subnet()
    _patch_delete_security_group()
    _patch_delete_cluster()
    _patch_create_vpc()


def _live_instances(account_id: str, region: str) -> list[Instance]:
    ec2 = ec2_backends[account_id][region]
    return [i for i in ec2.all_instances() if i.state not in GONE]


def _patch_delete_subnet() -> None:
    original = Subnets.delete_subnet

    def delete_subnet(self: Subnets) -> ActionResult:
        subnet_id = self._get_param("SubnetId")
        if any(
            i.subnet_id == subnet_id for i in _live_instances(self.current_account, self.region)
        ):
            raise DependencyViolationError(
                f"The subnet '{subnet_id}' has dependencies and cannot be deleted."
            )
        return original(self)

    Subnets.delete_subnet = delete_subnet  # type: ignore[method-assign]


def _patch_delete_security_group() -> None:
    original = SecurityGroups.delete_security_group

    def delete_security_group(self: SecurityGroups) -> ActionResult:
        group_id = self._get_param("GroupId")
        if group_id and any(
            group.id == group_id
            for instance in _live_instances(self.current_account, self.region)
            for group in instance.security_groups
        ):
            raise DependencyViolationError(f"resource {group_id} has a dependent object")
        return original(self)

    SecurityGroups.delete_security_group = delete_security_group  # type: ignore[method-assign]


class ClusterContains(ECSException):
    def __init__(self, what: str, message: str) -> None:
        super().__init__(f"ClusterContains{what}Exception", message)


def _patch_delete_cluster() -> None:
    original = EC2ContainerServiceResponse.delete_cluster

    def delete_cluster(self: EC2ContainerServiceResponse) -> ActionResult:
        backend = self.ecs_backend
        cluster = backend._get_cluster(self._get_param("cluster", "default"))
        refusal = _why_cluster_stays(backend, cluster.name)
        if refusal is not None:
            raise refusal
        return original(self)

    EC2ContainerServiceResponse.delete_cluster = delete_cluster  # type: ignore[method-assign]


def _why_cluster_stays(backend: EC2ContainerServiceBackend, name: str) -> Exception | None:
    if any(
        s.cluster_name == name and s.status in ("ACTIVE", "DRAINING")
        for s in backend.services.values()
    ):
        return ClusterContains(
            "Services", "The Cluster cannot be deleted while Services are active."
        )
    if any(t.last_status != "STOPPED" for t in backend.tasks.get(name, {}).values()):
        return ClusterContains("Tasks", "The Cluster cannot be deleted while Tasks are active.")
    if backend.container_instances.get(name):
        return ClusterContains(
            "ContainerInstances",
            "The Cluster cannot be deleted while Container Instances are active or draining.",
        )
    if backend.clusters[name].capacity_providers:
        return EcsClientException(
            "The Cluster cannot be deleted while Cluster Scoped Capacity Providers are attached "
            "to the cluster."
        )
    return None


def _vpc_quota(account_id: str, region: str) -> int:
    """Service Quotas' "VPCs per Region", which moto reports but does not enforce."""
    quota = servicequotas_backends[account_id][region].get_service_quota("vpc", VPC_QUOTA_CODE)
    return int(quota["Value"])


def _patch_create_vpc() -> None:
    original = VPCs.create_vpc

    def create_vpc(self: VPCs) -> ActionResult:
        # A dry run checks permissions only, as AWS's does (moto's creates the VPC).
        self.error_on_dryrun()
        vpcs = ec2_backends[self.current_account][self.region].vpcs
        if len(vpcs) >= _vpc_quota(self.current_account, self.region):
            raise EC2ClientError("VpcLimitExceeded", "The maximum number of VPCs has been reached.")
        return original(self)

    VPCs.create_vpc = create_vpc  # type: ignore[method-assign]

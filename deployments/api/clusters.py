"""/clusters: ECS clusters of EC2 instances, provisioned, resized and torn down in the
background."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from itertools import pairwise
from typing import Any, ClassVar

from django.http import HttpResponse
from django.urls import reverse
from ninja import Router, Status
from pydantic import BaseModel, ConfigDict

from deployments import selectors, services
from deployments.api.auth import ApiRequest
from deployments.api.errors import ApiError, FieldErrors
from deployments.api.lookups import TeamCluster
from deployments.api.schemas import (
    NAME,
    READ_ONLY,
    REGION,
    Body,
    Changes,
    OptionalTimestamp,
    Out,
    Text,
    Timestamp,
    documented,
    located,
    responses,
)
from deployments.capacity import DEFAULT_INSTANCE_TYPE, INSTANCE_TYPES
from deployments.models import Cluster as ClusterRow
from deployments.services import SCALABLE_FIELDS

router = Router(tags=["clusters"])

INSTANCE_FIELDS = ("min_instances", "desired_instances", "max_instances")
MAX_INSTANCES = 100
INSTANCES = {"minimum": 0, "maximum": MAX_INSTANCES}
INSTANCE_TYPE = {"enum": list(INSTANCE_TYPES)}
CLUSTER_NAME = NAME | {"description": "Unique among the team's clusters that are not deleted."}
ACCOUNT = {"description": "The name of one of the team's AWS accounts."}
CLUSTER_REGION = REGION | {"description": "Defaults to the account's region."}


class ClusterStep(BaseModel):
    """One provisioning (or teardown) step and how far it got."""

    model_config = ConfigDict(extra="allow")
    name: str
    status: str
    error: str | None


class ZoneCapacity(BaseModel):
    zone: str = documented(examples=["us-east-1a"])
    instances: int = documented(minimum=0)
    active: int = documented(minimum=0)
    draining: int = documented(minimum=0)
    agents_connected: int = documented(minimum=0)
    cpu_registered: int = documented(minimum=0, description="CPU units (1024 = 1 vCPU).")
    cpu_remaining: int
    memory_registered: int = documented(minimum=0, description="MiB.")
    memory_remaining: int
    running_tasks: int = documented(minimum=0)
    pending_tasks: int = documented(minimum=0)


class ClusterCapacity(BaseModel):
    """The cluster's container instances as TinyStacks last read them from ECS (every 30 s or so
    while the cluster is ready; nothing before the first read or when it is not ready)."""

    instances: int | None = documented(minimum=0, description="Registered with ECS, in all zones.")
    zones: list[ZoneCapacity]
    read_at: OptionalTimestamp
    error: str = documented(
        description="Why the latest read failed; the numbers above are then those of the read "
        "before. Empty when it succeeded."
    )


class Cluster(Out):
    name: str = documented(**CLUSTER_NAME)
    account: str = documented(**ACCOUNT)
    region: str = documented(**CLUSTER_REGION)
    instance_type: str = documented(**INSTANCE_TYPE)
    min_instances: int = documented(**INSTANCES, description="At most desired_instances.")
    desired_instances: int = documented(**INSTANCES, description="At most max_instances.")
    max_instances: int = documented(**INSTANCES)
    status: str = documented(
        enum=ClusterRow.Status.values,
        readOnly=True,
        description="pending → provisioning → ready | failed; deleting → deleted.",
    )
    status_reason: str = documented(readOnly=True)
    steps: list[ClusterStep] = documented(readOnly=True)
    resources: dict[str, Any] = documented(
        readOnly=True,
        description="The AWS resources the cluster owns, by kind (vpc_id, cluster_arn, …).",
    )
    capacity: ClusterCapacity
    created_at: Timestamp
    updated_at: Timestamp

    @staticmethod
    def resolve_account(cluster: ClusterRow) -> str:
        return cluster.account.name

    @staticmethod
    def resolve_capacity(cluster: ClusterRow) -> dict[str, Any]:
        """The live capacity the tick last read (none unless the cluster is ready)."""
        live = cluster.live_instances is not None
        return {
            "instances": cluster.live_instances,
            "zones": cluster.capacity.get("zones", []) if live else [],
            "read_at": cluster.capacity_at if live else None,
            "error": cluster.capacity_error,
        }


class ClusterCreate(Body):
    name: Text = documented(**CLUSTER_NAME)
    account: Text = documented(**ACCOUNT)
    region: Text = documented(None, **CLUSTER_REGION)
    instance_type: Text = documented(DEFAULT_INSTANCE_TYPE, **INSTANCE_TYPE)
    min_instances: int = documented(2, **INSTANCES, description="At most desired_instances.")
    desired_instances: int = documented(2, **INSTANCES, description="At most max_instances.")
    max_instances: int = documented(4, **INSTANCES)
    read_only: ClassVar = dict.fromkeys(
        ("status", "status_reason", "steps", "resources", "created_at", "updated_at"), READ_ONLY
    )


CLUSTER_FIXED = "A cluster's name, account and region cannot be changed; create another cluster."


class ClusterScale(Changes):
    """Any of these; the others keep their values."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})
    instance_type: Text = documented(None, **INSTANCE_TYPE)
    min_instances: int = documented(None, **INSTANCES, description="At most desired_instances.")
    desired_instances: int = documented(None, **INSTANCES, description="At most max_instances.")
    max_instances: int = documented(None, **INSTANCES)
    read_only: ClassVar = ClusterCreate.read_only | dict.fromkeys(
        ("name", "account", "region"), CLUSTER_FIXED
    )


def check_instance_order(values: Mapping[str, Any], given: Collection[str]) -> None:
    """Field-level errors for min ≤ desired ≤ max, naming a field the client sent. (The model's
    check constraint reports the same rule, but for the whole object.) Counts out of the fields'
    own range are left to the model's validators, which name them."""
    counts = [values[name] for name in INSTANCE_FIELDS]
    if not all(0 <= count <= MAX_INSTANCES for count in counts):
        return
    errors: FieldErrors = {}
    for low, high in pairwise(INSTANCE_FIELDS):
        if values[low] <= values[high]:
            continue
        if low in given:
            errors.setdefault(low, []).append(f"Must be at most {high} ({values[high]}).")
        else:
            errors.setdefault(high, []).append(f"Must be at least {low} ({values[low]}).")
    if errors:
        raise ApiError(
            400, "Instances must satisfy min_instances ≤ desired_instances ≤ max_instances.", errors
        )


@router.get(
    "/clusters",
    response=responses(200, list[Cluster], 401),
    url_name="clusters",
    operation_id="listClusters",
    summary="List the team's clusters (all but deleted ones)",
)
def cluster_list(request: ApiRequest) -> object:
    return selectors.clusters_of(request.team)


@router.post(
    "/clusters",
    response=responses(201, Cluster, 400, 401, 403, 409, 413),
    operation_id="createCluster",
    openapi_extra=located(201, "The cluster's"),
    summary="Create a cluster",
    description="Records the cluster (status pending) and queues its provisioning; follow it "
    "with GET /clusters/{name} until status is ready or failed.",
)
def cluster_create(request: ApiRequest, payload: ClusterCreate, response: HttpResponse) -> object:
    fields = payload.changes()
    blank = ClusterRow()  # for the model's defaults
    check_instance_order({name: getattr(blank, name) for name in INSTANCE_FIELDS} | fields, fields)
    account_name = fields.pop("account")
    account = selectors.accounts_of(request.team).filter(name=account_name).first()
    if account is None:
        message = f"This team has no AWS account named {account_name}."
        raise ApiError(400, message, {"account": [message]})
    if selectors.clusters_of(request.team).filter(name=fields["name"]).exists():
        raise ApiError(
            409,
            f"This team already has a cluster named {fields['name']}.",
            {"name": ["A cluster of this name already exists in this team."]},
        )
    cluster = services.cluster_create(
        team=request.team, actor=None, account=account, ip_address=request.ip_address, **fields
    )
    response["Location"] = reverse("api:cluster", args=[cluster.name])
    return Status(201, cluster)


@router.get(
    "/clusters/{str:name}",
    response=responses(200, Cluster, 401, 404),
    url_name="cluster",
    operation_id="getCluster",
    summary="Show a cluster, with its provisioning steps and AWS resources",
)
def cluster_get(request: ApiRequest, name: TeamCluster) -> object:
    return name


@router.patch(
    "/clusters/{str:name}",
    response=responses(202, Cluster, 400, 401, 403, 404, 409, 413),
    operation_id="scaleCluster",
    summary="Resize a ready cluster",
    description="Changes the instance type and/or counts and queues applying them.",
)
def cluster_scale(request: ApiRequest, name: TeamCluster, payload: ClusterScale) -> object:
    changes = payload.changes()
    if not changes:
        raise ApiError(400, f"Send at least one of: {', '.join(SCALABLE_FIELDS)}.")
    check_instance_order(
        {field: getattr(name, field) for field in INSTANCE_FIELDS} | changes, changes
    )
    cluster = services.cluster_scale(
        cluster=name, actor=None, ip_address=request.ip_address, **changes
    )
    return Status(202, cluster)


@router.delete(
    "/clusters/{str:name}",
    response=responses(202, Cluster, 401, 403, 404, 409),
    operation_id="deleteCluster",
    summary="Tear a cluster down",
    description="Refused while apps run on it. Deleting a cluster already being deleted is "
    "accepted again.",
)
def cluster_delete(request: ApiRequest, name: TeamCluster) -> object:
    cluster = services.cluster_delete(cluster=name, actor=None, ip_address=request.ip_address)
    return Status(202, cluster)

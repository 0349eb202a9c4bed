"""The few monkeypatches that make moto's ECS and Auto Scaling answer like AWS.

Applied once per process, at class level, so they hold in server mode and under `mock_aws` alike.
Everything else the simulator does from the outside, on moto's backends, between requests.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections import Counter
from typing import Any

from moto.autoscaling.models import FakeAutoScalingGroup, InstanceState
from moto.core.responses import ActionResult
from moto.ecs.exceptions import ECSException, InvalidParameterException
from moto.ecs.models import (
    Cluster,
    ContainerInstance,
    ContainerInstanceFailure,
    EC2ContainerServiceBackend,
    Service,
    Task,
    TaskDefinition,
)
from moto.ecs.responses import EC2ContainerServiceResponse

from deployments.sandbox import (
    capacity_providers,
    dependencies,
    ecs_services,
    iam,
    placement,
    propagation,
    secrets,
    service_roles,
    shutdown,
)
from deployments.sandbox.state import state_of
from deployments.sandbox.tasks import hold_resources, stop_pending_service_tasks

_applied = False
_lock = threading.Lock()


class ServiceNotActiveException(ECSException):
    def __init__(self) -> None:
        super().__init__("ServiceNotActiveException", "Service was not ACTIVE.")


def apply() -> None:
    """Patch moto (idempotent)."""
    global _applied
    with _lock:
        if _applied:
            return
        iam.apply()
        propagation.apply()
        dependencies.apply()
        shutdown.apply()
        secrets.apply()
        capacity_providers.apply()
        _patch_create_service()
        _patch_update_and_delete_service()
        _patch_tasks()
        _patch_run_task()
        _patch_list_task_definitions()
        _patch_list_container_instances()
        _patch_deregister_container_instance()
        _patch_update_container_instances_state()
        _patch_auto_scaling_groups()
        service_roles.apply()  # after CreateService's patch, which it wraps
        _applied = True


def _patch_create_service() -> None:
    original = EC2ContainerServiceResponse.create_service

    def create_service(self: EC2ContainerServiceResponse) -> ActionResult:
        backend = self.ecs_backend
        cluster = backend._get_cluster(self._get_param("cluster", "default"))
        name = self._get_param("serviceName")
        launch_type = self._get_param("launchType")
        capacity_providers = self._get_param("capacityProviderStrategy")
        client_token = self._get_param("clientToken")
        if launch_type and capacity_providers:
            raise InvalidParameterException(
                "Specifying both a launch type and capacity provider strategy is not supported. "
                "Remove one and try again."
            )
        existing = backend.services.get(f"{cluster.name}:{name}")
        if existing and existing.status != "INACTIVE":
            # ECS answers a retry carrying the same clientToken with the service it created.
            if (
                client_token
                and state_of(backend).service(existing.arn).client_token == client_token
            ):
                return ActionResult({"service": existing})
            raise InvalidParameterException("Creation of service was not idempotent.")
        result = original(self)
        ecs_services.service_created(
            backend,
            backend.services[f"{cluster.name}:{name}"],
            launch_type=launch_type,
            deployment_config=self._get_param("deploymentConfiguration"),
            placement=self._get_param("placementStrategy"),
            capacity_providers=capacity_providers,
            client_token=client_token,
        )
        return result

    EC2ContainerServiceResponse.create_service = create_service  # type: ignore[method-assign]


def _patch_update_and_delete_service() -> None:
    original_delete = EC2ContainerServiceBackend.delete_service

    def update_service(
        self: EC2ContainerServiceBackend, service_properties: dict[str, Any]
    ) -> Service:
        props = {key: value for key, value in service_properties.items() if value is not None}
        service = self._get_service(props.pop("cluster", "default"), props.pop("service"))
        if service.status != "ACTIVE":
            raise ServiceNotActiveException()
        ecs_services.service_updated(
            self,
            service,
            task_definition=props.pop("task_definition", None),
            desired_count=props.pop("desired_count", None),
            deployment_config=props.pop("deployment_configuration", None),
            placement=props.pop("placement_strategy", None),
            capacity_providers=props.pop("capacity_provider_strategy", None),
            force_new_deployment=bool(props.pop("force_new_deployment", False)),
        )
        for name, value in props.items():  # everything else is stored as moto stores it
            setattr(service, name, value)
        return service

    def delete_service(
        self: EC2ContainerServiceBackend, cluster_name: str, service_name: str, force: bool
    ) -> Service:
        if self._get_service(cluster_name, service_name).status != "ACTIVE":
            raise ServiceNotActiveException()
        service = original_delete(self, cluster_name, service_name, force)
        # DRAINING until the simulator has stopped its tasks, then INACTIVE.
        service.status = "DRAINING"
        service.desired_count = 0
        return service

    EC2ContainerServiceBackend.update_service = update_service  # type: ignore[method-assign]
    EC2ContainerServiceBackend.delete_service = delete_service  # type: ignore[method-assign]


def _patch_tasks() -> None:
    original_list_tasks = EC2ContainerServiceBackend.list_tasks

    def last_status(task: Task) -> str | None:
        # moto's state manager walks a task toward STOPPED each time it is described; here only
        # the simulator changes a task's state.
        return task._status

    def set_last_status(task: Task, value: str) -> None:
        task._status = value

    def list_tasks(
        self: EC2ContainerServiceBackend,
        cluster_str: str | None = None,
        container_instance: str | None = None,
        family: str | None = None,
        started_by: str | None = None,
        service_name: str | None = None,
        desiredStatus: str | None = None,  # noqa: N803 (moto's name)
    ) -> list[Task]:
        if started_by and (container_instance or family or service_name):
            raise InvalidParameterException("cannot specify startedBy with other arguments")
        # ECS lists RUNNING tasks unless asked otherwise, and filters on the service.
        tasks = original_list_tasks(
            self,
            cluster_str,
            container_instance,
            family,
            started_by,
            None,
            desiredStatus or "RUNNING",
        )
        if service_name:
            group = f"service:{service_name.split('/')[-1]}"
            tasks = [task for task in tasks if task.group == group]
        return tasks

    Task.last_status = property(last_status, set_last_status)  # type: ignore[assignment]
    EC2ContainerServiceBackend.list_tasks = list_tasks  # type: ignore[method-assign]
    EC2ContainerServiceBackend._calculate_task_resource_requirements = staticmethod(  # type: ignore[method-assign]
        task_requirements
    )


def task_requirements(task_definition: TaskDefinition) -> dict[str, Any]:
    """What a task needs free on an instance: task-level cpu/memory win over the containers' sum,
    and a hostPort of 0 (or none) in bridge mode is a dynamic port, chosen only once the task is
    placed (`placement.network_bindings`), so it needs no particular port free."""
    containers: list[dict[str, Any]] = task_definition.container_definitions
    cpu = _units(task_definition.cpu) or sum(int(c.get("cpu") or 0) for c in containers)
    memory = _units(task_definition.memory) or sum(
        int(c.get("memory") or c.get("memoryReservation") or 0) for c in containers
    )
    mappings = [mapping for c in containers for mapping in c.get("portMappings") or []]
    if task_definition.network_mode == "awsvpc":
        ports = []  # every task has its own network interface
    elif task_definition.network_mode == "host":
        ports = [mapping["containerPort"] for mapping in mappings]
    else:
        ports = [mapping["hostPort"] for mapping in mappings if mapping.get("hostPort")]
    return {"CPU": cpu, "MEMORY": memory, "PORTS": ports, "PORTS_UDP": []}


def _patch_run_task() -> None:
    """moto's RunTask places tasks first-fit within each ACTIVE instance's resources, but answers a
    cluster without instances with a bare exception (a 500), binds no dynamic host port and
    reports no failures for the tasks that did not fit. ECS refuses the first, reports the ports
    in networkBindings, and lists each instance with the resource it lacked (RESOURCE:MEMORY)."""
    original = EC2ContainerServiceResponse.run_task

    def run_task(self: EC2ContainerServiceResponse) -> ActionResult:
        backend = self.ecs_backend
        cluster = backend._get_cluster(self._get_param("cluster", "default"))
        if _runs_on_fargate(self, cluster):
            return original(self)
        instances = backend.container_instances.get(cluster.name, {})
        active = [instance for instance in instances.values() if instance.status == "ACTIVE"]
        if not active:
            raise InvalidParameterException("No Container Instances were found in your cluster.")
        definition = backend.describe_task_definition(self._get_param("taskDefinition"))
        requirements = backend._calculate_task_resource_requirements(definition)
        placed: list[Task] = original(self).result["tasks"]  # type: ignore[index]
        for task in placed:
            instance = instances[(task.container_instance_arn or "").split("/")[-1]]
            # moto reserved the task's resources without its dynamic ports: reserve them again.
            backend.update_container_instance_resources(instance, requirements, removing=True)
            hold_resources(backend, task, definition, instance)
        failures = []
        if len(placed) < self._get_int_param("count", 1):
            failures = placement.run_task_failures(active, requirements)
        return ActionResult({"tasks": placed, "failures": failures})

    EC2ContainerServiceResponse.run_task = run_task  # type: ignore[method-assign]


def _runs_on_fargate(response: EC2ContainerServiceResponse, cluster: Cluster) -> bool:
    """As moto decides it: the launch type, else the strategy's (or cluster default's) first
    capacity provider."""
    strategy: list[dict[str, Any]] = (
        response._get_param("capacityProviderStrategy")
        or cluster.default_capacity_provider_strategy
        or []
    )
    if launch_type := response._get_param("launchType"):
        return bool(launch_type == "FARGATE")
    return bool(strategy) and strategy[0]["capacityProvider"] in ("FARGATE", "FARGATE_SPOT")


def _units(value: str | None) -> int:
    """ECS accepts "1024" or "1 vCPU" for cpu and "2048" or "2 GB" for memory."""
    match = re.fullmatch(r"\s*([\d.]+)\s*(vcpu|gb)?\s*", value or "", re.IGNORECASE)
    if not match:
        return 0
    number = float(match[1])
    return int(number * 1024) if match[2] else int(number)


def _patch_list_task_definitions() -> None:
    """moto lists every revision oldest first in one page, ignoring `sort`, `maxResults` and
    `nextToken`; callers that ask for the newest revision (sort=DESC, maxResults=1) get the oldest.
    ECS sorts by family, then revision number, pages up to 100 at a time and reverses both on DESC.
    The token names the last revision of the page, so a revision registered between two pages
    shifts nothing."""

    def list_task_definitions(self: EC2ContainerServiceResponse) -> ActionResult:
        family = self._get_param("familyPrefix")
        status = self._get_param("status", "ACTIVE")
        descending = self._get_param("sort", "ASC") == "DESC"
        max_results = _max_results(self)
        listed = sorted(
            ((definition.family, definition.revision), definition.arn)
            for revisions in self.ecs_backend.task_definitions.values()
            for definition in revisions.values()
            if family in (None, definition.family) and definition.status == status
        )
        if descending:
            listed.reverse()
        token = self._get_param("nextToken")
        if token:
            after = _token_key(token)
            listed = [
                (key, arn) for key, arn in listed if (key < after if descending else key > after)
            ]
        page = listed[:max_results]
        result: dict[str, Any] = {"taskDefinitionArns": [arn for _, arn in page]}
        if len(listed) > max_results:
            (last_family, last_revision), _ = page[-1]
            result["nextToken"] = base64.urlsafe_b64encode(
                f"{last_revision}:{last_family}".encode()
            ).decode()
        return ActionResult(result)

    EC2ContainerServiceResponse.list_task_definitions = list_task_definitions  # type: ignore[method-assign]


def _max_results(response: EC2ContainerServiceResponse) -> int:
    max_results = response._get_param("maxResults", 100)
    if not isinstance(max_results, int) or not 1 <= max_results <= 100:
        raise InvalidParameterException("maxResults must be between 1 and 100.")
    return max_results


def _token_key(token: str) -> tuple[str, int]:
    try:
        revision, family = base64.urlsafe_b64decode(token.encode()).decode().split(":", 1)
        return family, int(revision)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidParameterException("Invalid nextToken.") from None


def _patch_list_container_instances() -> None:
    """moto lists every container instance in one page, ignoring `maxResults` and `nextToken`, and
    lists none for a cluster that does not exist; ECS returns up to 100 (or `maxResults`) and a
    `nextToken` for the rest, and ClusterNotFoundException. moto sorts the ARNs; the token names
    the last ARN of the page."""

    def list_container_instances(self: EC2ContainerServiceResponse) -> ActionResult:
        cluster = self.ecs_backend._get_cluster(self._get_param("cluster", "default"))
        arns = self.ecs_backend.list_container_instances(
            cluster.name, status=self._get_param("status")
        )
        max_results = _max_results(self)
        token = self._get_param("nextToken")
        if token:
            after = _token_arn(token)
            arns = [arn for arn in arns if arn > after]
        page = arns[:max_results]
        result: dict[str, Any] = {"containerInstanceArns": page}
        if len(arns) > max_results:
            result["nextToken"] = base64.urlsafe_b64encode(page[-1].encode()).decode()
        return ActionResult(result)

    EC2ContainerServiceResponse.list_container_instances = list_container_instances  # type: ignore[method-assign]


def _patch_deregister_container_instance() -> None:
    """moto answers an instance it no longer knows (the agent deregistered it as its EC2 instance
    terminated) with a bare exception, a 500; ECS answers a client error."""
    original = EC2ContainerServiceBackend.deregister_container_instance

    def deregister_container_instance(
        self: EC2ContainerServiceBackend, cluster_str: str, container_instance_str: str, force: bool
    ) -> Any:
        cluster = self._get_cluster(cluster_str)
        instance_id = container_instance_str.split("/")[-1]
        if instance_id not in self.container_instances.get(cluster.name, {}):
            raise ECSException(
                "ClientException", "The referenced container instance was not found."
            )
        return original(self, cluster_str, container_instance_str, force)

    EC2ContainerServiceBackend.deregister_container_instance = deregister_container_instance  # type: ignore[method-assign]


def _patch_update_container_instances_state() -> None:
    """moto only changes the status; ECS stops a draining instance's PENDING service tasks at once
    (the simulator's scheduler replaces its RUNNING ones)."""
    original = EC2ContainerServiceBackend.update_container_instances_state

    def update_container_instances_state(
        self: EC2ContainerServiceBackend,
        cluster_str: str,
        list_container_instance_ids: list[str],
        status: str,
    ) -> tuple[list[ContainerInstance], list[ContainerInstanceFailure]]:
        instances, failures = original(self, cluster_str, list_container_instance_ids, status)
        for instance in instances:
            if instance.status == "DRAINING":
                stop_pending_service_tasks(self, instance)
        return instances, failures

    EC2ContainerServiceBackend.update_container_instances_state = update_container_instances_state  # type: ignore[method-assign]


def _token_arn(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidParameterException("Invalid nextToken.") from None


def _patch_auto_scaling_groups() -> None:
    original_launch = FakeAutoScalingGroup.replace_autoscaling_group_instances
    original_set_desired = FakeAutoScalingGroup.set_desired_capacity

    def replace_autoscaling_group_instances(
        self: FakeAutoScalingGroup, count_needed: int, propagated_tags: dict[str, str]
    ) -> None:
        # moto launches every instance into the first subnet; AWS balances them across the AZs.
        subnets = self.vpc_zone_identifier.split(",") if self.vpc_zone_identifier else []
        if len(subnets) < 2:
            original_launch(self, count_needed, propagated_tags)
            return
        ec2 = self.autoscaling_backend.ec2_backend
        zone_of = {subnet: ec2.get_subnet(subnet).availability_zone for subnet in subnets}
        try:
            for _ in range(count_needed):
                per_zone = Counter(state.availability_zone for state in self.instance_states)
                subnet = min(subnets, key=lambda s: per_zone[zone_of[s]])
                self.vpc_zone_identifier = ",".join([subnet, *(s for s in subnets if s != subnet)])
                original_launch(self, 1, dict(propagated_tags))
        finally:
            self.vpc_zone_identifier = ",".join(subnets)

    def set_desired_capacity(self: FakeAutoScalingGroup, new_capacity: int | None) -> None:
        # moto scales in from the front of its instance list: put the instances AWS would
        # terminate first there, taking from the AZ that has the most.
        self.instance_states = _termination_order(self.instance_states)
        original_set_desired(self, new_capacity)

    FakeAutoScalingGroup.replace_autoscaling_group_instances = (  # type: ignore[method-assign]
        replace_autoscaling_group_instances
    )
    FakeAutoScalingGroup.set_desired_capacity = set_desired_capacity  # type: ignore[method-assign]


def _termination_order(states: list[InstanceState]) -> list[InstanceState]:
    by_zone: dict[str, list[InstanceState]] = {}
    for state in states:
        by_zone.setdefault(str(state.availability_zone), []).append(state)
    ordered = []
    while any(by_zone.values()):
        fullest = max(by_zone, key=lambda zone: len(by_zone[zone]))
        ordered.append(by_zone[fullest].pop())  # the newest instance of the fullest AZ
    return ordered

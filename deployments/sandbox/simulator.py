"""The simulator: each tick moves every ECS service one scheduling step, as ECS's rolling-update
controller would, on moto's in-memory backends.

`Simulator.tick()` is deterministic for a given seed and needs no thread or HTTP, so tests call it
directly under `mock_aws`; the server calls it from a background thread every `tick_seconds`.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable
from typing import Any

from moto.core.utils import utcnow
from moto.ecs.models import ContainerInstance, EC2ContainerServiceBackend, Service, Task

from deployments.sandbox import (
    agent,
    autoscaling,
    capacity_providers,
    managed_scaling,
    patches,
    placement,
    secrets,
    shutdown,
    tasks,
)
from deployments.sandbox.ecs_services import (
    add_event,
    deployment_configuration,
    placement_strategy,
    start_deployment,
)
from deployments.sandbox.state import (
    SandboxState,
    ServiceSim,
    TaskSim,
    ecs_backends_in_use,
    state_of,
)

BREAKER_MIN_THRESHOLD = 3
BREAKER_MAX_THRESHOLD = 200


class Simulator:
    def __init__(self, tick_seconds: float = 1.0, seed: int | None = None) -> None:
        patches.apply()
        self.tick_seconds = tick_seconds
        self.rng = random.Random(seed)
        self.ticks = 0

    def tick(self) -> None:
        shutdown.step()
        for backend in ecs_backends_in_use():
            state = state_of(backend)
            state.clock += self.tick_seconds
            capacity_providers.finish_deletions(backend)
            agent.sync(backend)
            for service in list(backend.services.values()):
                ServiceScheduler(backend, state, service, self.rng).step()
            tasks.forget_old_stopped_tasks(backend, state)
            _count_cluster_resources(backend)
            managed_scaling.evaluate(backend, state)
            autoscaling.evaluate(backend, state)
        self.ticks += 1


def breaker_threshold(desired_count: int) -> int:
    """AWS: 0.5 × the desired count, at least 3 and at most 200."""
    return min(BREAKER_MAX_THRESHOLD, max(BREAKER_MIN_THRESHOLD, math.ceil(desired_count / 2)))


class ServiceScheduler:
    """One scheduling step of one service."""

    def __init__(
        self,
        backend: EC2ContainerServiceBackend,
        state: SandboxState,
        service: Service,
        rng: random.Random,
    ) -> None:
        self.backend = backend
        self.state = state
        self.service = service
        self.sim: ServiceSim = state.service(service.arn)
        self.rng = rng
        self.config = deployment_configuration(service)
        self.draining = {
            instance.container_instance_arn
            for instance in backend.container_instances.get(service.cluster_name, {}).values()
            if instance.status == "DRAINING"
        }

    def step(self) -> None:
        if self.service.status == "INACTIVE" or not self.service.deployments:
            return
        self.progress_tasks()
        if self.service.status == "DRAINING":
            self.drain_deleted_service()
            return
        self.trip_circuit_breaker()
        self.scale_in()
        self.stop_old_tasks()
        self.place_provisioning_tasks()
        self.start_new_tasks()
        self.forget_drained_deployments()
        self.update_counts()
        self.complete_deployment()

    # Reading the service's tasks

    @property
    def primary(self) -> dict[str, Any]:
        return self.service.deployments[0]

    def live_tasks(self) -> list[Task]:
        group = f"service:{self.service.name}"
        return [
            task
            for task in self.backend.tasks.get(self.service.cluster_name, {}).values()
            if task.group == group and task.desired_status == "RUNNING"
        ]

    def to_replace(self, task: Task) -> bool:
        """A task that stops once its replacement runs: one of an older deployment, or one on a
        DRAINING container instance."""
        return task.started_by != self.primary["id"] or task.container_instance_arn in self.draining

    def deployment(self, deployment_id: str) -> dict[str, Any] | None:
        return next((d for d in self.service.deployments if d["id"] == deployment_id), None)

    # Task lifecycle

    def progress_tasks(self) -> None:
        """PENDING → RUNNING after 1-3 ticks; tasks whose secrets cannot be fetched, or of a bad
        image, fail on the way."""
        for task in self.live_tasks():
            sim = self.state.tasks.get(task.task_arn)
            if sim is None:
                continue  # not started by the simulator (RunTask): leave it alone
            if task.last_status == "PROVISIONING":
                self.time_out_provisioning(task, sim)
                continue
            if task.last_status == "RUNNING":
                if sim.fate == tasks.UNHEALTHY:
                    tasks.stop_task(
                        self.backend, task, tasks.FAILED_HEALTH_CHECKS, "TaskFailedToStart"
                    )
                    self.count_failure(sim.deployment_id)
                continue
            sim.ticks_to_start -= 1
            if sim.ticks_to_start > 0:
                continue
            definition = self.backend.describe_task_definition(task.task_definition_arn)
            secrets_failure = secrets.retrieval_failure(task, definition)
            if secrets_failure:
                tasks.stop_task(self.backend, task, secrets_failure, "TaskFailedToStart")
                self.count_failure(sim.deployment_id)
            elif sim.fate == tasks.CRASHLOOP:
                tasks.stop_task(
                    self.backend,
                    task,
                    tasks.ESSENTIAL_CONTAINER_EXITED,
                    "EssentialContainerExited",
                    exit_code=1,
                )
                self.count_failure(sim.deployment_id)
            elif sim.fate == tasks.UNHEALTHY:
                tasks.mark_running(task, "UNHEALTHY")
            else:
                tasks.mark_running(task, tasks.container_health_status(definition))
                self.prove(sim.deployment_id)

    def time_out_provisioning(self, task: Task, sim: TaskSim) -> None:
        if self.state.clock - sim.created_at >= tasks.PROVISIONING_TIMEOUT_SECONDS:
            tasks.stop_task(self.backend, task, tasks.PROVISIONING_TIMED_OUT, "TaskFailedToStart")
            self.count_failure(sim.deployment_id)

    def count_failure(self, deployment_id: str) -> None:
        deployment = self.deployment(deployment_id)
        if deployment is not None and deployment_id not in self.sim.proven_deployments:
            deployment["failedTasks"] += 1

    def prove(self, deployment_id: str) -> None:
        """ECS: once a deployment runs a task successfully, its failure count resets to zero and
        the circuit breaker stops evaluating it."""
        deployment = self.deployment(deployment_id)
        if deployment is not None and deployment_id not in self.sim.proven_deployments:
            self.sim.proven_deployments.add(deployment_id)
            deployment["failedTasks"] = 0

    # The rolling update

    def trip_circuit_breaker(self) -> None:
        breaker = self.config.get("deploymentCircuitBreaker") or {}
        primary = self.primary
        if (
            not breaker.get("enable")
            or primary["rolloutState"] != "IN_PROGRESS"
            or primary["failedTasks"] < breaker_threshold(self.service.desired_count)
        ):
            return
        primary["rolloutState"] = "FAILED"
        primary["rolloutStateReason"] = "ECS deployment circuit breaker: tasks failed to start."
        primary["updatedAt"] = utcnow()
        add_event(
            self.service, f"(deployment {primary['id']}) deployment failed: tasks failed to start."
        )
        rollback_to = self.sim.last_completed
        # Roll back to the last COMPLETED deployment, unless that is what just failed.
        if breaker.get("rollback") and rollback_to and rollback_to[1] != primary["taskDefinition"]:
            completed_id, task_definition = rollback_to
            start_deployment(
                self.service,
                task_definition,
                f"ECS deployment circuit breaker: rolling back to deploymentId {completed_id}.",
            )
            add_event(self.service, f"rolling back to deployment {completed_id}.")

    def scale_in(self) -> None:
        """More PRIMARY tasks than desired (desiredCount went down): stop the surplus."""
        primary_tasks = [t for t in self.live_tasks() if not self.to_replace(t)]
        surplus = len(primary_tasks) - self.service.desired_count
        if surplus > 0:
            self.stop(_stopping_order(primary_tasks)[:surplus])

    def stop_old_tasks(self) -> None:
        """Stop the tasks to replace (older deployments', draining instances'), keeping
        minimumHealthyPercent of desired healthy (round up)."""
        if self.primary["rolloutState"] == "FAILED":
            return  # a FAILED deployment without rollback launches nothing and replaces nothing
        live = self.live_tasks()
        old = [task for task in live if self.to_replace(task)]
        minimum = math.ceil(self.service.desired_count * self.config["minimumHealthyPercent"] / 100)
        healthy = sum(1 for task in live if tasks.is_healthy(task))
        to_stop = []
        for task in _stopping_order(old):
            if not tasks.is_healthy(task):
                to_stop.append(task)
            elif healthy > minimum:
                to_stop.append(task)
                healthy -= 1
        self.stop(to_stop)

    def instances(self) -> list[ContainerInstance]:
        return list(self.backend.container_instances.get(self.service.cluster_name, {}).values())

    def place_provisioning_tasks(self) -> None:
        """Tasks waiting in PROVISIONING go, oldest first, to instances that can now take them."""
        live = self.live_tasks()
        for task in [t for t in live if t.last_status == "PROVISIONING"]:
            try:
                instance = placement.choose_instance(
                    self.instances(),
                    task.resource_requirements or {},
                    placement_strategy(self.service),
                    live,
                    self.rng,
                )
            except placement.NoPlacement:
                return
            definition = self.backend.describe_task_definition(task.task_definition_arn)
            tasks.place_task(self.backend, task, definition, instance)

    def start_new_tasks(self) -> None:
        """Start PRIMARY tasks up to desiredCount, keeping RUNNING + PENDING of all deployments
        within maximumPercent of desired (rounded down). One that fits nowhere waits in
        PROVISIONING if managed scaling will add capacity, else it is not started."""
        primary = self.primary
        if primary["rolloutState"] == "FAILED":
            return
        live = self.live_tasks()
        ceiling = math.floor(self.service.desired_count * self.config["maximumPercent"] / 100)
        missing = self.service.desired_count - sum(1 for t in live if not self.to_replace(t))
        cluster = self.backend.clusters[self.service.cluster_name]
        definition = self.backend.describe_task_definition(primary["taskDefinition"])
        requirements = self.backend._calculate_task_resource_requirements(definition)
        started: list[Task] = []
        for _ in range(min(missing, ceiling - len(live))):
            instance: ContainerInstance | None
            try:
                instance = placement.choose_instance(
                    self.instances(), requirements, placement_strategy(self.service), live, self.rng
                )
            except placement.NoPlacement as unplaceable:
                if not managed_scaling.provisions_capacity(self.backend, self.service):
                    self.report_unplaceable(str(unplaceable))
                    break
                instance = None
            task = tasks.start_task(
                self.backend, cluster, self.service, primary["id"], definition, instance, self.rng
            )
            started.append(task)
            live.append(task)
        if started:
            self.sim.placement_failure = ""
            add_event(
                self.service,
                f"has started {len(started)} tasks: {_task_list(started)}.",
            )

    def report_unplaceable(self, message: str) -> None:
        if message != self.sim.placement_failure:
            self.sim.placement_failure = message
            add_event(self.service, message)

    def stop(self, to_stop: list[Task]) -> None:
        if not to_stop:
            return
        scaling = f"Scaling activity initiated by (deployment {self.primary['id']})"
        for task in to_stop:
            drained = task.container_instance_arn in self.draining
            reason = tasks.draining_reason(self.service.name) if drained else scaling
            tasks.stop_task(self.backend, task, reason)
        add_event(self.service, f"has stopped {len(to_stop)} running tasks: {_task_list(to_stop)}.")

    def forget_drained_deployments(self) -> None:
        """Drained deployments disappear, except a FAILED one, which stays visible (ACTIVE) while
        its rollback is in progress, as on ECS."""
        running_deployments = {task.started_by for task in self.live_tasks()}
        self.service.deployments[1:] = [
            d
            for d in self.service.deployments[1:]
            if d["id"] in running_deployments
            or (d["rolloutState"] == "FAILED" and self.primary["rolloutState"] == "IN_PROGRESS")
        ]

    def update_counts(self) -> None:
        live = self.live_tasks()
        for deployment in self.service.deployments:
            mine = [task for task in live if task.started_by == deployment["id"]]
            counts = {
                "desiredCount": self.service.desired_count if deployment is self.primary else 0,
                "runningCount": sum(1 for task in mine if task.last_status == "RUNNING"),
                "pendingCount": sum(1 for task in mine if tasks.is_pending(task)),
            }
            if any(deployment[key] != value for key, value in counts.items()):
                deployment.update(counts, updatedAt=utcnow())
        self.service.running_count = sum(1 for task in live if task.last_status == "RUNNING")
        self.service.pending_count = sum(1 for task in live if tasks.is_pending(task))

    def complete_deployment(self) -> None:
        """COMPLETED once the PRIMARY runs desiredCount tasks and no other deployment runs any."""
        primary, older = self.primary, self.service.deployments[1:]
        settled = (
            primary["runningCount"] == self.service.desired_count
            and primary["pendingCount"] == 0
            and not any(d["runningCount"] or d["pendingCount"] for d in older)
        )
        if settled and primary["rolloutState"] == "IN_PROGRESS":
            primary["rolloutState"] = "COMPLETED"
            primary["rolloutStateReason"] = f"ECS deployment {primary['id']} completed."
            primary["updatedAt"] = utcnow()
            del self.service.deployments[1:]
            self.sim.last_completed = (primary["id"], primary["taskDefinition"])
            add_event(self.service, f"(deployment {primary['id']}) deployment completed.")
        steady = settled and len(self.service.deployments) == 1
        if steady and self.sim.steady_at != self.service.desired_count:
            add_event(self.service, "has reached a steady state.")
        self.sim.steady_at = self.service.desired_count if steady else None

    def drain_deleted_service(self) -> None:
        """DeleteService: stop every task, then the service turns INACTIVE."""
        self.stop(self.live_tasks())
        self.update_counts()
        self.service.status = "INACTIVE"


def _stopping_order(candidates: list[Task]) -> list[Task]:
    """Which tasks ECS stops first: those not yet running, then from the AZ with the most tasks."""
    pending = [task for task in candidates if not tasks.is_healthy(task)]
    running = [task for task in candidates if tasks.is_healthy(task)]
    ordered: list[Task] = []
    while running:
        per_zone = Counter(vars(task).get("availability_zone") for task in running)
        task = max(running, key=lambda t: per_zone[vars(t).get("availability_zone")])
        running.remove(task)
        ordered.append(task)
    return pending + ordered


def _task_list(stopped_or_started: list[Task]) -> str:
    return " ".join(f"(task {task.id})" for task in stopped_or_started)


def _count_cluster_resources(backend: EC2ContainerServiceBackend) -> None:
    for cluster in backend.clusters.values():
        live = [
            t for t in backend.tasks.get(cluster.name, {}).values() if t.desired_status == "RUNNING"
        ]
        cluster.running_tasks_count = sum(1 for task in live if task.last_status == "RUNNING")
        cluster.pending_tasks_count = sum(1 for task in live if tasks.is_pending(task))
        cluster.registered_container_instances_count = len(
            backend.container_instances.get(cluster.name, {})
        )
        cluster.active_services_count = sum(
            1
            for service in backend.services.values()
            if service.cluster_name == cluster.name and service.status == "ACTIVE"
        )
        _count_instance_tasks(backend.container_instances.get(cluster.name, {}).values(), live)


def _count_instance_tasks(instances: Iterable[ContainerInstance], live: list[Task]) -> None:
    """ECS counts an instance's RUNNING and PENDING tasks apart; moto counts every task placed on
    it as running from the moment it is placed."""
    running = Counter(t.container_instance_arn for t in live if t.last_status == "RUNNING")
    pending = Counter(t.container_instance_arn for t in live if tasks.is_pending(t))
    for instance in instances:
        instance.running_tasks_count = running[instance.container_instance_arn]
        instance.pending_tasks_count = pending[instance.container_instance_arn]

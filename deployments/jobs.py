"""RQ entry points. Each job has a Job row: RQ carries only its id, the row carries the truth.

A job is claimed with a conditional update before it runs, so a job enqueued twice (or picked up
by two workers) runs once; the outcome, error and log lines are written back to the row.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import django_rq
from django import db
from django.conf import settings
from django.db import DatabaseError
from django.db.models import F, Q
from django.utils import timezone
from rq.exceptions import NoSuchJobError
from rq.job import Job as RqJob
from rq.job import JobStatus, get_current_job

from deployments import encryption, inventory, tracker
from deployments.aws import ecs_services, identity, parameters, provisioning, taskdefs
from deployments.aws import scaling as aws_scaling
from deployments.aws.clients import AccountAccess, add_client_hook
from deployments.aws.errors import describe_aws_error, is_transient
from deployments.aws.ownership import NotOurs
from deployments.aws_access import account_access, app_names, app_owner, cluster_access
from deployments.models import (
    App,
    AwsAccount,
    Cluster,
    Deployment,
    DeploymentEvent,
    Job,
    Release,
    ScalingSettings,
    team_aws_path,
)
from deployments.transitions import transition

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# A row younger than this may still be waiting for its transaction's on_commit enqueue.
ENQUEUE_GRACE = timedelta(seconds=30)
RQ_WAITING = frozenset({JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED})
TICK_LOCK = "tinystacks:tick"

JobHandler = Callable[[Job], None]
HANDLERS: dict[str, JobHandler] = {}


class JobFailed(Exception):
    """A failure already described for users; its message is recorded as the job's error."""


class RetryLater(Exception):
    """The job is waiting on something (AWS, another job): queue it again after `delay` s.

    `transient` marks a wait caused by an AWS error (throttling, no connection): those are
    counted, to back off further each time and to give up eventually.
    """

    def __init__(self, reason: str, delay: float, *, transient: bool = False) -> None:
        super().__init__(reason)
        self.delay = delay
        self.transient = transient


def handles(kind: str) -> Callable[[JobHandler], JobHandler]:
    def register(handler: JobHandler) -> JobHandler:
        HANDLERS[kind] = handler
        return handler

    return register


def enqueue(job: Job) -> None:
    """Hand the row's id to RQ under the row's RQ id. Call only after the row is committed."""
    django_rq.get_queue("default").enqueue(run_job, job.pk, job_id=job.rq_id)


def run_job(job_id: int) -> None:
    """The one function RQ calls: claim the row, run its handler, record how it ended.

    A run is the row's for as long as the row carries the run's RQ id: the reconciler gives a
    lost run's row a new id, so a run that comes back (a frozen worker thawed, an RQ job left
    behind by a flush) can no longer write to AWS or to the row.
    """
    job = Job.objects.get(pk=job_id)
    running_as = rq_current_id() or job.rq_id
    mine = Q(rq_id=running_as)
    now = timezone.now()
    claimed = transition(
        job, Job.Status.RUNNING, where=mine,
        started_at=now, heartbeat_at=now, attempts=F("attempts") + 1, error="",
    )  # fmt: skip
    if not claimed:
        logger.info("job %s is %s (RQ id %s); not running it", job_id, job.status, job.rq_id)
        return
    with held(job, running_as):
        try:
            HANDLERS[job.kind](job)
        except RetryLater as wait:
            log_line(job, f"{wait}; trying again in {wait.delay:g} s")
            # A fresh RQ id: RQ records this execution as finished under the id it runs as.
            retry_as = str(uuid.uuid4())
            # Waiting is not a failed attempt: the reconciler's give-up count stays where it was.
            if transition(
                job, Job.Status.QUEUED, where=mine, rq_id=retry_as, attempts=F("attempts") - 1,
                retries=F("retries") + int(wait.transient), log=job.log,
            ):  # fmt: skip
                django_rq.get_queue("default").enqueue_in(
                    timedelta(seconds=wait.delay), run_job, job.pk, job_id=retry_as
                )
        except Exception as error:
            if isinstance(error, JobFailed):
                message = str(error)
                logger.warning("job %s (%s) failed: %s", job_id, job.kind, message)
            else:
                message = describe_aws_error(error)
                logger.exception("job %s (%s) failed: %s", job_id, job.kind, message)
            transition(
                job, Job.Status.FAILED, where=mine,
                error=message, finished_at=timezone.now(), log=job.log,
            )  # fmt: skip
        else:
            transition(
                job, Job.Status.SUCCEEDED, where=mine, finished_at=timezone.now(), log=job.log
            )


def rq_current_id() -> str | None:
    """The id of the RQ job this code runs in; None outside a worker (tests, the shell)."""
    current = get_current_job()
    return current.id if current else None


class Superseded(BaseException):
    """This run lost its job to another run: stop at once, write nothing.

    A BaseException so that no handler's `except Exception` records it as the job's failure.
    """


_running = threading.local()  # (job pk, RQ id) of the run this thread is doing, for fence()


@contextmanager
def held(job: Job, running_as: str) -> Iterator[None]:
    """While a run holds its job: refresh the row's heartbeat (on a worker), and fence the run's
    AWS writes. A run that is superseded stops here, leaving the row to the run that has it."""
    _running.job = (job.pk, running_as)
    stop = threading.Event()
    beating = threading.Thread(target=beat, args=(job.pk, running_as, stop), daemon=True)
    # Only a worker's run can be taken for lost by the reconciler; in-process runs (tests) run
    # inside transactions that a second connection must not wait on.
    if rq_current_id():
        beating.start()
    try:
        yield
    except Superseded as superseded:
        logger.warning("job %s: %s; this run stops, the other goes on", job.pk, superseded)
    finally:
        _running.job = None
        stop.set()
        if beating.is_alive():
            beating.join(timeout=5)


def heartbeat_seconds() -> float:
    return settings.TINYSTACKS_STALE_JOB_SECONDS / 4


def beat(job_pk: int, running_as: str, stop: threading.Event) -> None:
    """Refresh the running row's heartbeat until told to stop or the row is no longer ours."""
    try:
        while not stop.wait(heartbeat_seconds()):
            try:
                ours = Job.objects.filter(
                    pk=job_pk, rq_id=running_as, status=Job.Status.RUNNING
                ).update(heartbeat_at=timezone.now())
            except DatabaseError as error:  # the database is away: try at the next beat
                logger.warning("job %s: heartbeat not recorded: %s", job_pk, error)
                db.close_old_connections()
                continue
            if not ours:
                return
    finally:
        db.connections.close_all()  # this thread's connections only


def fence(model: Any, **kwargs: Any) -> None:
    """botocore before-call hook: a run may change AWS only while its job is still its own.

    Reads are let through; a write is checked against the row first. If the row cannot be read
    the run stops too: the reconciler gives the job to a new run once the heartbeat is stale.
    """
    held_job = getattr(_running, "job", None)
    if held_job is None or model.name.startswith(READ_OPERATIONS):
        return
    job_pk, running_as = held_job
    try:
        ours = Job.objects.filter(pk=job_pk, rq_id=running_as, status=Job.Status.RUNNING).exists()
    except DatabaseError as error:
        raise Superseded(f"cannot confirm it still holds the job ({error})") from error
    if not ours:
        raise Superseded(f"another run has the job; {model.name} not called")


READ_OPERATIONS = ("Describe", "List", "Get")
add_client_hook("before-call", fence)


def target_pk(job: Job) -> int:
    if job.target_id is None:
        raise JobFailed(f"{job} has no target")
    return job.target_id


def log_line(job: Job, message: str) -> None:
    """Record a step for users to read; kept on the row, written when the job ends."""
    job.log.append({"at": timezone.now().isoformat(), "message": message})


@handles("verify_account")
def verify_account(job: Job) -> None:
    """Check that the dashboard can act in the account, and say exactly what failed if not."""
    account = AwsAccount.objects.select_related("team").get(pk=target_pk(job))
    access = account_access(account)
    try:
        if account.mode == AwsAccount.Mode.SANDBOX:
            log_line(job, f"Creating the sandbox's customer role {account.role_arn}")
            identity.create_sandbox_customer_role(access)
        log_line(job, f"Assuming the role and probing each service as {account.get_mode_display()}")
        verification = identity.verify(access)
    except Exception as error:
        _verification_failed(account, describe_aws_error(error), error)
    if verification.missing:
        _verification_failed(
            account,
            f"Connected as {verification.arn}, but its policy does not allow: "
            f"{'; '.join(verification.missing)}. Paste the permissions policy shown on this page "
            "into the role, then verify again.",
        )
    account.verified_at = timezone.now()
    account.verification_error = ""
    account.save(update_fields=["verified_at", "verification_error"])
    log_line(job, f"Connected as {verification.arn}; every probe passed")


def _verification_failed(
    account: AwsAccount, message: str, cause: Exception | None = None
) -> NoReturn:
    account.verification_error = message
    account.save(update_fields=["verification_error"])
    raise JobFailed(message) from cause


INSTANCES_JOIN_TIMEOUT = timedelta(minutes=15)
STEP_RETRY_SECONDS = 5.0
MAX_BACKOFF_SECONDS = 120.0
MAX_TRANSIENT_RETRIES = 12  # about 15 minutes of backing off


def cluster_spec(cluster: Cluster) -> provisioning.ClusterSpec:
    return provisioning.ClusterSpec(
        access=cluster_access(cluster),
        uuid=str(cluster.uuid),
        team_slug=cluster.team.slug,
        ecs_name=cluster.ecs_name,
        name_prefix=cluster.name_prefix,
        instance_type=cluster.instance_type,
        min_instances=cluster.min_instances,
        desired_instances=cluster.desired_instances,
        max_instances=cluster.max_instances,
        secrets_path=team_aws_path(cluster.team),
        resources=dict(cluster.resources),
    )


def claim_cluster(cluster: Cluster, job: Job) -> None:
    """Make `job` the one job working on `cluster`, or wait for the one that is.

    A claim left by a job that has ended (given up after its worker died) no longer counts.
    """
    claimed = (
        Cluster.objects.filter(pk=cluster.pk)
        .filter(
            Q(current_job__isnull=True)
            | Q(current_job=job)
            | Q(current_job__status__in=[Job.Status.SUCCEEDED, Job.Status.FAILED])
        )
        .update(current_job=job)
    )
    if not claimed:
        raise RetryLater(f"{cluster} is busy with another job", STEP_RETRY_SECONDS)


def release_cluster(cluster: Cluster) -> None:
    Cluster.objects.filter(pk=cluster.pk).update(current_job=None)


def retry_if_transient(job: Job, error: Exception, doing: str) -> None:
    """Back off (5 s, 10 s, … capped at 2 min) while AWS throttles or cannot be reached, for up
    to MAX_TRANSIENT_RETRIES tries; return (to let the caller fail the job) otherwise."""
    if is_transient(error) and job.retries < MAX_TRANSIENT_RETRIES:
        delay = min(MAX_BACKOFF_SECONDS, STEP_RETRY_SECONDS * 2**job.retries)
        raise RetryLater(f"{doing}: {describe_aws_error(error)}", delay, transient=True) from error


def record_step(
    cluster: Cluster,
    steps: list[tuple[str, provisioning.Step]],
    name: str,
    status: str,
    error: str = "",
) -> None:
    """Save one step's progress (and the resources found so far) for pages to show."""
    known = {step["name"]: step for step in cluster.steps}
    known[name] = {"name": name, "status": status, "error": error}
    cluster.steps = [known.get(n, {"name": n, "status": "pending", "error": ""}) for n, _ in steps]
    cluster.save(update_fields=["steps", "resources", "updated_at"])


def run_cluster_steps(
    job: Job, cluster: Cluster, steps: list[tuple[str, provisioning.Step]]
) -> None:
    """Walk `steps` in order, recording each; waits and throttles come back later, other AWS
    errors fail the cluster with the step that failed (a retry resumes there: steps adopt)."""
    spec = cluster_spec(cluster)
    if {step["name"] for step in cluster.steps} != {name for name, _ in steps}:
        cluster.steps = []
    for name, step in steps:
        record_step(cluster, steps, name, "running")
        try:
            spec.resources.update(step(spec) or {})
        except provisioning.StepPending as waiting:
            record_step(cluster, steps, name, "running", str(waiting))
            if timezone.now() - job.created_at > INSTANCES_JOIN_TIMEOUT:
                cluster_failed(cluster, steps, name, f"Timed out: {waiting}")
                raise JobFailed(f"Timed out: {waiting}") from None
            raise RetryLater(str(waiting), STEP_RETRY_SECONDS) from None
        except Exception as error:
            retry_if_transient(job, error, f"Step {name}")
            message = describe_aws_error(error)
            cluster_failed(cluster, steps, name, message)
            raise JobFailed(f"Step {name} failed: {message}") from error
        cluster.resources = spec.resources
        record_step(cluster, steps, name, "done")
        log_line(job, f"{name}: done")


def cluster_failed(
    cluster: Cluster, steps: list[tuple[str, provisioning.Step]], step: str, message: str
) -> None:
    record_step(cluster, steps, step, "failed", message)
    transition(cluster, Cluster.Status.FAILED, status_reason=f"{step}: {message}")
    release_cluster(cluster)


def _cluster_for(job: Job) -> Cluster:
    return Cluster.objects.select_related("account__team", "team").get(pk=target_pk(job))


@handles("provision_cluster")
def provision_cluster(job: Job) -> None:
    cluster = _cluster_for(job)
    claim_cluster(cluster, job)
    if cluster.status != Cluster.Status.PROVISIONING and not transition(
        cluster, Cluster.Status.PROVISIONING, status_reason=""
    ):
        release_cluster(cluster)
        log_line(job, f"Not provisioning: the cluster is {cluster.get_status_display().lower()}")
        return
    run_cluster_steps(job, cluster, provisioning.STEPS)
    transition(cluster, Cluster.Status.READY)
    release_cluster(cluster)


@handles("scale_cluster")
def scale_cluster(job: Job) -> None:
    """Apply the cluster row's instance counts and type to its Auto Scaling group."""
    cluster = _cluster_for(job)
    claim_cluster(cluster, job)
    spec = cluster_spec(cluster)
    try:
        changes = provisioning.scale_instances(spec)
    except Exception as error:
        release_cluster(cluster)
        retry_if_transient(job, error, "Scaling")
        raise JobFailed(f"Scaling failed: {describe_aws_error(error)}") from error
    cluster.resources = spec.resources
    cluster.save(update_fields=["resources", "updated_at"])
    release_cluster(cluster)
    log_line(job, "; ".join(changes) or "Already as asked; nothing to change")


@handles("delete_cluster")
def delete_cluster(job: Job) -> None:
    cluster = _cluster_for(job)
    claim_cluster(cluster, job)
    run_cluster_steps(job, cluster, provisioning.TEARDOWN_STEPS)
    cluster.resources = {}
    cluster.save(update_fields=["resources", "updated_at"])
    transition(cluster, Cluster.Status.DELETED)
    release_cluster(cluster)


def deployment_event(deployment: Deployment, message: str) -> None:
    DeploymentEvent.objects.create(
        deployment=deployment, message=message, created_at=timezone.now()
    )


def _task_definition_for(deployment: Deployment, access: AccountAccess) -> str:
    """The release's revision: kept if registered (and still ACTIVE for a rollback), else new."""
    release, app = deployment.release, deployment.app
    if release.task_definition_arn and taskdefs.is_active(access, release.task_definition_arn):
        return release.task_definition_arn
    names, config = app_names(app), release.config
    arn = taskdefs.register(
        access,
        taskdefs.TaskDefinitionSpec(
            family=names["family"],
            release_id=release.pk,
            image=release.image,
            cpu=config["cpu"],
            memory=config["memory"],
            port=config["port"],
            health_check_path=config.get("health_check_path", ""),
            command=config.get("command", ""),
            environment=config.get("env", {}),
            secrets=_store_secrets(release, access, names["parameters"]),
            execution_role_arn=app.cluster.resources["execution_role_arn"],
            log_group=names["log_group"],
            region=app.cluster.region,
            tags=app_owner(app),
        ),
    )
    Release.objects.filter(pk=release.pk).update(task_definition_arn=arn)
    deployment_event(deployment, f"Registered task definition {arn.rsplit('/', 1)[-1]}")
    return arn


def _store_secrets(release: Release, access: AccountAccess, path: str) -> dict[str, str]:
    """Put the release's secret values in Parameter Store, one SecureString per release and
    name (so a rollback's task definition still finds its own values); name → parameter."""
    stored = {}
    for name, token in sorted(release.config.get("secrets", {}).items()):
        parameter = f"{path}/r{release.pk}/{name}"
        parameters.put_secure(access, parameter, encryption.decrypt(token))
        stored[name] = parameter
    return stored


def _service_spec(app: App, task_definition: str) -> ecs_services.ServiceSpec:
    return ecs_services.ServiceSpec(
        cluster=app.cluster.ecs_name,
        name=app_names(app)["service"],
        task_definition=task_definition,
        desired_count=app.desired_count,
        min_healthy_percent=app.min_healthy_percent,
        max_percent=app.max_percent,
        circuit_breaker=app.circuit_breaker,
        capacity_provider=app.cluster.resources["capacity_provider_name"],
        tags=app_owner(app),
    )


@handles("run_deployment")
def run_deployment(job: Job) -> None:
    """Register the task definition, create or update the service, then hand over to the tick.

    Safe to run again at any point: a registered revision is found by its release tag, a
    created service by its client token, an update is skipped when the PRIMARY runs it already.
    """
    deployment = Deployment.objects.select_related(
        "release", "app__team", "app__scaling", "app__cluster__account__team"
    ).get(pk=target_pk(job))
    app = deployment.app
    if not deployment.is_active or deployment.status == Deployment.Status.IN_PROGRESS:
        log_line(job, f"Deployment is {deployment.get_status_display().lower()}; nothing to do")
        return
    if app.cluster.status != Cluster.Status.READY:
        _deployment_failed(deployment, f"Cluster {app.cluster.name} is not ready.")
        raise JobFailed(f"Cluster {app.cluster.name} is not ready.")
    access = cluster_access(app.cluster)
    try:
        if deployment.status == Deployment.Status.QUEUED:
            transition(deployment, Deployment.Status.REGISTERING, started_at=timezone.now())
        task_definition = _task_definition_for(deployment, access)
        if deployment.status == Deployment.Status.REGISTERING:
            transition(deployment, Deployment.Status.UPDATING)
        spec = _service_spec(app, task_definition)
        service = ecs_services.find(access, spec.cluster, spec.name, spec.tags)
        started = (
            ecs_services.create(access, spec, client_token=f"tinystacks-deployment-{deployment.pk}")
            if service is None
            else ecs_services.update(access, spec, service)
        )
    except Exception as error:
        retry_if_transient(job, error, "Deploying")
        message = describe_aws_error(error)
        _deployment_failed(deployment, message)
        raise JobFailed(message) from error
    App.objects.filter(pk=app.pk).update(service_arn=started.service_arn)
    # Also when a crashed run created the service but died before applying its scaling.
    if service is None or app.scaling.applied_at is None:
        deployment_event(deployment, apply_app_scaling(app, access))
    transition(
        deployment,
        Deployment.Status.IN_PROGRESS,
        ecs_deployment_id=started.deployment_id,
        last_progress_at=timezone.now(),
    )
    verb = "Following" if started.already_running else "Started"
    deployment_event(deployment, f"{verb} ECS deployment {started.deployment_id}")
    log_line(job, f"{verb} ECS deployment {started.deployment_id}")


def apply_app_scaling(app: App, access: AccountAccess) -> str:
    """Autoscaling on CPU, or the fixed desired count; says which."""
    names, scaling = app_names(app), app.scaling
    cluster = app.cluster.ecs_name
    if scaling.autoscaling_enabled:
        aws_scaling.track_cpu(
            access, cluster, names["service"], min_tasks=scaling.min_tasks,
            max_tasks=scaling.max_tasks, cpu_target=scaling.cpu_target,
        )  # fmt: skip
        done = (
            f"Autoscaling {scaling.min_tasks}–{scaling.max_tasks} tasks "
            f"at {scaling.cpu_target} % CPU"
        )
    else:
        aws_scaling.stop_tracking(access, cluster, names["service"])
        ecs_services.set_desired_count(access, cluster, names["service"], app.desired_count)
        done = f"Fixed at {app.desired_count} tasks"
    ScalingSettings.objects.filter(pk=scaling.pk).update(applied_at=timezone.now())
    return done


def _app_for(job: Job) -> App:
    return App.objects.select_related("team", "scaling", "cluster__account__team").get(
        pk=target_pk(job)
    )


@handles("apply_scaling")
def apply_scaling(job: Job) -> None:
    app = _app_for(job)
    try:
        log_line(job, apply_app_scaling(app, cluster_access(app.cluster)))
    except Exception as error:
        retry_if_transient(job, error, "Scaling")
        raise


@handles("delete_app")
def delete_app(job: Job) -> None:
    """Stop autoscaling, scale to zero and delete the service, deregister every revision,
    delete the log group — each step a no-op if already done — then forget the app. A service or
    revision under the app's names without its tags is not the app's: it is left alone."""
    app = _app_for(job)
    access, names, owner = cluster_access(app.cluster), app_names(app), app_owner(app)
    cluster = app.cluster.ecs_name
    try:
        service = ecs_services.find(access, cluster, names["service"], owner)
    except NotOurs as foreign:
        log_line(job, f"Left alone: {foreign}")
        service = None
    if service is not None:
        aws_scaling.stop_tracking(access, cluster, names["service"])
        ecs_services.delete(access, cluster, names["service"])
    revisions = taskdefs.deregister_family(access, names["family"], owner)
    taskdefs.delete_log_group(access, names["log_group"])
    parameters.delete_under(access, names["parameters"])
    log_line(job, f"Deleted service {names['service']} and {revisions} task definition revisions")
    App.objects.filter(pk=app.pk).delete()


def _deployment_failed(deployment: Deployment, reason: str) -> None:
    transition(
        deployment,
        Deployment.Status.FAILED,
        rollout_state_reason=reason,
        finished_at=timezone.now(),
    )
    deployment_event(deployment, f"Failed: {reason}")


def tick() -> None:
    """The scheduled heartbeat: one at a time, it follows rollouts, re-enqueues work that Redis
    lost and, last, refreshes the clusters' live capacity (reads that may wait, unlike the rest)."""
    lock = django_rq.get_connection("default").lock(
        TICK_LOCK, timeout=max(60, settings.TINYSTACKS_POLL_SECONDS * 10), blocking=False
    )
    if not lock.acquire():
        return
    try:
        tracker.follow_rollouts()
        jobs_requeue_lost()
        inventory.capacity_refresh()
    finally:
        lock.release()


def lease_expired(job: Job) -> bool:
    """A running row whose run has not beaten for TINYSTACKS_STALE_JOB_SECONDS: its worker is
    gone (killed, frozen, cut off), whatever Redis says or has forgotten."""
    last = job.heartbeat_at or job.started_at or job.created_at
    return last < stale_before()


def stale_before() -> datetime:
    return timezone.now() - timedelta(seconds=settings.TINYSTACKS_STALE_JOB_SECONDS)


def rq_is_waiting(rq_job: RqJob) -> bool:
    """Waiting to run (a scheduled job only until it is overdue: the scheduler that should have
    queued it died holding RQ's scheduler lock), or picked up by a worker that still beats."""
    status = rq_job.get_status(refresh=False)
    if status == JobStatus.SCHEDULED:
        registry = django_rq.get_queue("default").scheduled_job_registry
        try:
            due: datetime = registry.get_scheduled_time(rq_job)
        except NoSuchJobError:
            return False
        return due > stale_before()
    if status == JobStatus.STARTED:
        beat = rq_job.last_heartbeat
        if beat is None:
            return True
        return (beat if beat.tzinfo else beat.replace(tzinfo=UTC)) > stale_before()
    return status in RQ_WAITING


def jobs_requeue_lost() -> int:
    """Re-enqueue jobs whose run is lost (worker killed or frozen, Redis flushed, enqueue failed).

    The database row is the truth: a running row is lost when its heartbeat is stale; a queued
    row when no RQ job is waiting to run it. Each gets a new RQ id, which fences off any run
    still holding the old one. Returns how many were re-enqueued.
    """
    unfinished = list(
        Job.objects.filter(
            status__in=[Job.Status.QUEUED, Job.Status.RUNNING],
            created_at__lt=timezone.now() - ENQUEUE_GRACE,
        )
    )
    if not unfinished:
        return 0
    connection = django_rq.get_connection("default")
    rq_jobs = RqJob.fetch_many([job.rq_id for job in unfinished], connection=connection)
    requeued = 0
    for job, rq_job in zip(unfinished, rq_jobs, strict=True):
        if job.status == Job.Status.RUNNING:
            if not lease_expired(job):
                continue
        elif rq_job is not None and rq_is_waiting(rq_job):
            continue
        if job.attempts >= MAX_ATTEMPTS:
            transition(
                job,
                Job.Status.FAILED,
                where=Q(rq_id=job.rq_id),
                error=f"Gave up after {job.attempts} attempts; the worker running it was lost.",
                finished_at=timezone.now(),
            )
            continue
        if requeue(job):
            if rq_job is not None:
                rq_discard(rq_job)  # an overdue scheduled job must not run later as well
            logger.warning("re-enqueued lost job %s (%s)", job.pk, job.kind)
            requeued += 1
    return requeued


def rq_discard(rq_job: RqJob) -> None:
    """Delete an RQ job we have replaced. RQ's delete first reads the job's executions, and a run
    still beating after its execution expired re-creates that hash half-written (heartbeat only),
    which RQ cannot read; then the job's own hash goes alone, which is enough for RQ's scheduler
    and workers to skip it (the fence stops the old run itself)."""
    try:
        rq_job.delete()
    except (KeyError, ValueError):
        rq_job.connection.delete(rq_job.key)


def requeue(job: Job) -> bool:
    """Queue `job` again under a new RQ id, unless its row moved on since it was read."""
    still_lost, new_id = Q(rq_id=job.rq_id), str(uuid.uuid4())
    if job.status == Job.Status.RUNNING:
        # Not if the run beat again since the row was read.
        still_lost &= Q(heartbeat_at=job.heartbeat_at)
        moved = transition(job, Job.Status.QUEUED, where=still_lost, rq_id=new_id)
    else:
        moved = bool(
            Job.objects.filter(still_lost, pk=job.pk, status=Job.Status.QUEUED).update(rq_id=new_id)
        )
        job.rq_id = new_id
    if moved:
        enqueue(job)
    return moved

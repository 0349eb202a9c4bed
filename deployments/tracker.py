"""Following rollouts: every tick reads all in-flight deployments, grouped by account, region and
cluster, with one DescribeServices per 10 services, and records what ECS says.

A deployment is followed by its own ECS deployment id and task definition; it ends succeeded,
failed, rolled_back (ECS's circuit breaker rolled back: the previous release is live again) or
timed_out, when for the app's rollout timeout no more of its tasks were running and healthy at
once than before (tasks that start and crash, over and over, are no progress).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from deployments.aws import rollouts
from deployments.aws.clients import AccountAccess
from deployments.aws.errors import AWS_ERRORS, describe_aws_error
from deployments.aws_access import app_names, cluster_access
from deployments.models import Deployment, DeploymentEvent
from deployments.transitions import transition

logger = logging.getLogger(__name__)

# The prefix of the TinyStacks event that says why the deployment's tasks stop.
TASKS_STOPPED = "Tasks stopped: "
BAD_ENDINGS = ("failed", "rolled_back")
OUTCOMES = {
    "succeeded": Deployment.Status.SUCCEEDED,
    "failed": Deployment.Status.FAILED,
    "rolled_back": Deployment.Status.ROLLED_BACK,
}


def follow_rollouts() -> int:
    """Update every in-flight deployment from ECS; returns how many were read."""
    in_flight = Deployment.objects.filter(status=Deployment.Status.IN_PROGRESS).select_related(
        "release", "app__team", "app__cluster__account__team"
    )
    groups: dict[tuple[int, str, str], list[Deployment]] = defaultdict(list)
    for deployment in in_flight:
        cluster = deployment.app.cluster
        groups[(cluster.account_id, cluster.region, cluster.ecs_name)].append(deployment)
    for (_, _, cluster_name), deployments in groups.items():
        access = cluster_access(deployments[0].app.cluster)
        names = [app_names(d.app)["service"] for d in deployments]
        try:
            views = rollouts.describe(access, cluster_name, names)
        except AWS_ERRORS as error:
            # Throttled or unreachable: these deployments are read again next tick.
            logger.warning("could not read %s: %s", cluster_name, describe_aws_error(error))
            continue
        now = timezone.now()
        for deployment in deployments:
            view = views.get(app_names(deployment.app)["service"])
            record(deployment, view, now, access, cluster_name)
    return sum(len(group) for group in groups.values())


def record(
    deployment: Deployment,
    view: rollouts.ServiceView | None,
    now: datetime,
    access: AccountAccess,
    cluster_name: str,
) -> None:
    verdict = rollouts.assess(
        view,
        deployment.ecs_deployment_id,
        deployment.release.task_definition_arn,
        deployment.rollout_state,
    )
    if view is not None:
        _record_events(deployment, view)
    stopped = (
        rollouts.Stopped(deployment.failed_count, "")
        if verdict.outcome == "succeeded"
        else _stopped(deployment, verdict, access, cluster_name)
    )
    counts: dict[str, Any] = {
        "desired_count": verdict.desired,
        "running_count": verdict.running,
        "pending_count": verdict.pending,
        # Never fewer than seen: ECS resets its count once a task runs, and forgets the
        # deployment it rolled back from, but its failed tasks stay failed.
        "failed_count": max(verdict.failed, stopped.failed),
        "rollout_state": verdict.rollout_state or deployment.rollout_state,
        "rollout_state_reason": _with_stop(verdict.reason, stopped.latest_reason),
    }
    if verdict.outcome in OUTCOMES:
        transition(deployment, OUTCOMES[verdict.outcome], finished_at=now, **counts)
        return
    counts["healthy_peak"] = _healthy_peak(deployment, verdict, access, cluster_name)
    progressed = counts["healthy_peak"] > deployment.healthy_peak
    last_progress = (
        now if progressed else (deployment.last_progress_at or deployment.started_at or now)
    )
    timeout = timedelta(seconds=deployment.app.rollout_timeout_seconds)
    if now - last_progress > timeout:
        reason = (
            f"No progress for {int(timeout.total_seconds() // 60)} min: at most "
            f"{counts['healthy_peak']} of {verdict.desired} new tasks were running and healthy "
            f"at once ({counts['failed_count']} failed). {_latest_message(deployment)}"
        ).strip()
        reason = _with_stop(reason, stopped.latest_reason)
        transition(
            deployment,
            Deployment.Status.TIMED_OUT,
            finished_at=now,
            **(counts | {"rollout_state_reason": reason}),
        )
        return
    if any(getattr(deployment, name) != value for name, value in counts.items()):
        Deployment.objects.filter(pk=deployment.pk, status=Deployment.Status.IN_PROGRESS).update(
            last_progress_at=last_progress, **counts
        )


def _healthy_peak(
    deployment: Deployment,
    verdict: rollouts.Assessment,
    access: AccountAccess,
    cluster_name: str,
) -> int:
    """The deployment's new high of tasks running and healthy at once. ECS is asked (ListTasks,
    DescribeTasks) only when more of its tasks run than that high: fewer cannot be more healthy."""
    if verdict.running <= deployment.healthy_peak:
        return deployment.healthy_peak
    release = deployment.release
    try:
        healthy = rollouts.healthy_tasks(
            access,
            cluster_name,
            deployment.ecs_deployment_id,
            release.task_definition_arn,
            checked=bool(release.config.get("health_check_path")),
        )
    except AWS_ERRORS as error:
        logger.warning("could not count healthy tasks: %s", describe_aws_error(error))
        return deployment.healthy_peak  # counted again next tick
    return max(deployment.healthy_peak, healthy)


def _stopped(
    deployment: Deployment,
    verdict: rollouts.Assessment,
    access: AccountAccess,
    cluster_name: str,
) -> rollouts.Stopped:
    """How many of the deployment's tasks failed and why they stop, the reason recorded as a
    TinyStacks event when it is new. ECS is asked (ListTasks, DescribeTasks) only when more of
    them failed than last tick, or as the deployment ends badly; otherwise what was recorded
    stands."""
    known = rollouts.Stopped(deployment.failed_count, _recorded_stop_reason(deployment))
    if verdict.failed <= deployment.failed_count and verdict.outcome not in BAD_ENDINGS:
        return known
    try:
        seen = rollouts.stopped_tasks(access, cluster_name, deployment.ecs_deployment_id)
    except AWS_ERRORS as error:
        logger.warning("could not read stopped tasks: %s", describe_aws_error(error))
        return known  # asked again on the next failure
    if seen.latest_reason and seen.latest_reason != known.latest_reason:
        DeploymentEvent.objects.create(
            deployment=deployment,
            message=f"{TASKS_STOPPED}{seen.latest_reason}",
            created_at=timezone.now(),
        )
    return rollouts.Stopped(
        max(seen.failed, known.failed), seen.latest_reason or known.latest_reason
    )


def _recorded_stop_reason(deployment: Deployment) -> str:
    event = (
        deployment.events.filter(
            source=DeploymentEvent.Source.TINYSTACKS, message__startswith=TASKS_STOPPED
        )
        .order_by("-created_at", "-pk")
        .first()
    )
    return event.message.removeprefix(TASKS_STOPPED) if event else ""


def _with_stop(reason: str, stopped: str) -> str:
    return f"{reason} {TASKS_STOPPED}{stopped}".strip() if stopped else reason


def _record_events(deployment: Deployment, view: rollouts.ServiceView) -> None:
    """ECS's service events since this rollout began, each once (the ECS event id is unique).

    Its start is stamped before UpdateService is called, so the previous rollout's last events
    ("deployment completed") fall before it.
    """
    since = deployment.started_at or deployment.created_at
    DeploymentEvent.objects.bulk_create(
        [
            DeploymentEvent(
                deployment=deployment,
                source=DeploymentEvent.Source.ECS,
                ecs_event_id=event.id,
                message=event.message,
                created_at=event.at,
            )
            for event in view.events
            if event.at >= since
        ],
        ignore_conflicts=True,
    )


def _latest_message(deployment: Deployment) -> str:
    latest = deployment.events.filter(source=DeploymentEvent.Source.ECS).order_by("-created_at")
    event = latest.first()
    return f"Latest ECS event: {event.message}" if event else ""

"""The rollout timeout on the sandbox, stepped: progress is a new high of the rollout's own tasks
running and healthy at once, so tasks that start and fail over and over do not keep it alive."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import F
from django.db.models.functions import Coalesce

from deployments import tracker
from deployments.models import App, Deployment
from deployments.sandbox.server import Sandbox
from deployments.services import app_update, deployment_start, live_release
from tests.conftest import wait_for_in_process
from tests.test_deploys import deploy

pytestmark = pytest.mark.django_db(transaction=True)
TICK = timedelta(seconds=5)  # rollout time per simulator step: tasks start within 3 steps


def _step(sandbox: Sandbox, deployment: Deployment) -> Deployment:
    """One simulator step, TICK of the rollout's time gone by, then one tracker tick."""
    sandbox.step()
    Deployment.objects.filter(pk=deployment.pk).update(
        started_at=F("started_at") - TICK,
        last_progress_at=Coalesce("last_progress_at", "started_at") - TICK,
    )
    tracker.follow_rollouts()
    deployment.refresh_from_db()
    return deployment


def _roll_out(app: App, sandbox: Sandbox, image: str, steps: int = 40) -> Deployment:
    with sandbox.paused():
        deployment = wait_for_in_process(deployment_start(app=app, actor=None, image=image))
        for _ in range(steps):
            if _step(sandbox, deployment).status != Deployment.Status.IN_PROGRESS:
                break
    return deployment


@pytest.fixture
def live(app: App) -> App:
    """v1 live; no circuit breaker, a health check, and a 1-minute rollout timeout."""
    deploy(app, "nginx:1.27")
    return app_update(
        app=app, actor=None, circuit_breaker=False, health_check_path="/healthz",
        rollout_timeout_seconds=60,
    )  # fmt: skip


def test_tasks_that_keep_starting_and_failing_time_out(live: App, sandbox: Sandbox) -> None:
    # Each round of new tasks reaches RUNNING, fails its health check and is replaced.
    timed_out = _roll_out(live, sandbox, "nginx:unhealthy")

    assert timed_out.status == Deployment.Status.TIMED_OUT
    assert timed_out.rollout_state_reason.startswith(
        "No progress for 1 min: at most 0 of 2 new tasks were running and healthy at once"
    )
    still_live = live_release(live)
    assert still_live is not None and still_live.version == 1


def test_a_healthy_rollout_with_a_health_check_still_succeeds(live: App, sandbox: Sandbox) -> None:
    succeeded = _roll_out(live, sandbox, "nginx:1.28")

    assert succeeded.status == Deployment.Status.SUCCEEDED
    assert live_release(live) == succeeded.release

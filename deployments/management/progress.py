"""What `manage.py deploy` and `manage.py rollback` share: finding <team>/<app>, reporting what
was started, and waiting for the rollout.

Waiting reads the database every second, never AWS: the worker and the tracker tick do the work
and record it, exactly as for the dashboard. A line is printed whenever something a person would
notice changes. Exit codes: 0 the rollout succeeded; 1 it ended otherwise, or the wait timed out;
2 the command was refused (unknown app, bad input, a rollout already in flight).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser, OutputWrapper

from deployments import selectors
from deployments.models import App, Deployment
from deployments.services import Conflict

EXIT_FAILED = 1
EXIT_REFUSED = 2
POLL_SECONDS = 1.0
# Still queued after this long usually means no worker is running.
QUEUED_HINT_SECONDS = 15.0


def add_wait_arguments(parser: CommandParser) -> None:
    parser.add_argument(
        "--wait",
        action="store_true",
        help="Follow the rollout until it ends; exit 0 if it succeeded, 1 otherwise.",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="With --wait: stop waiting after this long and exit 1 (the rollout goes on).",
    )


def refused(message: str) -> CommandError:
    return CommandError(message, returncode=EXIT_REFUSED)


def check_timeout(timeout: float | None) -> None:
    if timeout is not None and not timeout > 0:
        raise refused(f"--timeout must be a positive number of seconds, not {timeout:g}.")


def app_from_path(path: str) -> App:
    """The app named as <team>/<app> (team slug, app name)."""
    team_slug, slash, name = path.partition("/")
    if not slash or not team_slug or not name:
        raise refused(f"Name the app as <team>/<app>, e.g. acme/web; got {path!r}.")
    app = selectors.app_by_team_slug(team_slug, name)
    if app is None:
        raise refused(f"There is no app {name!r} in a team {team_slug!r}.")
    return app


def start(action: Callable[[], Deployment]) -> Deployment:
    """Run the service call that starts a rollout; its refusals exit 2 with the service's
    message on one line."""
    try:
        return action()
    except Conflict as error:
        raise refused(str(error)) from None
    except ValidationError as error:
        raise refused(" ".join(error.messages)) from None


def report_started(out: OutputWrapper, deployment: Deployment) -> None:
    release, app = deployment.release, deployment.app
    about = f" — {release.description}" if release.description else ""
    out.write(
        f"{app.team.slug}/{app.name} {release.label}: {release.image}{about}; "
        f"deployment {deployment.pk} is {deployment.status}."
    )


@dataclass(frozen=True)
class Snapshot:
    """What a progress line shows; a new line is printed when it changes."""

    label: str
    status: str
    running: int
    desired: int
    pending: int
    failed: int
    rollout_state: str
    latest_event: str

    @classmethod
    def of(cls, deployment: Deployment) -> Snapshot:
        event: str | None = getattr(deployment, "latest_event", None)
        return cls(
            label=deployment.release.label,
            status=deployment.status,
            running=deployment.running_count,
            desired=deployment.desired_count,
            pending=deployment.pending_count,
            failed=deployment.failed_count,
            rollout_state=deployment.rollout_state,
            latest_event=" ".join((event or "").split()),
        )

    def line(self) -> str:
        tasks = f"{self.running}/{self.desired} new running, {self.pending} pending"
        if self.failed:
            tasks += f", {self.failed} failed"
        parts = [f"{self.label} {self.status}", tasks, self.rollout_state, self.latest_event]
        return "  ".join(part for part in parts if part)


def outcome_line(deployment: Deployment) -> str:
    release = deployment.release
    if deployment.status == Deployment.Status.SUCCEEDED:
        return (
            f"{release.label} succeeded: {deployment.running_count}/{deployment.desired_count} "
            f"tasks of {release.image} running."
        )
    ended = deployment.get_status_display().lower()
    reason = deployment.rollout_state_reason or "no reason was given."
    return f"{release.label} {ended}: {reason}"


def wait(
    out: OutputWrapper,
    deployment_id: int,
    *,
    timeout: float | None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Print progress until the rollout ends. Returns if it succeeded; raises CommandError with
    exit code 1 if it ended otherwise or `timeout` seconds passed first."""
    try:
        _follow(out, deployment_id, timeout, clock, sleep)
    except KeyboardInterrupt:
        raise CommandError(
            f"Stopped waiting; deployment {deployment_id} goes on.", returncode=EXIT_FAILED
        ) from None


def _follow(
    out: OutputWrapper,
    deployment_id: int,
    timeout: float | None,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> None:
    began = clock()
    shown: Snapshot | None = None
    hinted = False
    while True:
        deployment = selectors.deployment_progress(deployment_id)
        snapshot = Snapshot.of(deployment)
        if snapshot != shown:
            out.write(snapshot.line())
            shown = snapshot
        if not deployment.is_active:
            out.write(outcome_line(deployment))
            if deployment.status == Deployment.Status.SUCCEEDED:
                return
            raise CommandError(
                f"Deployment {deployment.pk} ({snapshot.label}) "
                f"{deployment.get_status_display().lower()}.",
                returncode=EXIT_FAILED,
            )
        waited = clock() - began
        queued = deployment.status == Deployment.Status.QUEUED
        if queued and not hinted and waited >= QUEUED_HINT_SECONDS:
            out.write(
                f"Still queued after {waited:.0f} s: is a worker running "
                "(manage.py rqworker, with manage.py rqcron deployments.cron for the tick)?"
            )
            hinted = True
        if timeout is not None and waited >= timeout:
            raise CommandError(
                f"Gave up waiting after {timeout:g} s: deployment {deployment.pk} "
                f"({snapshot.label}) is still {deployment.status}. It goes on; follow it in the "
                f"dashboard or at GET /api/v1/deployments/{deployment.pk}.",
                returncode=EXIT_FAILED,
            )
        sleep(POLL_SECONDS if timeout is None else min(POLL_SECONDS, timeout - waited))

"""manage.py deploy and manage.py rollback: refusals exit 2, and --wait follows the rollout that
the worker and the tick carry out (here: the test thread, in process) to exit 0 or 1."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
import redis
from django.core.management import CommandError, call_command
from django.core.management.base import OutputWrapper
from django.db import connection
from django.utils import timezone

from deployments import selectors
from deployments.management import progress
from deployments.models import App, AuditEntry, Cluster, Deployment, Job, Release, Team
from deployments.sandbox.server import Sandbox
from deployments.services import app_create, cluster_create, deployment_start
from tests import factories
from tests.conftest import BASE_DIR, database_url, wait_for_in_process
from tests.test_deploys import follow


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def refused(*args: str) -> str:
    """The message of a command that must exit 2."""
    with pytest.raises(CommandError) as refusal:
        run(*args)
    assert refusal.value.returncode == 2, refusal.value
    return str(refusal.value)


def counts() -> tuple[int, ...]:
    return tuple(m.objects.count() for m in (Release, Deployment, Job, AuditEntry))


# Without AWS: what the commands refuse, print and record


@pytest.fixture
def app(team: Team) -> App:
    cluster = factories.make_cluster(factories.make_account(team), status=Cluster.Status.READY)
    return factories.make_app(cluster, name="web")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("deploy", "acme/api", "nginx:1.27"), "There is no app 'api' in a team 'acme'."),
        (("deploy", "globex/web", "nginx:1.27"), "There is no app 'web' in a team 'globex'."),
        (("deploy", "web", "nginx:1.27"), "Name the app as <team>/<app>, e.g. acme/web"),
        (("deploy", "acme/web", "not an image!"), "'not an image!' is not an image reference"),
        (("deploy", "acme/web", "nginx:1.27", "--wait", "--timeout", "0"),
         "--timeout must be a positive number of seconds"),
        (("rollback", "acme/web", "v7"), "web has no release v7."),
        (("rollback", "acme/web", "seven"), "Name the release as v<number>, e.g. v3"),
        (("rollback", "acme/web", "v0"), "Name the release as v<number>"),
        (("rollback", "nope/web", "v1"), "There is no app 'web' in a team 'nope'."),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_a_message_and_writes_nothing(
    app: App, other_team: Team, args: tuple[str, ...], message: str
) -> None:
    before = counts()

    assert message in refused(*args)
    assert counts() == before


@pytest.mark.django_db
def test_a_deploy_while_one_is_in_flight_exits_2_naming_it(app: App) -> None:
    factories.make_deployment(factories.make_release(app), status="in_progress")
    before = counts()

    message = refused("deploy", "acme/web", "nginx:1.28")

    assert message == (
        "v1 is still rolling out to web (rolling out); wait for it or cancel it first."
    )
    assert counts() == before


@pytest.mark.django_db
def test_a_rollback_to_the_live_release_exits_2(app: App) -> None:
    release = factories.make_release(app)
    factories.make_deployment(release, status="succeeded", finished_at=timezone.now())

    assert refused("rollback", "acme/web", "v1") == "v1 is what web runs already."


@pytest.mark.django_db
def test_deploy_prints_the_release_and_deployment_and_returns(app: App) -> None:
    output = run("deploy", "acme/web", "nginx:1.27", "--description", "First")

    deployment = Deployment.objects.get()
    assert output == (f"acme/web v1: nginx:1.27 — First; deployment {deployment.pk} is queued.\n")
    assert (deployment.release.description, deployment.started_by) == ("First", None)
    assert Job.objects.get(kind="run_deployment").target == deployment
    entry = AuditEntry.objects.get(action="app.deploy")
    assert (entry.actor, entry.ip_address) == (None, None)


@pytest.mark.django_db
def test_rollback_prints_the_new_release(app: App) -> None:
    factories.make_release(app, image="nginx:1.27")
    release = factories.make_release(app, image="nginx:1.28")
    factories.make_deployment(release, status="succeeded", finished_at=timezone.now())

    output = run("rollback", "acme/web", "v1")

    deployment = Deployment.objects.get(status="queued")
    assert output == (
        f"acme/web v3: nginx:1.27 — Rollback to v1; deployment {deployment.pk} is queued.\n"
    )


@pytest.mark.django_db
def test_waiting_gives_up_at_the_timeout_with_exit_1(app: App) -> None:
    with pytest.raises(CommandError) as gave_up:
        run("deploy", "acme/web", "nginx:1.27", "--wait", "--timeout", "0.3")

    assert gave_up.value.returncode == 1
    assert "Gave up waiting after 0.3 s" in str(gave_up.value)
    assert "is still queued. It goes on" in str(gave_up.value)
    assert Deployment.objects.get().status == Deployment.Status.QUEUED


def scripted(deployment: Deployment, steps: list[dict[str, Any]]) -> Callable[[float], None]:
    """A `sleep` that, instead of sleeping, moves the deployment on to the next state."""
    remaining = iter(steps)

    def sleep(seconds: float) -> None:
        step = next(remaining)
        if "event" in step:
            factories.make_event(deployment, message=step.pop("event"))
        Deployment.objects.filter(pk=deployment.pk).update(**step)

    return sleep


@pytest.mark.django_db
def test_a_line_is_printed_whenever_the_rollout_changes(app: App) -> None:
    deployment = deployment_start(app=app, actor=None, image="nginx:1.27")
    out = StringIO()
    steps: list[dict[str, Any]] = [
        {"status": "registering"},
        {},  # nothing new: no line
        {"status": "updating"},
        {"status": "in_progress", "rollout_state": "IN_PROGRESS", "pending_count": 2,
         "event": "(service web) has started 2 tasks: (task 1) (task 2)."},
        {"running_count": 1, "pending_count": 1},
        {},
        {"status": "succeeded", "running_count": 2, "pending_count": 0,
         "rollout_state": "COMPLETED", "event": "(service web) has reached a steady state."},
    ]  # fmt: skip

    progress.wait(OutputWrapper(out), deployment.pk, timeout=None,
                  sleep=scripted(deployment, steps))  # fmt: skip

    assert out.getvalue().splitlines() == [
        "v1 queued  0/2 new running, 0 pending",
        "v1 registering  0/2 new running, 0 pending",
        "v1 updating  0/2 new running, 0 pending",
        "v1 in_progress  0/2 new running, 2 pending  IN_PROGRESS  (service web) has started 2 "
        "tasks: (task 1) (task 2).",
        "v1 in_progress  1/2 new running, 1 pending  IN_PROGRESS  (service web) has started 2 "
        "tasks: (task 1) (task 2).",
        "v1 succeeded  2/2 new running, 0 pending  COMPLETED  (service web) has reached a steady "
        "state.",
        "v1 succeeded: 2/2 tasks of nginx:1.27 running.",
    ]


@pytest.mark.django_db
def test_a_rollout_that_did_not_succeed_exits_1_saying_how_it_ended(app: App) -> None:
    deployment = deployment_start(app=app, actor=None, image="nginx:1.27")
    out = StringIO()
    reason = "No progress for 15 min: 0 of 2 new tasks running."
    steps: list[dict[str, Any]] = [
        {"status": "timed_out", "failed_count": 3, "rollout_state_reason": reason}
    ]

    with pytest.raises(CommandError) as ended:
        progress.wait(OutputWrapper(out), deployment.pk, timeout=None,
                      sleep=scripted(deployment, steps))  # fmt: skip

    assert ended.value.returncode == 1
    assert str(ended.value) == f"Deployment {deployment.pk} (v1) timed out."
    assert out.getvalue().splitlines()[-2:] == [
        "v1 timed_out  0/2 new running, 0 pending, 3 failed",
        "v1 timed out: No progress for 15 min: 0 of 2 new tasks running.",
    ]


@pytest.mark.django_db
def test_the_latest_event_shown_is_ecs_news_from_this_rollout(app: App) -> None:
    """ECS stamps events with its own clock: one may predate our own step that is recorded
    after it; events from before the rollout started are the previous rollout's."""
    now = timezone.now()
    deployment = factories.make_deployment(factories.make_release(app), status="in_progress",
                                           started_at=now - timedelta(seconds=10))  # fmt: skip
    factories.make_event(deployment, source="ecs", message="(service web) old news",
                         created_at=now - timedelta(seconds=12))  # fmt: skip
    factories.make_event(deployment, message="Registered task definition x:2",
                         created_at=now - timedelta(seconds=9))  # fmt: skip
    assert selectors.deployment_progress(deployment.pk).latest_event == (  # type: ignore[attr-defined]
        "Registered task definition x:2"
    )
    factories.make_event(deployment, source="ecs", message="(service web) has started 2 tasks",
                         created_at=now - timedelta(seconds=2))  # fmt: skip
    factories.make_event(deployment, message="Started ECS deployment ecs-svc/1",
                         created_at=now - timedelta(seconds=1))  # fmt: skip

    shown = selectors.deployment_progress(deployment.pk)

    assert shown.latest_event == "(service web) has started 2 tasks"  # type: ignore[attr-defined]


@pytest.mark.django_db(transaction=True)
def test_from_the_shell_a_refusal_is_one_line_on_stderr_and_exit_2(team: Team) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "deploy", "acme/nope", "nginx:1.27", "--wait"],
        cwd=BASE_DIR,
        env={**os.environ, "DEBUG": "1", "DATABASE_URL": database_url()},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert result.stderr == "CommandError: There is no app 'nope' in a team 'acme'.\n"
    assert result.stdout == ""


# On the sandbox: --wait while the rollout really happens


class InBackground:
    """A management command run in a thread, as a person's terminal would, while the test thread
    does the worker's and the tick's work."""

    def __init__(self, *args: str) -> None:
        self.out = StringIO()
        self.error: CommandError | None = None
        self.crash: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=args, daemon=True)
        self.thread.start()

    def _run(self, *args: str) -> None:
        try:
            call_command(*args, stdout=self.out)
        except CommandError as error:
            self.error = error
        except BaseException as error:
            self.crash = error
        finally:
            connection.close()

    def result(self) -> tuple[int, list[str]]:
        """The exit code and the lines printed."""
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()
        if self.crash is not None:
            raise self.crash
        return (self.error.returncode if self.error else 0), self.out.getvalue().splitlines()


def work_on_the_next_deployment(app: App, after: int = 0) -> Deployment:
    """Wait for the command to start a rollout, then run it to its end in this thread."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        deployment = app.deployments.filter(pk__gt=after).first()
        if deployment is not None:
            return follow(deployment)
        time.sleep(0.05)
    raise AssertionError("the command started no rollout")


@pytest.fixture
def fast_polling(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(progress, "POLL_SECONDS", 0.1)
    yield


@pytest.fixture
def sandbox_app(team: Team, sandbox: Sandbox, rq_redis: redis.Redis, fast_polling: None) -> App:
    account = factories.connect_sandbox(
        factories.make_account(team, name="sandbox", region="us-east-1")
    )
    cluster = cluster_create(team=team, actor=None, account=account, name="main", max_instances=6)
    wait_for_in_process(cluster)
    return app_create(team=team, actor=None, cluster=cluster, name="web")


@pytest.mark.django_db(transaction=True)
def test_deploy_and_rollback_wait_until_they_succeed(sandbox_app: App) -> None:
    command = InBackground("deploy", "acme/web", "nginx:1.27", "--wait", "--timeout", "60")
    first = work_on_the_next_deployment(sandbox_app)

    code, lines = command.result()

    assert first.status == Deployment.Status.SUCCEEDED
    assert code == 0, lines
    assert lines[0] == f"acme/web v1: nginx:1.27; deployment {first.pk} is queued."
    assert any(line.startswith("v1 in_progress  ") for line in lines), lines
    assert any("has started 2 tasks" in line for line in lines), lines
    assert lines[-1] == "v1 succeeded: 2/2 tasks of nginx:1.27 running."

    second = follow(deployment_start(app=sandbox_app, actor=None, image="nginx:1.27-alpine"))
    command = InBackground("rollback", "acme/web", "v1", "--wait", "--timeout", "60")
    rollback = work_on_the_next_deployment(sandbox_app, after=second.pk)

    code, lines = command.result()

    assert code == 0, lines
    assert lines[0] == (
        f"acme/web v3: nginx:1.27 — Rollback to v1; deployment {rollback.pk} is queued."
    )
    assert lines[-1] == "v3 succeeded: 2/2 tasks of nginx:1.27 running."
    assert rollback.release.task_definition_arn == first.release.task_definition_arn


@pytest.mark.django_db(transaction=True)
def test_a_crashing_image_exits_1_rolled_back(sandbox_app: App) -> None:
    good = follow(deployment_start(app=sandbox_app, actor=None, image="nginx:1.27"))
    command = InBackground("deploy", "acme/web", "nginx:crashloop", "--wait", "--timeout", "60")
    bad = work_on_the_next_deployment(sandbox_app, after=good.pk)

    code, lines = command.result()

    assert bad.status == Deployment.Status.ROLLED_BACK
    assert code == 1, lines
    assert str(command.error) == f"Deployment {bad.pk} (v2) rolled back."
    assert lines[-1].startswith("v2 rolled back: ")
    assert "rolled back" in lines[-1].removeprefix("v2 rolled back: ")
    assert any(", 3 failed" in line or " failed  " in line for line in lines), lines

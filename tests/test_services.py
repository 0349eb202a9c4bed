from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from deployments import jobs, services
from deployments.models import (
    App,
    AuditEntry,
    AwsAccount,
    Job,
    Membership,
    ScalingSettings,
    Team,
)
from deployments.services import account_create, release_create
from tests import factories


@pytest.mark.django_db(transaction=True)
def test_release_versions_are_assigned_without_races(team: Team) -> None:
    app = factories.make_app(factories.make_cluster(factories.make_account(team)))
    errors: list[BaseException] = []

    def release() -> None:
        try:
            release_create(app=app, actor=None, image="nginx:1.27", config={})
        except BaseException as error:  # reported below, with the others
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=release) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(app.releases.values_list("version", flat=True)) == list(range(1, 9))


@pytest.mark.django_db
def test_connecting_an_account_audits_and_queues_a_verification(
    team: Team, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        account = account_create(
            team=team, actor=owner, name="prod", mode="sandbox", region="eu-west-1"
        )

    entry = AuditEntry.objects.get(team=team)
    assert (entry.actor, entry.action, entry.target_repr) == (owner, "account.connect", "acme/prod")
    job = Job.objects.get(kind="verify_account")
    assert (job.status, job.target, job.team) == (Job.Status.QUEUED, account, team)
    assert len(callbacks) == 1  # the enqueue waits for the commit


@pytest.mark.django_db
def test_demo_setup_is_idempotent(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("demo_setup", "--password", "correct-horse-battery")
    call_command("demo_setup")

    output = capsys.readouterr().out
    assert "correct-horse-battery" in output
    assert output.count("correct-horse-battery") == 1  # printed once, never again
    assert Team.objects.filter(slug="demo").count() == 1
    membership = Membership.objects.get(team__slug="demo", user__username="demo")
    assert membership.role == Membership.Role.OWNER
    assert membership.user.check_password("correct-horse-battery")
    account = AwsAccount.objects.get(team__slug="demo", name="sandbox")
    assert account.mode == AwsAccount.Mode.SANDBOX


@pytest.mark.django_db
def test_demo_setup_generates_a_random_password(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("demo_setup")

    password = capsys.readouterr().out.strip().rsplit(" ", 1)[-1]
    assert len(password) >= 12
    assert Membership.objects.get(user__username="demo").user.check_password(password)


@pytest.mark.parametrize(
    "change",
    [
        lambda app: services.deployment_start(app=app, actor=None, image="nginx:1.27"),
        lambda app: services.config_set(app=app, actor=None, config_vars={"A": "1"}),
        lambda app: services.secret_set(app=app, actor=None, name="TOKEN", value="s3cret"),
        lambda app: services.scaling_update(app=app, actor=None, desired_count=3),
        lambda app: services.app_update(app=app, actor=None, port=8080),
    ],
    ids=["deploy", "config", "secret", "scaling", "settings"],
)
def test_nothing_changes_an_app_whose_teardown_is_queued(
    team: Team, change: Callable[[App], object]
) -> None:
    cluster = factories.make_cluster(factories.make_account(team))
    app = factories.make_app(cluster, name="web")
    factories.make_job(team, app, kind="delete_app", status=Job.Status.QUEUED)
    before = (App.objects.values().get(pk=app.pk), ScalingSettings.objects.values().get(app=app))

    with pytest.raises(services.Conflict, match=r"^web is being deleted\.$"):
        change(app)

    after = (App.objects.values().get(pk=app.pk), ScalingSettings.objects.values().get(app=app))
    assert after == before
    assert not app.releases.exists() and not AuditEntry.objects.filter(team=team).exists()


@pytest.mark.django_db
def test_a_job_does_not_reach_a_sandbox_account_once_the_server_turns_the_sandbox_off(
    team: Team, settings: Any
) -> None:
    account = factories.make_account(team, name="play")
    job = services.account_verify(account=account, actor=None)
    settings.TINYSTACKS_ALLOW_SANDBOX = False

    jobs.run_job(job.pk)

    job.refresh_from_db()
    account.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "the local sandbox is turned off on this server" in account.verification_error
    assert account.verified_at is None


@pytest.mark.django_db
def test_demo_setup_says_the_demo_needs_the_sandbox(settings: Any) -> None:
    settings.TINYSTACKS_ALLOW_SANDBOX = False

    with pytest.raises(CommandError, match="TINYSTACKS_ALLOW_SANDBOX"):
        call_command("demo_setup")

    assert not AwsAccount.objects.exists()

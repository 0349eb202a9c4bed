"""Secret config vars: encrypted at rest, keys rotated, handed to ECS only through SSM
SecureStrings. That they are never shown again is checked by planting one and searching for it
everywhere: tests/security/test_secret_never_leaks.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management import call_command

from deployments import encryption
from deployments.models import App, Deployment
from deployments.sandbox.server import Sandbox
from deployments.services import app_rollback, config_set, live_release, secret_set, secret_unset
from tests import factories
from tests.conftest import aws
from tests.test_deploys import deploy, follow
from tinystacks.env import fernet_keys

PLANTED = "s3cr3t-Planted-Value-9f8e7d"


def test_values_round_trip_and_keys_rotate(settings: Any) -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    settings.TINYSTACKS_SECRET_KEYS = [old]
    token = encryption.encrypt(PLANTED)
    assert PLANTED not in token

    settings.TINYSTACKS_SECRET_KEYS = [new, old]
    rotated = encryption.rotate(token)
    settings.TINYSTACKS_SECRET_KEYS = [new]

    assert encryption.decrypt(rotated) == PLANTED
    with pytest.raises(encryption.UnreadableSecret):
        encryption.decrypt(token)


def test_bad_keys_stop_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYSTACKS_SECRET_KEYS", "not-a-key")
    with pytest.raises(ImproperlyConfigured, match="TINYSTACKS_SECRET_KEYS"):
        fernet_keys("TINYSTACKS_SECRET_KEYS", secret_key="x")


@pytest.mark.django_db
def test_rotate_secrets_re_encrypts_apps_and_releases(
    settings: Any, team: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    settings.TINYSTACKS_SECRET_KEYS = [old]
    web = factories.make_app(factories.make_cluster(factories.make_account(team)))
    web.secrets = {"API_KEY": encryption.encrypt(PLANTED)}
    web.save()
    factories.make_release(web, config={"secrets": dict(web.secrets)})

    settings.TINYSTACKS_SECRET_KEYS = [new, old]
    call_command("rotate_secrets")
    settings.TINYSTACKS_SECRET_KEYS = [new]

    web.refresh_from_db()
    assert encryption.decrypt(web.secrets["API_KEY"]) == PLANTED
    release = web.releases.get()
    assert encryption.decrypt(release.config["secrets"]["API_KEY"]) == PLANTED
    assert "Re-encrypted 2 secret values" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_a_secret_reaches_ecs_only_through_ssm(app: App, sandbox: Sandbox) -> None:
    deploy(app, "nginx:1.27")

    deployment = follow(secret_set(app=app, actor=None, name="API_KEY", value=PLANTED))

    assert deployment.status == Deployment.Status.SUCCEEDED
    ecs, ssm = aws(sandbox, "ecs"), aws(sandbox, "ssm")
    container = ecs.describe_task_definition(taskDefinition=deployment.release.task_definition_arn)[
        "taskDefinition"
    ]["containerDefinitions"][0]
    assert PLANTED not in json.dumps(container)
    [secret] = container["secrets"]
    assert secret["name"] == "API_KEY"
    parameter = ssm.get_parameter(Name=secret["valueFrom"], WithDecryption=True)["Parameter"]
    assert (parameter["Type"], parameter["Value"]) == ("SecureString", PLANTED)


@pytest.mark.django_db(transaction=True)
def test_secret_names_follow_the_config_rules(app: App) -> None:
    deploy(app, "nginx:1.27")

    with pytest.raises(ValidationError):
        secret_set(app=app, actor=None, name="AWS_SECRET_ACCESS_KEY", value="x")
    with pytest.raises(ValidationError, match="no secret named"):
        secret_unset(app=app, actor=None, name="MISSING")
    follow(secret_set(app=app, actor=None, name="TOKEN", value="x"))
    with pytest.raises(ValidationError, match="already exist as secrets"):
        config_set(app=app, actor=None, config_vars={"TOKEN": "plain"})

    removed = follow(secret_unset(app=app, actor=None, name="TOKEN"))

    assert removed.status == Deployment.Status.SUCCEEDED
    assert removed.release.config["secrets"] == {}


RETRIEVAL_FAILED = (
    "Tasks stopped: ResourceInitializationError: unable to pull secrets or registry auth: "
    "execution resource retrieval failed: unable to retrieve secrets from ssm: service call has "
    "been retried 1 time(s): "
)


@pytest.mark.django_db(transaction=True)
def test_a_secret_under_another_teams_path_is_denied_and_the_rollout_says_why(
    app: App, sandbox: Sandbox
) -> None:
    good = deploy(app, "nginx:1.27")
    # An app row whose path points into another team's parameters (as a tampered or mis-migrated
    # row would): the cluster's execution role must not read them.
    App.objects.filter(pk=app.pk).update(aws_path="/tinystacks/other-team/web")
    app.refresh_from_db()

    bad = follow(secret_set(app=app, actor=None, name="API_KEY", value=PLANTED))

    assert bad.status == Deployment.Status.ROLLED_BACK
    reason = bad.rollout_state_reason
    assert reason.startswith("ECS deployment circuit breaker: tasks failed to start.")
    assert RETRIEVAL_FAILED in reason
    assert "api error AccessDeniedException: User: " in reason
    assert f":parameter/tinystacks/other-team/web/r{bad.release.pk}/API_KEY because" in reason
    assert any(m.startswith(RETRIEVAL_FAILED) for m in bad.events.values_list("message", flat=True))
    assert live_release(app) == good.release


@pytest.mark.django_db(transaction=True)
def test_a_rollback_to_a_release_whose_parameter_was_deleted_says_it_is_missing(
    app: App, sandbox: Sandbox
) -> None:
    deploy(app, "nginx:1.27")
    with_secret = follow(secret_set(app=app, actor=None, name="API_KEY", value=PLANTED))
    follow(config_set(app=app, actor=None, config_vars={"MODE": "new"}))
    parameter = f"{app.aws_path}/r{with_secret.release.pk}/API_KEY"
    aws(sandbox, "ssm").delete_parameter(Name=parameter)

    rollback = follow(app_rollback(app=app, actor=None, version=with_secret.release.version))

    assert rollback.status == Deployment.Status.ROLLED_BACK
    assert rollback.rollout_state_reason.endswith(
        f"{RETRIEVAL_FAILED}invalid ssm parameters: {parameter}"
    )

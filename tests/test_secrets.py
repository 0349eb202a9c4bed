"""Secret config vars: encrypted at rest, handed to ECS only through SSM SecureStrings, never
shown again — checked by planting one and searching for it everywhere."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import User
from django.core import serializers
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from deployments import encryption
from deployments.models import App, AuditEntry, Deployment, DeploymentEvent, Job, Release
from deployments.sandbox.server import Sandbox
from deployments.services import config_set, secret_set, secret_unset
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
def test_a_secret_reaches_ecs_only_through_ssm_and_is_never_shown(
    app: App, sandbox: Sandbox, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
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

    stored = [
        serializers.serialize("json", model.objects.all())
        for model in (App, Release, Deployment, DeploymentEvent, Job, AuditEntry)
    ]
    assert not any(PLANTED in text for text in stored)
    client.force_login(User.objects.create_superuser("support", "s@example.com", "pw"))
    pages = [
        reverse("admin:deployments_app_change", args=[app.pk]),
        reverse("admin:deployments_release_change", args=[deployment.release.pk]),
        reverse("admin:deployments_release_changelist"),
        reverse("admin:deployments_auditentry_changelist"),
        reverse("admin:deployments_job_changelist"),
        reverse("admin:deployments_deploymentevent_changelist"),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200
        assert PLANTED not in response.text, url
    assert "API_KEY" in client.get(pages[1]).text  # its name is shown
    assert not any(PLANTED in record.getMessage() for record in caplog.records)


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

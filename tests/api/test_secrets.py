"""/api/v1/apps/{name}/secrets/{secret_name}: set, replace and remove secrets over the API; what
each request records and queues, what it refuses, and that no answer ever holds a value."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from deployments import encryption
from deployments.models import App, AuditEntry, Cluster, Deployment, Job, Release
from tests import factories
from tests.api.conftest import NO_BODY, Api, row_counts

pytestmark = pytest.mark.django_db

VALUE = "hunter2-Api-Planted-5c1d"
URL = "/apps/web/secrets/{}"


@pytest.fixture
def app(cluster: Cluster) -> App:
    return factories.make_app(cluster, name="web", config_vars={"GREETING": "hi"})


@pytest.fixture
def live(app: App) -> Deployment:
    """v1 of nginx:1.27, rolled out."""
    release = factories.make_release(app, image="nginx:1.27", config={"env": {"GREETING": "hi"}})
    return factories.make_deployment(release, finished_at=timezone.now())


def stored(app: App) -> dict[str, str]:
    """The app's secrets, decrypted."""
    app.refresh_from_db()
    return {name: encryption.decrypt(token) for name, token in app.secrets.items()}


def settle() -> None:
    """Let the queued rollout end, as the tracker would, so another change may start."""
    queued = Deployment.objects.filter(status="queued")
    queued.update(status="succeeded", finished_at=timezone.now())


def test_setting_a_secret_releases_the_live_image_with_it(
    api: Api, live: Deployment, app: App, deployer_token: str
) -> None:
    response = api("PUT", URL.format("API_KEY"), deployer_token, {"value": VALUE})

    assert response.status_code == 202, response.content
    body = response.json()
    deployment = Deployment.objects.get(status="queued")
    assert response["Location"] == f"/api/v1/deployments/{deployment.pk}"
    assert (body["release"]["version"], body["release"]["kind"]) == (2, "config")
    assert body["release"]["image"] == "nginx:1.27"
    assert body["release"]["description"] == "Secret set: API_KEY"
    assert body["deployment"]["status"] == "queued"
    assert VALUE not in response.content.decode()
    assert stored(app) == {"API_KEY": VALUE}
    assert deployment.release.config["secrets"] == app.secrets  # encrypted, for the job
    assert deployment.release.config["env"] == {"GREETING": "hi"}
    assert Job.objects.get(kind="run_deployment").target == deployment
    entry = AuditEntry.objects.get(action="app.secret")
    assert entry.ip_address == "127.0.0.1" and VALUE not in str(entry.details)
    assert entry.details == {
        "release": "v2", "image": "nginx:1.27", "deployment": deployment.pk,
        "secret": "API_KEY", "change": "set",
    }  # fmt: skip


def test_the_app_lists_secret_names_never_values(
    api: Api, live: Deployment, viewer_token: str, deployer_token: str
) -> None:
    api("PUT", URL.format("API_KEY"), deployer_token, {"value": VALUE})
    settle()
    api("PUT", URL.format("DB_PASSWORD"), deployer_token, {"value": VALUE + "-db"})

    shown = api("GET", "/apps/web", viewer_token)
    listed = api("GET", "/apps", viewer_token)

    assert shown.json()["secret_names"] == ["API_KEY", "DB_PASSWORD"]
    assert shown.json()["config_var_names"] == ["GREETING"]
    assert listed.json()[0]["secret_names"] == ["API_KEY", "DB_PASSWORD"]
    for response in (shown, listed):
        assert VALUE not in response.content.decode()


def test_setting_it_again_replaces_the_value(
    api: Api, live: Deployment, app: App, owner_token: str
) -> None:
    api("PUT", URL.format("API_KEY"), owner_token, {"value": "first"})
    settle()

    response = api("PUT", URL.format("API_KEY"), owner_token, {"value": VALUE})

    assert response.status_code == 202
    assert response.json()["release"]["version"] == 3
    assert stored(app) == {"API_KEY": VALUE}


def test_removing_a_secret_releases_the_app_without_it(
    api: Api, live: Deployment, app: App, deployer_token: str
) -> None:
    api("PUT", URL.format("API_KEY"), deployer_token, {"value": VALUE})
    settle()

    response = api("DELETE", URL.format("API_KEY"), deployer_token)

    assert response.status_code == 202, response.content
    release = response.json()["release"]
    assert (release["version"], release["description"]) == (3, "Secret removed: API_KEY")
    assert stored(app) == {}
    assert Release.objects.get(version=3).config["secrets"] == {}
    assert api("GET", "/apps/web", deployer_token).json()["secret_names"] == []


@pytest.mark.parametrize(
    ("name", "body", "field", "message"),
    [
        ("1BAD", {"value": VALUE}, "name", "'1BAD' is not a valid variable name"),
        ("A%20B", {"value": VALUE}, "name", "'A B' is not a valid variable name"),
        ("%3Cscript%3E", {"value": VALUE}, "name", "'<script>' is not a valid variable name"),
        ("AWS_SECRET", {"value": VALUE}, "name", "prefix reserved by AWS and ECS"),
        ("A" * 256, {"value": VALUE}, "name", "at most 255 characters"),
        ("API_KEY", {"value": ""}, "value", "Enter a value for API_KEY"),
        ("API_KEY", {"value": "x" * 4097}, "value", "4097 bytes; at most 4096"),
        ("API_KEY", {"value": "é" * 2049}, "value", "4098 bytes; at most 4096"),
        ("API_KEY", {"value": "a\u0000b"}, "value", "Null characters are not allowed."),
        ("API_KEY", {"value": 42}, "value", "Expected a string, got an integer."),
        ("API_KEY", {}, "value", "This field is required."),
        ("API_KEY", {"value": VALUE, "name": "B"}, "name", "Unknown field."),
    ],
)  # fmt: skip
def test_bad_secrets_are_400_write_nothing_and_never_echo_the_value(
    api: Api, live: Deployment, app: App, deployer_token: str, name: str, body: Any, field: str,
    message: str,
) -> None:  # fmt: skip
    before = row_counts()

    response = api("PUT", URL.format(name), deployer_token, body)

    assert response.status_code == 400
    assert message in " ".join(response.json()["fields"][field]), response.json()
    assert VALUE not in response.content.decode()
    assert row_counts() == before
    assert stored(app) == {}


def test_a_plain_config_var_of_that_name_is_400(
    api: Api, live: Deployment, app: App, deployer_token: str
) -> None:
    before = row_counts()

    response = api("PUT", URL.format("GREETING"), deployer_token, {"value": VALUE})

    assert response.status_code == 400
    message = "GREETING is a plain config var; remove it first."
    assert response.json()["fields"] == {"name": [message]}
    assert VALUE not in response.content.decode()
    assert row_counts() == before


def test_a_config_var_may_not_take_a_secrets_name(
    api: Api, live: Deployment, app: App, deployer_token: str
) -> None:
    api("PUT", URL.format("API_KEY"), deployer_token, {"value": VALUE})
    settle()

    response = api("PUT", "/apps/web/config", deployer_token, {"config_vars": {"API_KEY": "x"}})

    assert response.status_code == 400
    assert "API_KEY already exist as secrets" in response.json()["fields"]["config_vars"][0]


def test_removing_an_unknown_secret_is_400(api: Api, live: Deployment, deployer_token: str) -> None:
    before = row_counts()

    response = api("DELETE", URL.format("MISSING"), deployer_token)

    assert response.status_code == 400
    assert response.json()["fields"] == {"name": ["web has no secret named MISSING."]}
    assert row_counts() == before


@pytest.mark.parametrize(("method", "body"), [("PUT", {"value": VALUE}), ("DELETE", NO_BODY)])
def test_secrets_before_the_first_deploy_are_409(
    api: Api, app: App, deployer_token: str, method: str, body: Any
) -> None:
    before = row_counts()

    response = api(method, URL.format("API_KEY"), deployer_token, body)

    assert response.status_code == 409
    assert response.json() == {"error": "Deploy web once before changing its config."}
    assert row_counts() == before
    assert stored(app) == {}


def test_a_secret_while_a_rollout_is_in_flight_is_409(
    api: Api, live: Deployment, app: App, deployer_token: str
) -> None:
    factories.make_deployment(factories.make_release(app), status="in_progress")

    response = api("PUT", URL.format("API_KEY"), deployer_token, {"value": VALUE})

    assert response.status_code == 409
    assert "still rolling out to web" in response.json()["error"]
    assert stored(app) == {}


@pytest.mark.parametrize(("method", "body"), [("PUT", {"value": VALUE}), ("DELETE", NO_BODY)])
def test_viewers_may_not_change_secrets(
    api: Api, live: Deployment, app: App, viewer_token: str, method: str, body: Any
) -> None:
    app.secrets = {"API_KEY": encryption.encrypt("kept")}
    app.save()
    before = row_counts()

    response = api(method, URL.format("API_KEY"), viewer_token, body)

    assert response.status_code == 403
    assert row_counts() == before
    assert stored(app) == {"API_KEY": "kept"}


@pytest.mark.parametrize(("method", "body"), [("PUT", {"value": VALUE}), ("DELETE", NO_BODY)])
def test_another_teams_app_is_404(
    api: Api, live: Deployment, app: App, outsider_token: str, method: str, body: Any
) -> None:
    app.secrets = {"API_KEY": encryption.encrypt("kept")}
    app.save()
    before = row_counts()

    response = api(method, URL.format("API_KEY"), outsider_token, body)

    assert response.status_code == 404
    assert response.json() == {"error": "This team has no app named web."}
    assert row_counts() == before
    assert stored(app) == {"API_KEY": "kept"}


def test_only_put_and_delete_are_allowed(api: Api, live: Deployment, deployer_token: str) -> None:
    response = api("GET", URL.format("API_KEY"), deployer_token)

    assert response.status_code == 405
    assert response["Allow"] == "PUT, DELETE"

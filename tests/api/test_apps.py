"""/api/v1/apps: list, create, show, change settings (PATCH) and tear down; who may do what."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.forms.models import model_to_dict
from django.utils import timezone

from deployments.models import App, AuditEntry, Cluster, Deployment, Job, ScalingSettings, Team
from tests import factories
from tests.api.conftest import NO_BODY, Api, row_counts

pytestmark = pytest.mark.django_db

APP_FIELDS = {
    "name", "cluster", "port", "health_check_path", "cpu", "memory", "command", "desired_count",
    "min_healthy_percent", "max_percent", "circuit_breaker", "rollout_timeout_seconds",
    "config_var_names", "secret_names", "scaling", "live_release", "active_deployment",
    "service_arn", "created_at", "updated_at",
}  # fmt: skip
SECRET = "s3cr3t-value-never-shown"


@pytest.fixture
def app(cluster: Cluster) -> App:
    return factories.make_app(cluster, name="web", config_vars={"SECRET_KEY": SECRET, "DEBUG": "0"})


def succeeded(app: App, ago: int = 0, **fields: Any) -> Deployment:
    """A finished, successful rollout of a new release of `app`."""
    release = factories.make_release(app, **fields)
    finished = timezone.now() - timedelta(minutes=ago)
    return factories.make_deployment(release, status="succeeded", finished_at=finished)


def test_lists_the_teams_apps_with_live_release_and_rollout_in_flight(
    api: Api, app: App, cluster: Cluster, other_team: Team, viewer_token: str
) -> None:
    succeeded(app, ago=10)
    succeeded(app, ago=5)
    in_flight = factories.make_deployment(factories.make_release(app), status="in_progress")
    factories.make_app(cluster, name="api")
    factories.make_app(factories.make_cluster(factories.make_account(other_team)), name="theirs")

    response = api("GET", "/apps", viewer_token)

    assert response.status_code == 200
    apps = response.json()
    assert [a["name"] for a in apps] == ["api", "web"]
    assert set(apps[1]) == APP_FIELDS
    assert (apps[1]["live_release"], apps[1]["active_deployment"]) == (2, in_flight.pk)
    assert (apps[0]["live_release"], apps[0]["active_deployment"]) == (None, None)
    assert SECRET.encode() not in response.content


def test_showing_an_app(api: Api, app: App, viewer_token: str) -> None:
    response = api("GET", "/apps/web", viewer_token)

    assert response.status_code == 200
    body = response.json()
    assert body | {"created_at": None, "updated_at": None} == {
        "name": "web",
        "cluster": "main",
        "port": 80,
        "health_check_path": "",
        "cpu": 256,
        "memory": 512,
        "command": "",
        "desired_count": 2,
        "min_healthy_percent": 100,
        "max_percent": 200,
        "circuit_breaker": True,
        "rollout_timeout_seconds": 900,
        "config_var_names": ["DEBUG", "SECRET_KEY"],
        "secret_names": [],
        "scaling": {"autoscaling": True, "min_tasks": 2, "max_tasks": 5, "cpu_target": 75,
                    "desired_count": 2, "applied_at": None},
        "live_release": None,
        "active_deployment": None,
        "service_arn": "",
        "created_at": None,
        "updated_at": None,
    }  # fmt: skip
    assert SECRET not in response.content.decode()


def test_the_live_release_is_that_of_the_latest_successful_rollout(
    api: Api, app: App, viewer_token: str
) -> None:
    succeeded(app, ago=10)
    failed = factories.make_release(app)
    factories.make_deployment(failed, status="rolled_back", finished_at=timezone.now())

    assert api("GET", "/apps/web", viewer_token).json()["live_release"] == 1


def test_creating_an_app(api: Api, team: Team, cluster: Cluster, deployer_token: str) -> None:
    response = api(
        "POST",
        "/apps",
        deployer_token,
        {"name": "shop", "cluster": "main", "port": 8000, "health_check_path": "/healthz",
         "cpu": 512, "memory": 1024, "command": "gunicorn shop.wsgi", "desired_count": 3,
         "min_healthy_percent": 50, "max_percent": 150, "circuit_breaker": False,
         "rollout_timeout_seconds": 600, "config_vars": {"DATABASE_URL": "postgres://db/x"}},
    )  # fmt: skip

    assert response.status_code == 201
    assert response["Location"] == "/api/v1/apps/shop"
    body = response.json()
    assert set(body) == APP_FIELDS
    assert body["config_var_names"] == ["DATABASE_URL"]
    assert "postgres://" not in response.content.decode()
    app = App.objects.get(team=team, name="shop")
    assert (app.cluster, app.port, app.cpu, app.memory, app.circuit_breaker) == (
        cluster, 8000, 512, 1024, False,
    )  # fmt: skip
    assert app.config_vars == {"DATABASE_URL": "postgres://db/x"}
    assert ScalingSettings.objects.filter(app=app).exists()
    entry = AuditEntry.objects.get(action="app.create")
    assert (entry.actor, entry.target_repr, entry.ip_address) == (None, "acme/shop", "127.0.0.1")


def test_any_task_size_that_fits_the_instance_is_accepted(
    api: Api, cluster: Cluster, deployer_token: str
) -> None:
    body = {"name": "shop", "cluster": "main", "cpu": 128, "memory": 256}

    response = api("POST", "/apps", deployer_token, body)

    assert response.status_code == 201, response.json()
    assert (response.json()["cpu"], response.json()["memory"]) == (128, 256)


def test_defaults_apply_to_fields_left_out(api: Api, cluster: Cluster, deployer_token: str) -> None:
    response = api("POST", "/apps", deployer_token, {"name": "shop", "cluster": "main"})

    assert response.status_code == 201
    body = response.json()
    assert (body["port"], body["cpu"], body["memory"], body["desired_count"]) == (80, 256, 512, 2)
    assert (body["live_release"], body["config_var_names"]) == (None, [])


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"cpu": 64}, "cpu", "CPU must be between 128 and 196608 units"),
        ({"memory": 4}, "memory", "Memory must be at least 6 MiB"),
        ({"cpu": 2048, "memory": 8192}, "memory", "offers at most 3635 MiB to tasks"),
        ({"cpu": 4096, "memory": 2048}, "cpu", "offers at most 2048 CPU units to tasks"),
        ({"config_vars": {"AWS_REGION": "x"}}, "config_vars", "prefix reserved by AWS and ECS"),
        ({"config_vars": {"ecs_x": "x"}}, "config_vars", "prefix reserved by AWS and ECS"),
        ({"config_vars": {"1A": "x"}}, "config_vars", "'1A' is not a valid variable name"),
        ({"config_vars": {"A-B": "x"}}, "config_vars", "'A-B' is not a valid variable name"),
        ({"config_vars": {"A": 1}}, "config_vars", "The value of A must be text."),
        ({"config_vars": {"A": "x\u0000"}}, "config_vars", "Null characters are not allowed."),
        ({"config_vars": ["A=1"]}, "config_vars", "Expected an object, got an array."),
        ({"desired_count": 5001}, "desired_count", "less than or equal to 5000"),
        ({"desired_count": -1}, "desired_count", "greater than or equal to 0"),
        ({"min_healthy_percent": 101}, "min_healthy_percent", "less than or equal to 100"),
        ({"max_percent": 99}, "max_percent", "greater than or equal to 100"),
        ({"port": 0}, "port", "greater than or equal to 1"),
        ({"port": 70000}, "port", "less than or equal to 65535"),
        ({"port": "80"}, "port", "Expected an integer, got a string."),
        ({"health_check_path": "health"}, "health_check_path", "starting with /"),
        ({"rollout_timeout_seconds": 10}, "rollout_timeout_seconds", "greater than or equal"),
        ({"circuit_breaker": "yes"}, "circuit_breaker", "Expected a boolean, got a string."),
        ({"circuit_breaker": 1}, "circuit_breaker", "Expected a boolean, got an integer."),
        ({"cluster": "nope"}, "cluster", "This team has no cluster named nope."),
        ({"cluster": "theirs"}, "cluster", "This team has no cluster named theirs."),
        ({"name": "Web!"}, "name", "lowercase letters"),
        ({"live_release": 3}, "live_release", "read-only"),
        ({"scaling": {}}, "scaling", "PUT /apps/{name}/scaling"),
        ({"image": "nginx"}, "image", "Unknown field."),
    ],
)  # fmt: skip
def test_invalid_apps_are_400_by_field_and_write_nothing(
    api: Api,
    cluster: Cluster,
    other_team: Team,
    deployer_token: str,
    body: dict[str, Any],
    field: str,
    message: str,
) -> None:
    factories.make_cluster(factories.make_account(other_team), name="theirs")
    before = row_counts()

    response = api("POST", "/apps", deployer_token, {"name": "shop", "cluster": "main"} | body)

    assert response.status_code == 400, response.content
    errors = response.json()
    assert message in " ".join(errors["fields"][field]), errors
    assert errors["error"]
    assert row_counts() == before


def test_a_task_that_fits_a_larger_instance_type_is_accepted_there(
    api: Api, cluster: Cluster, deployer_token: str
) -> None:
    Cluster.objects.filter(pk=cluster.pk).update(instance_type="m6i.xlarge")

    response = api("POST", "/apps", deployer_token, {"name": "big", "cluster": "main",
                                                     "cpu": 2048, "memory": 8192})  # fmt: skip

    assert response.status_code == 201


def test_name_and_cluster_are_required(api: Api, deployer_token: str) -> None:
    response = api("POST", "/apps", deployer_token, {})

    assert response.status_code == 400
    assert response.json()["fields"] == {
        "name": ["This field is required."],
        "cluster": ["This field is required."],
    }


def test_an_app_on_a_cluster_being_deleted_is_refused(
    api: Api, cluster: Cluster, deployer_token: str
) -> None:
    Cluster.objects.filter(pk=cluster.pk).update(status=Cluster.Status.DELETING)

    response = api("POST", "/apps", deployer_token, {"name": "shop", "cluster": "main"})

    assert response.status_code == 400
    assert response.json()["fields"] == {"cluster": ["Cluster main is being deleted."]}


def test_a_duplicate_name_is_409(api: Api, app: App, deployer_token: str) -> None:
    before = row_counts()

    response = api("POST", "/apps", deployer_token, {"name": "web", "cluster": "main"})

    assert response.status_code == 409
    assert response.json() == {
        "error": "This team already has an app named web.",
        "fields": {"name": ["An app of this name already exists in this team."]},
    }
    assert row_counts() == before


def test_changing_settings(api: Api, app: App, deployer_token: str) -> None:
    response = api("PATCH", "/apps/web", deployer_token, {"cpu": 512, "memory": 2048, "port": 8080,
                                                          "circuit_breaker": False})  # fmt: skip

    assert response.status_code == 200
    body = response.json()
    assert (body["cpu"], body["memory"], body["port"], body["circuit_breaker"]) == (
        512, 2048, 8080, False,
    )  # fmt: skip
    app.refresh_from_db()
    assert (app.cpu, app.memory, app.port, app.circuit_breaker) == (512, 2048, 8080, False)
    entry = AuditEntry.objects.get(action="app.update")
    assert entry.details["after"] == {"cpu": 512, "memory": 2048, "port": 8080,
                                      "circuit_breaker": False}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"memory": 4096}, "memory", "does not fit on a t3.medium instance"),
        ({"cpu": 100}, "cpu", "CPU must be between 128 and 196608 units"),
        ({"max_percent": 401}, "max_percent", "less than or equal to 400"),
        ({"name": "shop"}, "name", "An app's name cannot be changed"),
        ({"cluster": "other"}, "cluster", "An app's cluster cannot be changed"),
        ({"desired_count": 3}, "desired_count", "PUT /apps/{name}/scaling"),
        ({"config_vars": {"A": "b"}}, "config_vars", "PUT /apps/{name}/config"),
        ({"secret_names": ["A"]}, "secret_names", "PUT /apps/{name}/secrets/{secret_name}"),
        ({"command": 5}, "command", "Expected a string, got an integer."),
        ({"colour": "blue"}, "colour", "Unknown field."),
    ],
)  # fmt: skip
def test_invalid_changes_are_400_and_change_nothing(
    api: Api, app: App, deployer_token: str, body: dict[str, Any], field: str, message: str
) -> None:
    before = model_to_dict(app)
    counts = row_counts()

    response = api("PATCH", "/apps/web", deployer_token, body)

    assert response.status_code == 400
    assert message in " ".join(response.json()["fields"][field])
    app.refresh_from_db()
    assert model_to_dict(app) == before
    assert row_counts() == counts


def test_an_empty_change_is_400(api: Api, app: App, deployer_token: str) -> None:
    response = api("PATCH", "/apps/web", deployer_token, {})

    assert response.status_code == 400
    assert response.json()["error"].startswith("Send at least one of: port, health_check_path")


def test_deleting_an_app_queues_its_teardown_once(api: Api, app: App, deployer_token: str) -> None:
    succeeded(app)

    response = api("DELETE", "/apps/web", deployer_token)

    assert response.status_code == 202
    job = Job.objects.get(kind="delete_app")
    assert response.json() == {
        "job": {"id": job.pk, "kind": "delete_app", "status": "queued", "error": "",
                "created_at": job.created_at.isoformat(), "finished_at": None},
    }  # fmt: skip
    assert job.target == app
    assert AuditEntry.objects.get(action="app.delete").ip_address == "127.0.0.1"
    # The row goes when the job has finished; until then the app is still there.
    assert api("GET", "/apps/web", deployer_token).status_code == 200

    again = api("DELETE", "/apps/web", deployer_token)
    assert again.status_code == 202
    assert again.json()["job"]["id"] == job.pk
    assert Job.objects.filter(kind="delete_app").count() == 1


def test_writes_to_an_app_being_deleted_are_409(api: Api, app: App, deployer_token: str) -> None:
    succeeded(app)
    api("DELETE", "/apps/web", deployer_token)
    before = row_counts()

    for method, path, body in [
        ("POST", "/apps/web/deploys", {"image": "nginx:1.28"}),
        ("PATCH", "/apps/web", {"port": 81}),
        ("PUT", "/apps/web/config", {"config_vars": {}}),
        ("PUT", "/apps/web/secrets/API_KEY", {"value": "k"}),
        ("DELETE", "/apps/web/secrets/API_KEY", NO_BODY),
        ("PUT", "/apps/web/scaling", {"autoscaling": False, "desired_count": 1}),
        ("POST", "/apps/web/rollback", {"version": 1}),
    ]:
        response = api(method, path, deployer_token, body)
        assert response.status_code == 409, (path, response.content)
        assert response.json() == {"error": "web is being deleted."}
    assert row_counts() == before


def test_deleting_an_app_while_it_rolls_out_is_409(api: Api, app: App, deployer_token: str) -> None:
    factories.make_deployment(factories.make_release(app), status="in_progress")
    before = row_counts()

    response = api("DELETE", "/apps/web", deployer_token)

    assert response.status_code == 409
    assert response.json() == {
        "error": "v1 is still rolling out to web (rolling out); wait for it or cancel it first."
    }
    assert row_counts() == before


def test_listing_takes_the_same_queries_for_more_apps(
    api: Api, cluster: Cluster, viewer_token: str, django_assert_max_num_queries: Any
) -> None:
    api("GET", "/apps", viewer_token)  # records the token's first use
    app = factories.make_app(cluster)
    succeeded(app)
    with django_assert_max_num_queries(2) as few:
        assert len(api("GET", "/apps", viewer_token).json()) == 1
    for _ in range(15):
        more = factories.make_app(cluster)
        succeeded(more)
        factories.make_deployment(factories.make_release(more), status="in_progress")
    with django_assert_max_num_queries(len(few)) as many:
        assert len(api("GET", "/apps", viewer_token).json()) == 16
    assert len(many) == len(few)

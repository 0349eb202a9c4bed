"""Deploys, releases, rollbacks, config vars, scaling and deployments over the API, without AWS:
what each request records and queues, and what it refuses. (test_rollouts.py runs them on the
sandbox.)"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.forms.models import model_to_dict
from django.utils import timezone

from deployments.models import (
    App,
    AuditEntry,
    Cluster,
    Deployment,
    Job,
    Release,
    ScalingSettings,
    Team,
)
from tests import factories
from tests.api.conftest import NO_BODY, Api, row_counts

pytestmark = pytest.mark.django_db

RELEASE_FIELDS = {
    "version", "image", "kind", "task_definition_arn", "created_by", "created_at", "description",
    "rollback_of",
}  # fmt: skip
DEPLOYMENT_FIELDS = {
    "id", "app", "status", "release", "desired", "running", "pending", "failed", "rollout_state",
    "reason", "created_at", "started_at", "finished_at", "events", "more_events",
}  # fmt: skip
TASKDEF = "arn:aws:ecs:us-east-1:123456789012:task-definition/tinystacks-acme-web:{}"


@pytest.fixture
def app(cluster: Cluster) -> App:
    return factories.make_app(cluster, name="web", config_vars={"GREETING": "hi"})


def succeeded(app: App, ago: int = 0, **fields: Any) -> Deployment:
    release = factories.make_release(app, **fields)
    finished = timezone.now() - timedelta(minutes=ago)
    return factories.make_deployment(release, status="succeeded", finished_at=finished)


@pytest.fixture
def live(app: App) -> Deployment:
    """v1 (nginx:1.27) then v2 (nginx:1.28, live), both rolled out."""
    succeeded(app, ago=10, image="nginx:1.27", task_definition_arn=TASKDEF.format(1),
              config={"env": {"GREETING": "hi"}})  # fmt: skip
    return succeeded(app, ago=5, image="nginx:1.28", task_definition_arn=TASKDEF.format(2),
                     config={"env": {"GREETING": "hello"}})  # fmt: skip


@pytest.fixture
def in_flight(live: Deployment) -> Deployment:
    """v3, rolling out."""
    release = factories.make_release(live.app, image="nginx:1.29")
    deployment = factories.make_deployment(release, status="in_progress", desired_count=2,
                                           running_count=1, pending_count=1,
                                           rollout_state="IN_PROGRESS")  # fmt: skip
    factories.make_event(deployment, message="(service web) has started 1 tasks")
    return deployment


def jobs_of(kind: str) -> list[Job]:
    return list(Job.objects.filter(kind=kind))


# Deploys


def test_a_deploy_makes_a_release_and_queues_its_rollout(
    api: Api, app: App, deployer_token: str
) -> None:
    response = api("POST", "/apps/web/deploys", deployer_token,
                   {"image": "ghcr.io/acme/web:2.3.1", "description": "New checkout"})  # fmt: skip

    assert response.status_code == 202
    body = response.json()
    deployment = Deployment.objects.get()
    assert response["Location"] == f"/api/v1/deployments/{deployment.pk}"
    assert set(body) == {"release", "deployment"}
    assert set(body["release"]) == RELEASE_FIELDS
    assert set(body["deployment"]) == DEPLOYMENT_FIELDS
    assert body["release"] | {"created_at": None} == {
        "version": 1, "image": "ghcr.io/acme/web:2.3.1", "kind": "deploy",
        "task_definition_arn": "", "created_by": None, "created_at": None,
        "description": "New checkout", "rollback_of": None,
    }  # fmt: skip
    assert body["deployment"] | {"created_at": None} == {
        "id": deployment.pk, "app": "web", "status": "queued", "release": 1, "desired": 2,
        "running": 0, "pending": 0, "failed": 0, "rollout_state": None, "reason": "",
        "created_at": None, "started_at": None, "finished_at": None, "events": [],
        "more_events": False,
    }  # fmt: skip
    assert deployment.release.config["env"] == {"GREETING": "hi"}
    [job] = jobs_of("run_deployment")
    assert (job.target, job.status) == (deployment, Job.Status.QUEUED)
    entry = AuditEntry.objects.get(action="app.deploy")
    assert (entry.actor, entry.ip_address) == (None, "127.0.0.1")


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"image": "not an image!"}, "image", "is not an image reference"),
        ({"image": "NGINX:1.27"}, "image", "is not an image reference"),
        ({"image": ""}, "image", "is not an image reference"),
        ({"image": "nginx:"}, "image", "is not an image reference"),
        ({"image": "a" * 300}, "image", "at most 255 are allowed"),
        ({"image": "nginx@sha256:" + "a" * 1100}, "image", "At most 1024 characters."),
        ({"image": 5}, "image", "Expected a string, got an integer."),
        ({}, "image", "This field is required."),
        ({"image": "nginx:1.27", "description": "x" * 501}, "description", "At most 500"),
        ({"image": "nginx:1.27", "description": None}, "description", "got null"),
        ({"image": "nginx:1.27", "version": 3}, "version", "Unknown field."),
    ],
)  # fmt: skip
def test_bad_deploys_are_400_by_field_and_write_nothing(
    api: Api, app: App, deployer_token: str, body: dict[str, Any], field: str, message: str
) -> None:
    before = row_counts()

    response = api("POST", "/apps/web/deploys", deployer_token, body)

    assert response.status_code == 400, response.content
    errors = response.json()
    assert message in " ".join(errors["fields"][field]), errors
    assert row_counts() == before


def test_a_deploy_while_one_is_in_flight_is_409_naming_it(
    api: Api, in_flight: Deployment, deployer_token: str
) -> None:
    before = row_counts()

    response = api("POST", "/apps/web/deploys", deployer_token, {"image": "nginx:1.30"})

    assert response.status_code == 409
    assert response.json() == {
        "error": "v3 is still rolling out to web (rolling out); wait for it or cancel it first."
    }
    assert row_counts() == before


# Releases


def test_releases_newest_first_with_who_made_them(
    api: Api, live: Deployment, owner: Any, viewer_token: str
) -> None:
    Release.objects.filter(version=2).update(created_by=owner, description="Faster")

    response = api("GET", "/apps/web/releases", viewer_token)

    assert response.status_code == 200
    releases = response.json()
    assert [(r["version"], r["image"], r["created_by"]) for r in releases] == [
        (2, "nginx:1.28", "olivia"),
        (1, "nginx:1.27", None),
    ]
    assert set(releases[0]) == RELEASE_FIELDS
    assert releases[0]["task_definition_arn"] == TASKDEF.format(2)
    assert releases[0]["description"] == "Faster"
    assert "hello" not in response.content.decode()  # config values stay out of the API


def test_listing_releases_takes_the_same_queries_for_more(
    api: Api, app: App, owner: Any, viewer_token: str, django_assert_max_num_queries: Any
) -> None:
    api("GET", "/apps", viewer_token)  # records the token's first use
    first = factories.make_release(app, created_by=owner)
    with django_assert_max_num_queries(3) as few:
        assert len(api("GET", "/apps/web/releases", viewer_token).json()) == 1
    for _ in range(15):
        factories.make_release(app, created_by=owner, kind="rollback", rollback_of=first)
    with django_assert_max_num_queries(len(few)) as many:
        assert len(api("GET", "/apps/web/releases", viewer_token).json()) == 16
    assert len(many) == len(few)


# Rollback


def test_a_rollback_releases_v1_again_reusing_its_task_definition(
    api: Api, live: Deployment, deployer_token: str
) -> None:
    response = api("POST", "/apps/web/rollback", deployer_token, {"version": 1})

    assert response.status_code == 202
    body = response.json()
    assert body["release"] | {"created_at": None} == {
        "version": 3, "image": "nginx:1.27", "kind": "rollback",
        "task_definition_arn": TASKDEF.format(1), "created_by": None, "created_at": None,
        "description": "Rollback to v1", "rollback_of": 1,
    }  # fmt: skip
    assert (body["deployment"]["status"], body["deployment"]["release"]) == ("queued", 3)
    release = Release.objects.get(version=3)
    assert release.config == {"env": {"GREETING": "hi"}}
    assert AuditEntry.objects.filter(action="app.rollback").count() == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"version": 7}, "web has no release v7."),
        ({"version": 2}, "v2 is what web runs already."),
        ({"version": 0}, "Release versions start at 1; there is no v0."),
        ({"version": -(10**30)}, "Release versions start at 1"),
        ({"version": 10**30}, "Release versions start at 1"),
        ({"version": "v1"}, "Expected an integer, got a string."),
        ({"version": 1.0}, "Expected an integer, got a number with a fraction."),
        ({}, "This field is required."),
    ],
)  # fmt: skip
def test_bad_rollbacks_are_400_by_version_and_write_nothing(
    api: Api, live: Deployment, deployer_token: str, body: dict[str, Any], message: str
) -> None:
    before = row_counts()

    response = api("POST", "/apps/web/rollback", deployer_token, body)

    assert response.status_code == 400
    assert message in " ".join(response.json()["fields"]["version"])
    assert row_counts() == before


def test_a_rollback_while_a_rollout_is_in_flight_is_409(
    api: Api, in_flight: Deployment, deployer_token: str
) -> None:
    before = row_counts()

    response = api("POST", "/apps/web/rollback", deployer_token, {"version": 1})

    assert response.status_code == 409
    assert "v3 is still rolling out" in response.json()["error"]
    assert row_counts() == before


# Config vars


def test_setting_config_vars_releases_the_live_image_with_them(
    api: Api, live: Deployment, app: App, deployer_token: str
) -> None:
    response = api("PUT", "/apps/web/config", deployer_token,
                   {"config_vars": {"GREETING": "bonjour", "API_KEY": "k-123"}})  # fmt: skip

    assert response.status_code == 202
    body = response.json()
    assert (body["release"]["version"], body["release"]["kind"]) == (3, "config")
    assert body["release"]["image"] == "nginx:1.28"
    assert body["release"]["description"] == "Config change: API_KEY, GREETING"
    assert "k-123" not in response.content.decode()
    app.refresh_from_db()
    assert app.config_vars == {"GREETING": "bonjour", "API_KEY": "k-123"}
    assert Release.objects.get(version=3).config["env"] == app.config_vars
    assert api("GET", "/apps/web", deployer_token).json()["config_var_names"] == [
        "API_KEY",
        "GREETING",
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"config_vars": {"AWS_SECRET_ACCESS_KEY": "x"}}, "prefix reserved by AWS and ECS"),
        ({"config_vars": {"1A": "x"}}, "'1A' is not a valid variable name"),
        ({"config_vars": {"": "x"}}, "'' is not a valid variable name"),
        ({"config_vars": {"A": None}}, "The value of A must be text."),
        ({"config_vars": {"A": "x" * 50_000}}, "at most 49152 fit in a task definition"),
        ({"config_vars": "A=1"}, "Expected an object, got a string."),
        ({"GREETING": "hello"}, "This field is required."),
    ],
)  # fmt: skip
def test_bad_config_vars_are_400_and_write_nothing(
    api: Api, live: Deployment, app: App, deployer_token: str, body: Any, message: str
) -> None:
    before = row_counts()

    response = api("PUT", "/apps/web/config", deployer_token, body)

    assert response.status_code == 400
    assert message in " ".join(response.json()["fields"]["config_vars"]), response.json()
    assert row_counts() == before
    app.refresh_from_db()
    assert app.config_vars == {"GREETING": "hi"}


def test_the_bare_mapping_is_refused_with_the_shape_to_send(
    api: Api, live: Deployment, deployer_token: str
) -> None:
    response = api("PUT", "/apps/web/config", deployer_token, {"GREETING": "hello"})

    assert response.json()["error"] == (
        'Send the config vars as {"config_vars": {"NAME": "value", ...}}.'
    )


def test_config_before_the_first_deploy_is_409(api: Api, app: App, deployer_token: str) -> None:
    before = row_counts()

    response = api("PUT", "/apps/web/config", deployer_token, {"config_vars": {"A": "b"}})

    assert response.status_code == 409
    assert response.json() == {"error": "Deploy web once before changing its config."}
    assert row_counts() == before


def test_config_while_a_rollout_is_in_flight_is_409(
    api: Api, in_flight: Deployment, app: App, deployer_token: str
) -> None:
    response = api("PUT", "/apps/web/config", deployer_token, {"config_vars": {"A": "b"}})

    assert response.status_code == 409
    app.refresh_from_db()
    assert app.config_vars == {"GREETING": "hi"}


# Scaling


def test_autoscaling_settings(api: Api, app: App, deployer_token: str) -> None:
    body = {"autoscaling": True, "min_tasks": 3, "max_tasks": 10, "cpu_target": 60}

    response = api("PUT", "/apps/web/scaling", deployer_token, body)

    assert response.status_code == 200
    assert response.json() == body | {"desired_count": 2, "applied_at": None}
    scaling = ScalingSettings.objects.get(app=app)
    assert (scaling.min_tasks, scaling.max_tasks, scaling.cpu_target) == (3, 10, 60)
    assert jobs_of("apply_scaling") == []  # no service yet: the first deploy applies them
    assert AuditEntry.objects.get(action="app.scale").ip_address == "127.0.0.1"


def test_a_fixed_count_is_applied_to_the_running_service(
    api: Api, app: App, deployer_token: str
) -> None:
    App.objects.filter(pk=app.pk).update(service_arn="arn:aws:ecs:us-east-1:1:service/x/web")

    response = api("PUT", "/apps/web/scaling", deployer_token,
                   {"autoscaling": False, "desired_count": 4})  # fmt: skip

    assert response.status_code == 200
    assert response.json()["autoscaling"] is False
    assert response.json()["desired_count"] == 4
    app.refresh_from_db()
    assert (app.desired_count, app.scaling.autoscaling_enabled) == (4, False)
    [job] = jobs_of("apply_scaling")
    assert job.target == app


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"autoscaling": True, "min_tasks": 6}, "min_tasks", "Must be at most max_tasks (5)."),
        ({"autoscaling": True, "max_tasks": 1}, "max_tasks", "Must be at least min_tasks (2)."),
        ({"autoscaling": True, "min_tasks": 9, "max_tasks": 3}, "min_tasks",
         "Must be at most max_tasks (3)."),
        ({"autoscaling": True, "max_tasks": 5001}, "max_tasks", "less than or equal to 5000"),
        ({"autoscaling": True, "min_tasks": -1}, "min_tasks", "greater than or equal to 0"),
        ({"autoscaling": True, "cpu_target": 0}, "cpu_target", "greater than or equal to 1"),
        ({"autoscaling": True, "cpu_target": 101}, "cpu_target", "less than or equal to 100"),
        ({"autoscaling": True, "desired_count": 3}, "desired_count", "autoscaling false"),
        ({"autoscaling": False, "desired_count": 5001}, "desired_count", "less than or equal"),
        ({"autoscaling": False, "desired_count": -2}, "desired_count", "greater than or equal"),
        ({"autoscaling": False, "desired_count": "3"}, "desired_count", "Expected an integer"),
        ({"autoscaling": False, "min_tasks": 3}, "min_tasks", "autoscaling true"),
        ({"autoscaling": "false", "desired_count": 3}, "autoscaling", "Expected a boolean"),
        ({"desired_count": 3}, "autoscaling", "This field is required."),
        ({"autoscaling": True, "target": 50}, "target", "Unknown field."),
    ],
)  # fmt: skip
def test_bad_scaling_is_400_by_field_and_changes_nothing(
    api: Api, app: App, deployer_token: str, body: dict[str, Any], field: str, message: str
) -> None:
    before = (model_to_dict(app), model_to_dict(app.scaling), row_counts())

    response = api("PUT", "/apps/web/scaling", deployer_token, body)

    assert response.status_code == 400, response.content
    assert message in " ".join(response.json()["fields"][field]), response.json()
    app.refresh_from_db()
    assert (model_to_dict(app), model_to_dict(app.scaling), row_counts()) == before


# Deployments


def test_a_deployment_with_its_counts_and_events(
    api: Api, in_flight: Deployment, viewer_token: str
) -> None:
    factories.make_event(in_flight, message="(service web) has reached a steady state.",
                         created_at=timezone.now() + timedelta(seconds=5))  # fmt: skip

    response = api("GET", f"/deployments/{in_flight.pk}", viewer_token)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == DEPLOYMENT_FIELDS
    assert (body["status"], body["release"], body["app"]) == ("in_progress", 3, "web")
    assert (body["desired"], body["running"], body["pending"], body["failed"]) == (2, 1, 1, 0)
    assert body["rollout_state"] == "IN_PROGRESS"
    assert [e["message"] for e in body["events"]] == [
        "(service web) has started 1 tasks",
        "(service web) has reached a steady state.",
    ]
    assert all(set(e) == {"id", "at", "message"} for e in body["events"])
    assert body["more_events"] is False


def test_a_follower_pages_through_a_long_rollout_s_events_without_missing_one(
    api: Api, in_flight: Deployment, viewer_token: str
) -> None:
    # Recorded out of time order, as ECS's own timestamps arrive late.
    for n in range(250):
        factories.make_event(
            in_flight, message=f"event {n}", created_at=timezone.now() - timedelta(seconds=n)
        )
    path = f"/deployments/{in_flight.pk}"

    seen, after, pages = [], 0, 0
    while True:
        body = api("GET", f"{path}?events_after={after}", viewer_token).json()
        seen += [e["message"] for e in body["events"]]
        pages += 1
        after = body["events"][-1]["id"]
        if not body["more_events"]:
            break

    assert pages == 3 and len(seen) == 251
    assert seen[1:] == [f"event {n}" for n in range(250)]
    assert api("GET", f"{path}?events_after={after}", viewer_token).json()["events"] == []


@pytest.mark.parametrize("after", ["-1", "x", "1.5", "99999999999999999999", "9223372036854775808"])
def test_a_bad_events_cursor_is_400(
    api: Api, in_flight: Deployment, viewer_token: str, after: str
) -> None:
    response = api("GET", f"/deployments/{in_flight.pk}?events_after={after}", viewer_token)

    assert response.status_code == 400
    assert "events_after must be an event id" in response.json()["error"]


def test_a_deployment_takes_the_same_queries_for_more_events(
    api: Api, in_flight: Deployment, viewer_token: str, django_assert_max_num_queries: Any
) -> None:
    path = f"/deployments/{in_flight.pk}"
    api("GET", path, viewer_token)
    with django_assert_max_num_queries(3) as few:
        api("GET", path, viewer_token)
    for n in range(20):
        factories.make_event(in_flight, message=f"event {n}")
    with django_assert_max_num_queries(len(few)):
        assert len(api("GET", path, viewer_token).json()["events"]) == 21


@pytest.mark.parametrize("path", ["/deployments/999999", "/deployments/99999999999999999999999",
                                  "/deployments/abc", "/deployments/-1"])  # fmt: skip
def test_unknown_deployments_are_404(api: Api, live: Deployment, viewer_token: str,
                                     path: str) -> None:  # fmt: skip
    response = api("GET", path, viewer_token)

    assert response.status_code == 404
    assert "error" in response.json()


def test_cancelling_rolls_back_to_the_live_release(
    api: Api, in_flight: Deployment, deployer_token: str
) -> None:
    response = api("POST", f"/deployments/{in_flight.pk}/cancel", deployer_token)

    assert response.status_code == 202
    body = response.json()
    assert body["deployment"]["status"] == "cancelled"
    assert body["deployment"]["reason"] == "Cancelled; rolling back to the last good release."
    rollback = body["rollback"]
    assert (rollback["release"]["version"], rollback["release"]["kind"]) == (4, "rollback")
    assert rollback["release"]["image"] == "nginx:1.28"
    assert rollback["release"]["task_definition_arn"] == TASKDEF.format(2)
    assert rollback["deployment"]["status"] == "queued"
    in_flight.refresh_from_db()
    assert in_flight.status == Deployment.Status.CANCELLED


def test_cancelling_the_first_rollout_rolls_back_to_nothing(
    api: Api, app: App, deployer_token: str
) -> None:
    first = factories.make_deployment(factories.make_release(app), status="queued")

    response = api("POST", f"/deployments/{first.pk}/cancel", deployer_token, {})

    assert response.status_code == 202
    assert response.json()["rollback"] is None
    assert response.json()["deployment"]["status"] == "cancelled"


def test_cancelling_an_ended_rollout_is_409(
    api: Api, live: Deployment, deployer_token: str
) -> None:
    before = row_counts()

    response = api("POST", f"/deployments/{live.pk}/cancel", deployer_token)

    assert response.status_code == 409
    assert response.json() == {"error": "v2 has already ended; nothing to cancel."}
    assert row_counts() == before


def test_cancel_takes_no_parameters(api: Api, in_flight: Deployment, deployer_token: str) -> None:
    response = api("POST", f"/deployments/{in_flight.pk}/cancel", deployer_token, {"force": True})

    assert response.status_code == 400
    assert response.json()["fields"] == {"force": ["Unknown field."]}
    in_flight.refresh_from_db()
    assert in_flight.status == Deployment.Status.IN_PROGRESS


# Who may do what, on every app and deployment URL


def access_urls(deployment: Deployment) -> list[tuple[str, str, Any]]:
    d = deployment.pk
    return [
        ("GET", "/apps/web", NO_BODY),
        ("PATCH", "/apps/web", {"port": 81}),
        ("DELETE", "/apps/web", NO_BODY),
        ("POST", "/apps/web/deploys", {"image": "nginx:1.30"}),
        ("GET", "/apps/web/releases", NO_BODY),
        ("POST", "/apps/web/rollback", {"version": 1}),
        ("PUT", "/apps/web/config", {"config_vars": {"A": "b"}}),
        ("PUT", "/apps/web/scaling", {"autoscaling": False, "desired_count": 3}),
        ("GET", f"/deployments/{d}", NO_BODY),
        ("POST", f"/deployments/{d}/cancel", NO_BODY),
    ]


def test_no_token_is_401_everywhere(api: Api, live: Deployment) -> None:
    before = row_counts()
    for method, path, body in [("GET", "/apps", NO_BODY), ("POST", "/apps", {}),
                               *access_urls(live)]:  # fmt: skip
        response = api(method, path, None, body)
        assert response.status_code == 401, path
        assert response["WWW-Authenticate"] == 'Bearer realm="TinyStacks API"'
    assert row_counts() == before


def test_viewer_tokens_may_read_but_not_write(
    api: Api, live: Deployment, app: App, viewer_token: str
) -> None:
    before = (row_counts(), model_to_dict(app), model_to_dict(app.scaling))
    writes = [("POST", "/apps", {"name": "shop", "cluster": "main"}), *access_urls(live)]
    for method, path, body in writes:
        response = api(method, path, viewer_token, body)
        if method == "GET":
            assert response.status_code == 200, path
        else:
            assert response.status_code == 403, path
            assert response.json() == {
                "error": "This token has the viewer role, which can only read."
            }
    app.refresh_from_db()
    assert (row_counts(), model_to_dict(app), model_to_dict(app.scaling)) == before
    live.refresh_from_db()
    assert live.status == Deployment.Status.SUCCEEDED


def test_another_teams_token_gets_404_everywhere(
    api: Api, live: Deployment, app: App, outsider_token: str, other_team: Team
) -> None:
    # The other team has an app of the same name: still nothing of this team's is reachable.
    theirs = factories.make_cluster(factories.make_account(other_team), status="ready")
    factories.make_app(theirs, name="web")
    in_flight = factories.make_deployment(factories.make_release(app), status="in_progress")
    before = row_counts()
    for method, path, body in [*access_urls(live), *access_urls(in_flight)]:
        if path.startswith("/apps"):
            continue  # their own "web" answers there; covered below
        response = api(method, path, outsider_token, body)
        assert response.status_code == 404, (method, path)
    assert row_counts() == before
    assert api("GET", "/apps", outsider_token).json()[0]["cluster"] == theirs.name


def test_another_teams_app_is_404_for_every_app_url(
    api: Api, live: Deployment, outsider_token: str
) -> None:
    before = row_counts()
    for method, path, body in access_urls(live):
        if not path.startswith("/apps"):
            continue
        response = api(method, path, outsider_token, body)
        assert response.status_code == 404, (method, path)
        assert response.json() == {"error": "This team has no app named web."}
    assert row_counts() == before


HOSTILE: list[Any] = [
    {"image": "nginx:1.27\u0000"}, {"image": "nginx:1.27\ud800"}, {"image": ["nginx"]},
    {"config_vars": {"A\u0000": "x"}}, {"config_vars": {"A": "\ud800"}},
    {"config_vars": {"A": {"nested": "x"}}}, {"autoscaling": True, "min_tasks": 10**30},
    {"autoscaling": False, "desired_count": 10**30}, {"version": 10**30}, {"port": 10**30},
    {"cpu": 10**30, "memory": -(10**30)}, {"name": "x\u0000", "cluster": "main\u0000"},
    {"health_check_path": "/" + "a" * 100_000}, {"command": "x" * 100_000},
    {"rollout_timeout_seconds": 10**30}, {"max_percent": 1e308},
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/apps"), ("PATCH", "/apps/web"), ("POST", "/apps/web/deploys"),
     ("POST", "/apps/web/rollback"), ("PUT", "/apps/web/config"), ("PUT", "/apps/web/scaling")],
)  # fmt: skip
def test_hostile_input_is_never_a_500(
    api: Api, live: Deployment, owner_token: str, method: str, path: str
) -> None:
    before = row_counts()
    for body in HOSTILE:
        response = api(method, path, owner_token, body)
        assert 400 <= response.status_code < 500, (body, response.content[:300])
        assert "error" in response.json()
    for raw in ['{"image": "nginx", "image": 1}', "[]", "{", '{"version": NaN}']:
        response = api(method, path, owner_token, raw=raw)
        assert response.status_code == 400, raw
    assert row_counts() == before

"""Every URL the project routes × every kind of caller → the status each must get.

The URL list comes from the URL configuration itself: a new URL without an expectation here fails
`test_every_url_has_an_expectation`. Objects of both teams are in place, and object URLs name this
team's objects, so an outsider must get 404 (never 403: that would confirm the object exists).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import django_rq
import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from deployments import encryption, jobs
from deployments.models import (
    App,
    Cluster,
    Job,
    Membership,
    Team,
)
from tests import factories
from tests.api.conftest import make_api_token

SESSION_ROLES = ("outsider", "staff", "viewer", "deployer", "owner")
TOKEN_ROLES = ("token_other", "token_viewer", "token_deployer", "token_owner")
ROLES = ("anonymous", *TOKEN_ROLES, *SESSION_ROLES)  # writers last: their POSTs change state
TEAM_MEMBERS = ("viewer", "deployer", "owner")
WRITERS = ("deployer", "owner")
# A permitted write may still be refused for what it asks (400), the state (409) or bad form
# input (200 with errors); it is never refused for who asks.
ALLOWED = {200, 201, 202, 204, 302, 400, 409}
TO_SIGN_IN = {302}


@dataclass(frozen=True)
class Route:
    namespace: str | None
    name: str | None
    pattern: str


def routes(patterns: list[Any], prefix: str = "", namespace: str | None = None) -> Iterator[Route]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = pattern.namespace or namespace
            yield from routes(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            yield Route(namespace, pattern.name, prefix + str(pattern.pattern))


ALL_ROUTES = list(routes(get_resolver().url_patterns))

# Dashboard pages and actions, by URL name: what a GET and a POST must answer, per role.
# "page": any member may read; "object": this team's object (outsiders and staff get 404);
# "create": a member page whose POST creates; "action": POST only, by writers.
DASHBOARD = {
    "overview": "home",
    "accounts": "page",
    "activity": "page",
    "cluster_new": "create",
    "app_new": "create",
    "account_connect": "action",
    "account_connect_sandbox": "action",
    "team_switch": "switch",
    "account": "object",
    "cluster": "object",
    "app": "object",
    "app_releases": "object",
    "app_scaling": "object_writable",
    "deployment": "object",
    "account_verify": "object_action",
    "cluster_resize": "object_action",
    "cluster_retry": "object_action",
    "cluster_delete": "object_action",
    "app_deploy": "object_action",
    "app_config": "object_action",
    "app_secret_set": "object_action",
    "app_secret_remove": "object_action",
    "app_settings": "object_action",
    "app_delete": "object_action",
    "app_rollback": "object_action",
    "deployment_cancel": "object_action",
    "api_token_create": "owner_action",
    "api_token_revoke": "owner_object_action",
    "login": "sign_in",
    "logout": "sign_out",
}
API = {
    "openapi": "public",
    "accounts": "list",
    "clusters": "list",
    "apps": "list",
    "cluster": "object",
    "app": "object",
    "app-deploys": "object_write",
    "app-releases": "object_read",
    "app-rollback": "object_write",
    "app-config": "object_write",
    "app-secret": "object_write",
    "app-scaling": "object_write",
    "deployment": "object_read",
    "deployment-cancel": "object_write",
    "not-found": "not_found",
}


@pytest.fixture
def world(db: Any) -> dict[str, Any]:
    """Two teams, each with an account, a ready cluster and a deployed app; a caller per role."""
    ours, theirs = (
        Team.objects.create(name="Acme", slug="acme"),
        Team.objects.create(name="Globex", slug="globex"),
    )
    objects: dict[str, Any] = {}
    for team, names in ((ours, ("sandbox", "main", "web")), (theirs, ("theirs", "other", "far"))):
        account = factories.make_account(team, name=names[0])
        cluster = factories.make_cluster(account, name=names[1], status=Cluster.Status.READY)
        app = factories.make_app(
            cluster, name=names[2], secrets={"API_KEY": encryption.encrypt("matrix")}
        )
        first = factories.make_release(app, image="nginx:1.27", config={"env": {}})
        factories.make_deployment(first, finished_at=timezone.now())
        second = factories.make_release(app, image="nginx:1.28", config={"env": {}})
        objects[team.slug] = factories.make_deployment(second, finished_at=timezone.now())
        factories.make_job(team, account, status=Job.Status.SUCCEEDED)
        factories.make_audit_entry(team)
    users = {role: factories.make_user(ours, role, username=role) for role in TEAM_MEMBERS} | {
        "outsider": factories.make_user(theirs, Membership.Role.OWNER, username="outsider")
    }
    users["staff"] = User.objects.create_superuser("staff", "staff@example.com", "pw")
    tokens = {f"token_{role}": make_api_token(ours, role)[1] for role in TEAM_MEMBERS} | {
        "token_other": make_api_token(theirs, Membership.Role.OWNER)[1]
    }
    revocable, _ = make_api_token(ours, Membership.Role.VIEWER, name="revocable")
    return {
        "users": users, "tokens": tokens, "deployment": objects["acme"], "token": revocable,
    }  # fmt: skip


def url_for(route: Route, world: dict[str, Any]) -> str:
    """The route's path, its parameters filled with this team's objects."""
    path = route.pattern.replace("^", "").replace("$", "").replace("/?", "/")
    fills = {
        "<str:name>": {"account": "sandbox", "cluster": "main"}.get(
            (route.name or "").split("_")[0], "web"
        ),
        "<int:pk>": str(
            world["token"].pk if route.name == "api_token_revoke" else world["deployment"].pk
        ),
        "<int:id>": str(world["deployment"].pk),
        "<int:version>": "1",
        "<str:secret>": "API_KEY",
        "<str:secret_name>": "API_KEY",
        "(?P<path>.*)": "no/such/thing",
    }
    for placeholder, value in fills.items():
        path = path.replace(placeholder, value)
    return "/" + path


def client_for(role: str, world: dict[str, Any]) -> Client:
    client = Client(raise_request_exception=False)
    if role in world["users"]:
        client.force_login(world["users"][role])
    elif role in world["tokens"]:
        client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {world['tokens'][role]}"
    return client


DASHBOARD_METHODS = {
    "home": ("GET",), "page": ("GET",), "object": ("GET",), "object_writable": ("GET", "POST"),
    "create": ("GET", "POST"), "action": ("POST",), "object_action": ("POST",),
    "switch": ("POST",), "sign_in": ("GET", "POST"), "sign_out": ("POST",),
    "owner_action": ("POST",), "owner_object_action": ("POST",),
}  # fmt: skip


def dashboard_expectation(kind: str, role: str, method: str) -> set[int]:
    """What a dashboard URL must answer `role` for `method`."""
    if method not in DASHBOARD_METHODS[kind]:
        return {405}  # checked before anything else, for everyone
    signed_in = role in SESSION_ROLES
    if kind == "sign_in":
        return {302} if signed_in else {200}
    if kind == "sign_out":
        return {302}
    if not signed_in:
        return TO_SIGN_IN
    member, writer = role in TEAM_MEMBERS, role in WRITERS
    if kind == "home":
        return {200}  # for someone in no team, it says what to do
    if kind == "page":
        return {404} if role == "staff" else {200}
    if kind == "switch":
        return {302, 404}  # to a team the user belongs to, else 404
    if kind.startswith("owner_"):  # API tokens: only owners of the team
        if role == "staff" or (role == "outsider" and kind == "owner_object_action"):
            return {404}
        return ALLOWED if role in ("owner", "outsider") else {403}
    if kind in ("create", "action"):
        if role == "outsider":  # a member of their own team, acting there
            return {200} if method == "GET" else ALLOWED
        if role == "staff":  # in no team
            return {403, 404}
        return ALLOWED if writer or method == "GET" else {403}
    # An object of this team: others must not learn it exists.
    if not member:
        return {404}
    if method == "GET":
        return {200}
    return ALLOWED if writer else {403}


def api_expectation(kind: str, role: str, method: str) -> set[int]:
    if kind == "public":
        return {200}
    if kind == "not_found":
        return {404}
    if role not in TOKEN_ROLES:
        return {401}  # the API never takes a session cookie
    writes = method != "GET"
    if kind == "list":
        if role == "token_viewer" and writes:
            return {403}
        return {200} if not writes else {400}
    if role == "token_other":
        return {404}
    if role == "token_viewer" and writes:
        return {403}
    return ALLOWED


API_METHODS = {
    "accounts": ("GET", "POST"), "clusters": ("GET", "POST"), "apps": ("GET", "POST"),
    "cluster": ("GET", "PATCH", "DELETE"), "app": ("GET", "PATCH", "DELETE"),
    "app-deploys": ("POST",), "app-rollback": ("POST",), "deployment-cancel": ("POST",),
    "app-config": ("PUT",), "app-scaling": ("PUT",), "app-secret": ("PUT", "DELETE"),
}  # fmt: skip


def methods_of(route: Route) -> tuple[str, ...]:
    if route.namespace == "api":
        return API_METHODS.get(route.name or "", ("GET",))
    return ("GET", "POST")


def test_every_url_has_an_expectation() -> None:
    unknown = [
        route.pattern
        for route in ALL_ROUTES
        if route.namespace not in ("admin", "django_rq")
        and (route.name not in (API if route.namespace == "api" else DASHBOARD))
    ]
    assert unknown == []


@pytest.mark.parametrize(
    "route",
    [r for r in ALL_ROUTES if r.namespace not in ("admin", "django_rq")],
    ids=lambda r: f"{r.namespace or 'pages'}:{r.name}",
)
def test_dashboard_and_api_urls(route: Route, world: dict[str, Any]) -> None:
    wrong = []
    for role in ROLES:
        for method in methods_of(route):
            client = client_for(role, world)
            url = url_for(route, world)
            if route.namespace == "api":
                expected = api_expectation(API[route.name or ""], role, method)
                response = client.generic(method, url, "{}", content_type="application/json")
            else:
                expected = dashboard_expectation(DASHBOARD[route.name or ""], role, method)
                response = client.generic(
                    method, url, "", content_type="application/x-www-form-urlencoded"
                )
            if response.status_code not in expected:
                wrong.append(f"{role} {method} {url}: {response.status_code}, expected {expected}")
    assert wrong == []


PUBLIC_ADMIN = {"login", "logout", "password_reset"}  # the admin's own sign-in pages
# django-rq's pages for a worker that is not running, and for rq-scheduler (not installed), fail
# for staff inside django-rq itself; for them only the refusal of everyone else is checked.
STAFF_UNCHECKED = {"worker_details", "scheduler_jobs", "django_rq_worker_details",
                   "django_rq_scheduler_jobs"}  # fmt: skip


@pytest.mark.parametrize(
    "route",
    [r for r in ALL_ROUTES if r.namespace in ("admin", "django_rq")],
    ids=lambda r: f"{r.namespace}:{r.name}:{r.pattern}",
)
def test_admin_and_queue_pages_are_for_staff_only(
    route: Route, world: dict[str, Any], rq_redis: Any
) -> None:
    world["rq_job_id"] = django_rq.get_queue("default").enqueue(jobs.tick).id
    path = admin_path(route, world)
    if path is None:
        pytest.skip(f"{route.pattern} needs an object this test does not make")
    if route.name in PUBLIC_ADMIN:
        pytest.skip("the admin's sign-in page is for everyone")
    wrong = []
    for role in ROLES:
        status = client_for(role, world).get(path).status_code
        # Staff may still be refused a page by design (no "add" for releases): never a 5xx.
        if role == "staff":
            ok = status < 500 or route.name in STAFF_UNCHECKED
        else:
            ok = status in {302, 401, 403, 404, 405}
        if not ok:
            wrong.append(f"{role} GET {path}: {status}")
    assert wrong == []


MODELS_BY_NAME = {model._meta.model_name: model for model in apps.get_models()}


def admin_path(route: Route, world: dict[str, Any]) -> str | None:
    """A concrete path for an admin or queue route, or None when it needs what we lack."""
    path = route.pattern.replace("^", "").replace("$", "").replace("/?", "/")
    path = path.replace("(?P<token>[\\w]+)?/", "not-the-token/")
    if "<path:object_id>" in path:
        segments = path.split("/")
        model = MODELS_BY_NAME.get(segments[segments.index("<path:object_id>") - 1])
        # django-rq's admin "dashboard" model has no table: nothing to open there.
        instance = model._default_manager.first() if model and model._meta.managed else None
        if instance is None:
            return None
        path = path.replace("<path:object_id>", str(instance.pk))
    for placeholder, value in {
        "<int:queue_index>": "0", "<str:job_id>": world.get("rq_job_id", "missing"),
        "<str:result_id>": "missing",
        "<str:key>": "missing", "<int:scheduler_index>": "0", "<int:connection_index>": "0",
        "<str:scheduler_name>": "missing", "<path:cron_job_name>": "missing",
        "<path:url>": "", "<id>": "1", "<path:content_type_id>": "1", "<path:object_id>": "1",
    }.items():  # fmt: skip
        path = path.replace(placeholder, value)
    if "<" in path or "(?" in path:
        return None
    return "/" + path + ("" if path.endswith("/") or not path else "")


def test_the_matrix_covers_the_api_and_dashboard(world: dict[str, Any]) -> None:
    """A sanity check on the test itself: the writers' POSTs really reach the services."""
    client = client_for("owner", world)
    resize = {"min_instances": 1, "desired_instances": 1, "max_instances": 2,
              "instance_type": "t3.medium"}  # fmt: skip
    response = client.post("/clusters/main/resize", resize)
    assert response.status_code == 302
    assert Job.objects.filter(kind="scale_cluster").exists()
    token = client_for("token_deployer", world)
    assert json.loads(token.get("/api/v1/apps/web").content)["name"] == "web"
    assert token.delete("/api/v1/apps/web/secrets/API_KEY").status_code == 202
    assert not App.objects.get(name="web").secrets

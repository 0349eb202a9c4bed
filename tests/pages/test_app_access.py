"""App pages for each role, an outsider and someone signed out; CSRF on every app form; markup the
strict CSP allows; and the same number of queries whatever the number of rows."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from deployments import encryption
from deployments.models import App, AuditEntry, Deployment, Job, Release, ScalingSettings, Team
from tests import factories
from tests.pages.conftest import HTMX, deployed, query_count
from tests.pages.test_security import INLINE_SCRIPT

pytestmark = pytest.mark.django_db

IN_FLIGHT = "<in-flight deployment>"
PAGES: list[tuple[str, list[Any]]] = [
    ("app_new", []),
    ("app", ["web"]),
    ("app_releases", ["web"]),
    ("app_scaling", ["web"]),
    ("deployment", ["web", IN_FLIGHT]),
]
OBJECT_PAGES = PAGES[1:]
FRAGMENTS: list[tuple[str, list[Any]]] = [
    ("app", ["web"]),
    ("app_scaling", ["web"]),
    ("deployment", ["web", IN_FLIGHT]),
]
SCALING_FORM = {
    "mode": "fixed",
    "desired_count": "4",
    "min_tasks": "1",
    "max_tasks": "6",
    "cpu_target": "50",
}
SETTINGS_FORM = {
    "port": "8080",
    "health_check_path": "/healthz",
    "size": "512/1024",
    "min_healthy_percent": "50",
    "max_percent": "150",
    "rollout_timeout_seconds": "600",
}
WRITES: list[tuple[str, list[Any], dict[str, str]]] = [
    (
        "app_new",
        [],
        {
            "name": "second",
            "cluster": "<cluster>",
            "port": "80",
            "health_check_path": "/",
            "size": "256/512",
            "desired_count": "2",
            "min_healthy_percent": "100",
            "max_percent": "200",
        },
    ),
    ("app_deploy", ["web"], {"image": "nginx:1.29"}),
    ("app_config", ["web"], {"config_vars": "GREETING=hi"}),
    ("app_secret_set", ["web"], {"name": "API_KEY", "value": "hunter2"}),
    ("app_secret_remove", ["web", "API_KEY"], {}),
    ("app_settings", ["web"], SETTINGS_FORM),
    ("app_delete", ["web"], {"confirm_name": "web"}),
    ("app_rollback", ["web", 1], {}),
    ("deployment_cancel", ["web", IN_FLIGHT], {}),
    ("app_scaling", ["web"], SCALING_FORM),
]
OBJECT_WRITES = WRITES[1:]


@pytest.fixture
def data(app: App) -> Deployment:
    """web with v1 live and v2 rolling out; returns the rollout."""
    deployed(app, "nginx:1.27")
    return deployed(app, "nginx:1.28", status="in_progress", running_count=1)


def _url(name: str, args: list[Any], data: Deployment) -> str:
    return reverse(name, args=[data.pk if arg == IN_FLIGHT else arg for arg in args])


def _form(form: dict[str, str], data: Deployment) -> dict[str, str]:
    return {key: str(data.app.cluster.pk) if v == "<cluster>" else v for key, v in form.items()}


def _rows() -> tuple[object, ...]:
    return (
        App.objects.count(),
        Release.objects.count(),
        Job.objects.count(),
        AuditEntry.objects.count(),
        *Deployment.objects.order_by("pk").values_list("status", flat=True),
        *App.objects.order_by("pk").values_list(
            "desired_count",
            "config_vars",
            "secrets",
            "port",
            "health_check_path",
            "cpu",
            "max_percent",
            "rollout_timeout_seconds",
        ),
        *ScalingSettings.objects.order_by("pk").values_list("min_tasks", "max_tasks"),
    )


@pytest.mark.parametrize("role", ["owner", "deployer", "viewer"])
@pytest.mark.parametrize(("name", "args"), PAGES)
def test_members_read_every_app_page(
    client: Client, request: pytest.FixtureRequest, data: Deployment, role: str, name: str,
    args: Any,
) -> None:  # fmt: skip
    client.force_login(request.getfixturevalue(role))

    response = client.get(_url(name, args, data))

    assert response.status_code == 200
    assert "Acme" in response.text


@pytest.mark.parametrize("role", ["owner", "deployer", "viewer"])
@pytest.mark.parametrize(("name", "args"), FRAGMENTS)
def test_members_read_every_app_fragment(
    client: Client, request: pytest.FixtureRequest, data: Deployment, role: str, name: str,
    args: Any,
) -> None:  # fmt: skip
    client.force_login(request.getfixturevalue(role))

    response = client.get(_url(name, args, data), **HTMX)  # type: ignore[arg-type]

    assert response.status_code in (200, 286)
    assert "<html" not in response.text and "topbar" not in response.text
    assert "HX-Request" in response["Vary"]


def test_the_overview_answers_for_the_apps_table_alone(
    owner_client: Client, data: Deployment
) -> None:
    response = owner_client.get(reverse("overview"), HTTP_HX_TARGET="apps", **HTMX)  # type: ignore[arg-type]

    assert response.status_code == 200
    assert response.text.lstrip().startswith('<section id="apps"')
    assert 'id="clusters"' not in response.text and "HX-Request" in response["Vary"]


@pytest.mark.parametrize(("name", "args", "form"), WRITES)
def test_a_viewer_cannot_write_to_apps(
    viewer_client: Client, data: Deployment, name: str, args: Any, form: dict[str, str]
) -> None:
    before = _rows()

    response = viewer_client.post(_url(name, args, data), _form(form, data))

    assert response.status_code == 403
    assert _rows() == before


@pytest.mark.parametrize(("name", "args"), OBJECT_PAGES)
def test_an_outsider_gets_404_for_our_apps(
    client: Client, outsider: Any, data: Deployment, name: str, args: Any
) -> None:
    client.force_login(outsider)

    assert client.get(_url(name, args, data)).status_code == 404
    assert client.get(_url(name, args, data), **HTMX).status_code == 404  # type: ignore[arg-type]


def test_an_outsider_with_an_app_of_the_same_name_sees_only_theirs(
    client: Client, outsider: Any, other_team: Team, data: Deployment
) -> None:
    theirs = factories.make_cluster(factories.make_account(other_team), name="theirs")
    factories.make_app(theirs, name="web")
    client.force_login(outsider)

    page = client.get(reverse("app", args=["web"])).text

    assert "theirs" in page and "nginx:1.28" not in page and "Acme" not in page
    assert client.get(_url("deployment", ["web", IN_FLIGHT], data)).status_code == 404


@pytest.mark.parametrize(("name", "args", "form"), OBJECT_WRITES)
def test_an_outsider_cannot_write_to_our_apps(
    client: Client, outsider: Any, data: Deployment, name: str, args: Any, form: dict[str, str]
) -> None:
    client.force_login(outsider)
    before = _rows()

    response = client.post(_url(name, args, data), _form(form, data))

    assert response.status_code == 404
    assert _rows() == before


def test_an_outsider_cannot_put_an_app_on_our_cluster(
    client: Client, outsider: Any, other_team: Team, data: Deployment
) -> None:
    factories.make_cluster(factories.make_account(other_team), name="theirs", status="ready")
    client.force_login(outsider)
    before = _rows()

    response = client.post(reverse("app_new"), _form(WRITES[0][2], data))

    assert response.status_code == 200 and "Select a valid choice" in response.text
    assert _rows() == before


@pytest.mark.parametrize(("name", "args"), PAGES)
def test_signed_out_visitors_are_sent_to_sign_in_from_app_pages(
    client: Client, data: Deployment, name: str, args: Any
) -> None:
    response = client.get(_url(name, args, data))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(("name", "args", "form"), WRITES)
def test_signed_out_visitors_cannot_write_to_apps(
    client: Client, data: Deployment, name: str, args: Any, form: dict[str, str]
) -> None:
    before = _rows()

    response = client.post(_url(name, args, data), _form(form, data))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert _rows() == before


def test_names_no_app_can_have_are_404_without_a_lookup(owner_client: Client, data: Any) -> None:
    assert owner_client.get("/apps/Not%20An%20App/").status_code == 404
    assert owner_client.get("/apps/web/deployments/99999999999999999999/").status_code == 404


# CSRF


@pytest.mark.parametrize(("name", "args", "form"), WRITES)
def test_app_posts_without_a_csrf_token_are_refused(
    owner: Any, data: Deployment, name: str, args: Any, form: dict[str, str]
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    before = _rows()

    response = client.post(_url(name, args, data), _form(form, data))

    assert response.status_code == 403
    assert _rows() == before


def test_the_deploy_form_works_with_the_pages_token(owner: Any, app: App) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    page = client.get(reverse("app", args=["web"])).text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    header = re.search(r"hx-headers='\{\"X-CSRFToken\": \"([^\"]+)\"\}'", page)
    assert token is not None and header is not None

    plain = client.post(
        reverse("app_deploy", args=["web"]),
        {"image": "nginx:1.27", "csrfmiddlewaretoken": token.group(1)},
    )
    Deployment.objects.update(status="succeeded")
    htmx = client.post(
        reverse("app_deploy", args=["web"]),
        {"image": "nginx:1.28"},
        HTTP_X_CSRFTOKEN=header.group(1),
        **HTMX,  # type: ignore[arg-type]
    )

    assert plain.status_code == 302 and htmx["HX-Redirect"] == reverse("app", args=["web"])
    assert Release.objects.filter(app=app).count() == 2


# Strict CSP: no inline styles or scripts; what users typed is escaped


def test_no_app_page_or_fragment_has_inline_styles_or_scripts(
    owner_client: Client, app: App
) -> None:
    deployed(app, "nginx:1.27", config={"env": {"A": "<b>x</b>"}})
    app.secrets = {"API_KEY": encryption.encrypt("<script>alert(1)</script>")}
    app.save()
    bad = deployed(app, "nginx:1.28", status="rolled_back", rollout_state_reason="<b>no</b>")
    factories.make_event(bad, message="<script>alert(1)</script> has started 1 tasks")
    rolling = deployed(app, "nginx:1.29", status="in_progress", desired_count=3, running_count=1)
    factories.make_job(app.team, app, kind="apply_scaling", status="running")
    urls = [
        reverse("overview"),
        reverse("app_new"),
        reverse("app", args=["web"]),
        reverse("app_releases", args=["web"]),
        reverse("app_scaling", args=["web"]),
        reverse("deployment", args=["web", bad.pk]),
        reverse("deployment", args=["web", rolling.pk]),
        reverse("app", args=["nope"]),
    ]
    responses = [(url, owner_client.get(url).text) for url in urls]
    responses += [(f"{url} (htmx)", owner_client.get(url, **HTMX).text) for url in urls[2:7]]  # type: ignore[arg-type]
    posts = [
        (reverse("app_new"), {"name": "<script>"}),
        (reverse("app_deploy", args=["web"]), {"image": "<script>alert(1)</script>"}),
        (reverse("app_config", args=["web"]), {"config_vars": "<b>x</b>"}),
        (reverse("app_secret_set", args=["web"]), {"name": "<b>x</b>", "value": "<b>x</b>"}),
        (reverse("app_delete", args=["web"]), {"confirm_name": "<b>x</b>"}),
        (reverse("app_scaling", args=["web"]), {"mode": "x"}),
        (reverse("app_settings", args=["web"]), {"port": "0", "command": "<b>x</b>"}),
    ]
    for url, form in posts:
        responses.append((f"POST {url}", owner_client.post(url, form).text))
        responses.append((f"POST {url} (htmx)", owner_client.post(url, form, **HTMX).text))  # type: ignore[arg-type]

    for url, html in responses:
        assert "style=" not in html, url
        assert not INLINE_SCRIPT.search(html), url
        assert "<script>alert(1)</script>" not in html and "<b>" not in html, url


# Query counts at two sizes


def _apps(app: App, n: int) -> None:
    for i in range(n):
        other = factories.make_app(app.cluster)
        deployed(other, "nginx:1.27")
        if i % 3 == 0:
            deployed(other, "nginx:1.28", status="in_progress")
        elif i % 3 == 1:
            deployed(other, "nginx:crashloop", status="rolled_back")
        else:
            factories.make_job(app.team, other, kind="delete_app", status="queued")


def _releases(app: App, n: int) -> None:
    Deployment.objects.filter(app=app, status__in=Deployment.ACTIVE_STATUSES).delete()
    for i in range(n):
        rollout = deployed(app, f"nginx:1.{i}", config={"env": {f"V{i}": "x"}, "cpu": 256})
        factories.make_event(rollout, message=f"(service web) has started {i} tasks")
    rolling = deployed(app, "nginx:2", status="in_progress")
    for i in range(n):
        factories.make_event(
            rolling, message=f"has stopped {i} running tasks",
            created_at=timezone.now() + timedelta(seconds=i),
        )  # fmt: skip


def _events(app: App, n: int) -> None:
    rolling = Deployment.objects.get(app=app, status="in_progress")
    for i in range(n):
        factories.make_event(rolling, message=f"(service web) has started {i} tasks")
        factories.make_job(app.team, app, kind="apply_scaling", status="succeeded")


CASES: list[tuple[str, Callable[[Deployment], str], Callable[[App, int], None], bool]] = [
    ("overview", lambda d: reverse("overview"), _apps, False),
    ("overview apps fragment", lambda d: reverse("overview"), _apps, True),
    ("app", lambda d: reverse("app", args=["web"]), _releases, False),
    ("rollout fragment", lambda d: reverse("app", args=["web"]), _releases, True),
    ("releases", lambda d: reverse("app_releases", args=["web"]), _releases, False),
    ("deployment", lambda d: reverse("deployment", args=["web", d.pk]), _events, False),
    ("deployment fragment", lambda d: reverse("deployment", args=["web", d.pk]), _events, True),
    ("scaling", lambda d: reverse("app_scaling", args=["web"]), _events, False),
    ("new app", lambda d: reverse("app_new"), _apps, False),
]


@pytest.mark.parametrize(("what", "url", "add", "htmx"), CASES, ids=[c[0] for c in CASES])
def test_app_pages_run_as_many_queries_for_3_rows_as_for_30(
    owner_client: Client,
    data: Deployment,
    what: str,
    url: Callable[[Deployment], str],
    add: Callable[[App, int], None],
    htmx: bool,
) -> None:
    headers: Any = {"HTTP_HX_TARGET": "apps", **HTMX} if htmx else {}
    add(data.app, 3)
    few = query_count(owner_client, url(data), **headers)
    add(data.app, 27)
    many = query_count(owner_client, url(data), **headers)

    assert few == many, f"{what}: {few} queries with few rows, {many} with many"

"""A planted secret, set through the page and through the API and rolled out on the sandbox, then
searched for — as it is and in its obvious encodings — in every page, fragment, API answer and
admin page of its team and app, in every log record, and in the database outside App.secrets
(where it must be encrypted). Refusals and crashes must not echo it either.

tests/test_secrets.py covers the way to ECS (SSM SecureStrings only) and key rotation.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.core import serializers
from django.core.exceptions import ValidationError
from django.db.models import Model
from django.test import Client
from django.urls import reverse
from django.utils.html import escape
from django.utils.timezone import now
from django.views.debug import ExceptionReporter

from deployments import encryption, services
from deployments.models import App, AuditEntry, Deployment, Job, Membership, Release
from deployments.sandbox.server import Sandbox
from tests import factories
from tests.api.conftest import make_api_token
from tests.test_deploys import deploy, follow

# Characters that HTML, JSON and URL encoding each change, so every encoding is distinct; and a
# marker no encoding but base64 changes, to catch the value however else it is quoted (repr()).
MARKER = "Pl4nted"
PAGE_VALUE = MARKER + "<&\"'>-päge-☃-Zq81"
API_VALUE = MARKER + "<&\"'>-äpi-☃-Xw27"
HTMX = {"HTTP_HX_REQUEST": "true"}


def encodings(value: str) -> set[str]:
    """The value as it is and as it would show if it were rendered, serialised or logged."""
    return {
        value,
        escape(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        base64.b64encode(value.encode()).decode(),
        base64.urlsafe_b64encode(value.encode()).decode(),
        quote(value),
        quote_plus(value),
    }


PLANTED = encodings(PAGE_VALUE) | encodings(API_VALUE) | {MARKER}


def leaks(text: str) -> list[str]:
    return [form for form in PLANTED if form in text]


def _htmx_target(target: str) -> dict[str, str]:
    return {**HTMX, "HTTP_HX_TARGET": target}


def dashboard_bodies(client: Client, app: App) -> Iterator[tuple[str, str]]:
    """Every page and fragment of the team and the app."""
    pages: list[tuple[str, dict[str, str]]] = [
        (reverse("overview"), {}),
        (reverse("overview"), _htmx_target("apps")),
        (reverse("overview"), _htmx_target("clusters")),
        (reverse("accounts"), {}),
        (reverse("activity"), {}),
        (reverse("cluster", args=[app.cluster.name]), {}),
        (reverse("app", args=[app.name]), {}),
        (reverse("app", args=[app.name]), HTMX),
        (reverse("app_releases", args=[app.name]), {}),
        (reverse("app_scaling", args=[app.name]), {}),
    ]
    for deployment in app.deployments.all():
        url = reverse("deployment", args=[app.name, deployment.pk])
        pages += [(url, {}), (url, HTMX)]
    for url, headers in pages:
        response = client.get(url, **headers)  # type: ignore[arg-type]
        assert response.status_code in (200, 286), url
        yield f"GET {url}" + (f" {headers}" if headers else ""), response.text


def api_bodies(client: Client, app: App) -> Iterator[tuple[str, str]]:
    paths = ["/apps", f"/apps/{app.name}", f"/apps/{app.name}/releases", "/clusters",
             f"/clusters/{app.cluster.name}", "/accounts"]  # fmt: skip
    paths += [f"/deployments/{pk}" for pk in app.deployments.values_list("pk", flat=True)]
    for path in paths:
        response = client.get("/api/v1" + path)
        assert response.status_code == 200, path
        yield f"GET /api/v1{path}", response.content.decode()


def admin_models() -> list[type[Model]]:
    return [model for model in admin.site._registry if model._meta.app_label == "deployments"]


def admin_bodies(client: Client) -> Iterator[tuple[str, str]]:
    """The changelist and every change page of every model support sees in the admin."""
    for model in admin_models():
        meta = model._meta
        urls = [reverse(f"admin:deployments_{meta.model_name}_changelist")]
        urls += [
            reverse(f"admin:deployments_{meta.model_name}_change", args=[pk])
            for pk in model._default_manager.values_list("pk", flat=True)
        ]
        for url in urls:
            response = client.get(url)
            assert response.status_code == 200, url
            yield f"GET {url}", response.text


def stored_rows() -> Iterator[tuple[str, str]]:
    """Every row of the project's models, serialised; App.secrets is checked on its own."""
    for model in admin_models():
        for row in model._default_manager.all():
            if isinstance(row, App):
                row.secrets = {}  # not saved: only left out of what is searched here
            yield f"{model.__name__} {row.pk}", serializers.serialize("json", [row])


@pytest.fixture
def api_client(app: App) -> Client:
    client = Client()
    client.defaults["HTTP_AUTHORIZATION"] = "Bearer " + make_api_token(app.team)[1]
    return client


@pytest.fixture
def owner_client(app: App) -> Client:
    client = Client()
    client.force_login(factories.make_user(app.team, Membership.Role.OWNER, username="olivia"))
    return client


@pytest.mark.django_db(transaction=True)
def test_a_planted_secret_shows_nowhere(
    app: App, sandbox: Sandbox, owner_client: Client, api_client: Client,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django")
    bodies: list[tuple[str, str]] = []
    deploy(app, "nginx:1.27")

    # Set through the page (plain and HTMX refusals first), then through the API.
    page_url = reverse("app_secret_set", args=["web"])
    for headers in ({}, HTMX):
        refused = owner_client.post(page_url, {"name": "1BAD", "value": PAGE_VALUE}, **headers)  # type: ignore[arg-type]
        assert refused.status_code == 200 and "not a valid variable name" in refused.text
        bodies.append((f"POST {page_url} refused {headers}", refused.text))
    saved = owner_client.post(page_url, {"name": "PAGE_SECRET", "value": PAGE_VALUE}, follow=True)
    bodies.append((f"POST {page_url}", saved.text))
    assert "Saved the secret PAGE_SECRET as v2" in saved.text
    assert follow(Deployment.objects.get(release__version=2)).status == "succeeded"

    body = json.dumps({"value": API_VALUE})
    url = "/api/v1/apps/web/secrets/{}"
    refused = api_client.put(url.format("1BAD"), body, content_type="application/json")
    assert refused.status_code == 400
    set_ = api_client.put(url.format("API_SECRET"), body, content_type="application/json")
    assert set_.status_code == 202, set_.content
    bodies += [("PUT 1BAD", refused.content.decode()), ("PUT API_SECRET", set_.content.decode())]
    assert follow(Deployment.objects.get(pk=set_.json()["deployment"]["id"])).status == "succeeded"

    support = Client()
    support.force_login(User.objects.create_superuser("support", "s@example.com", "pw"))
    bodies += [
        *dashboard_bodies(owner_client, app),
        *api_bodies(api_client, app),
        *admin_bodies(support),
    ]

    opened = " ".join(where for where, _ in bodies)
    for model in ("app", "release", "auditentry", "job", "deployment", "deploymentevent"):
        assert re.search(rf"/admin/deployments/{model}/\d+/change/", opened), model
    assert [(where, leaks(text)) for where, text in bodies if leaks(text)] == []
    assert [(where, leaks(text)) for where, text in stored_rows() if leaks(text)] == []
    audit = list(AuditEntry.objects.filter(action="app.secret").values_list("details", flat=True))
    job_logs = list(Job.objects.filter(kind="run_deployment").values_list("log", "error"))
    assert len(audit) == 2 and all(log for log, _ in job_logs)
    assert leaks(json.dumps([audit, job_logs])) == []
    assert leaks(json.dumps([audit, job_logs], ensure_ascii=False)) == []
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) > 10  # the capture works: jobs, the tracker and requests log
    assert [message for message in messages if leaks(message)] == []
    assert leaks(caplog.text) == []
    # Names are shown; the values are stored encrypted, and only there.
    assert "<code>PAGE_SECRET</code>" in dict(bodies)[f"GET {reverse('app', args=['web'])}"]
    assert json.loads(dict(bodies)["GET /api/v1/apps/web"])["secret_names"] == [
        "API_SECRET", "PAGE_SECRET",
    ]  # fmt: skip
    latest = app.releases.latest("version")
    release_admin = reverse("admin:deployments_release_change", args=[latest.pk])
    assert "API_SECRET" in dict(bodies)[f"GET {release_admin}"]
    app.refresh_from_db()
    assert leaks(json.dumps(app.secrets)) == []
    assert {name: encryption.decrypt(token) for name, token in app.secrets.items()} == {
        "PAGE_SECRET": PAGE_VALUE, "API_SECRET": API_VALUE,
    }  # fmt: skip


@pytest.mark.django_db
def test_a_refused_secret_is_not_echoed_by_the_service(team: Any) -> None:
    cluster = factories.make_cluster(factories.make_account(team), status="ready")
    web = factories.make_app(cluster, name="web", config_vars={"PLAIN": "x"})
    factories.make_deployment(factories.make_release(web), finished_at=now())

    refusals = []
    names = ["1BAD", "A B", "<script>", "PLAIN", "BIG", "NUL", "AWS_KEY"]
    values = [PAGE_VALUE] * 4 + [PAGE_VALUE * 200, PAGE_VALUE + "\0", PAGE_VALUE]
    for name, value in zip(names, values, strict=True):
        with pytest.raises(ValidationError) as refused:
            services.secret_set(app=web, actor=None, name=name, value=value)
        refusals.append(refused.value)

    for error in refusals:
        assert leaks(str(error)) == [] and leaks(" ".join(error.messages)) == [], error
    web.refresh_from_db()
    assert web.secrets == {} and Release.objects.count() == 1


def _crash(*args: Any, **kwargs: Any) -> str:
    raise RuntimeError("the key store is down")


@pytest.mark.django_db
@pytest.mark.parametrize("via", ["page", "api"])
def test_a_crash_while_setting_a_secret_reports_no_value(
    team: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, via: str
) -> None:
    """Django's error report (the admins' email: the request's data and every frame's local
    variables) leaves the value out."""
    cluster = factories.make_cluster(factories.make_account(team), status="ready")
    web = factories.make_app(cluster, name="web")
    factories.make_deployment(factories.make_release(web), finished_at=now())
    monkeypatch.setattr(encryption, "encrypt", _crash)
    client = Client(raise_request_exception=False)
    if via == "page":
        client.force_login(factories.make_user(team, Membership.Role.OWNER))
        response = client.post(
            reverse("app_secret_set", args=["web"]), {"name": "API_KEY", "value": PAGE_VALUE}
        )
    else:
        client.defaults["HTTP_AUTHORIZATION"] = "Bearer " + make_api_token(team)[1]
        response = client.put(
            "/api/v1/apps/web/secrets/API_KEY",
            json.dumps({"value": PAGE_VALUE}),
            content_type="application/json",
        )

    assert response.status_code == 500
    [record] = [r for r in caplog.records if r.name == "django.request" and r.exc_info]
    assert record.exc_info is not None
    exc_type, exc_value, traceback = record.exc_info
    request = record.__dict__["request"]  # set by Django's request logging
    reporter = ExceptionReporter(request, exc_type, exc_value, traceback, is_email=True)
    report = reporter.get_traceback_html()
    assert "the key store is down" in report and "Local Vars" in report
    assert leaks(report) == [] and leaks(response.content.decode()) == []
    assert leaks(caplog.text) == []

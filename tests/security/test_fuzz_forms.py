"""The dashboard's forms under Hypothesis: hostile and random input (HTML and JS, unicode, huge
and negative numbers, min > max) never causes a 500, writes nothing when refused, and is escaped
wherever it is shown back; a secret's value is never shown back at all."""

from __future__ import annotations

import re
from html import escape
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from deployments.forms import TASK_SIZE_SUGGESTIONS
from deployments.models import App, AuditEntry, AwsAccount, Cluster, Deployment, Team
from tests import factories

HOSTILE = st.sampled_from(
    [
        "<script>alert(1)</script>",
        '"><img src=x onerror=alert(1)>',
        "javascript:alert(1)",
        "'; DROP TABLE deployments_cluster; --",
        "\u202eevil",
        "名前",
        "a" * 5000,
        "",
        " ",
        "../../etc/passwd",
    ]
)
TEXT = st.one_of(HOSTILE, st.text(max_size=80))
NUMBER = st.one_of(st.integers(min_value=-(10**12), max_value=10**12).map(str), TEXT)
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def signed_in(client: Client, owner: Any, team: Team) -> Client:
    factories.make_account(team, name="sandbox")
    client.force_login(owner)
    return client


MARKUP = re.compile(r"<[A-Za-z/!]")


def assert_refused_or_escaped(response: Any, sent: dict[str, str]) -> None:
    assert response.status_code < 500
    for value in sent.values():
        # Markup we sent must come back escaped (short values may occur in the page anyway).
        if len(value) >= 8 and MARKUP.search(value):
            assert value not in response.text


@FUZZ
@given(name=TEXT, region=TEXT, instance_type=TEXT, low=NUMBER, desired=NUMBER, high=NUMBER)
@example(name="web", region="us-east-1", instance_type="t3.medium", low="2", desired="2",
         high="4")  # fmt: skip
@pytest.mark.django_db
def test_cluster_form(
    signed_in: Client, team: Team, name: str, region: str, instance_type: str, low: str,
    desired: str, high: str,
) -> None:  # fmt: skip
    before = Cluster.objects.count()
    sent = {
        "name": name, "account": str(team.aws_accounts.get().pk), "region": region,
        "instance_type": instance_type, "min_instances": low, "desired_instances": desired,
        "max_instances": high,
    }  # fmt: skip

    response = signed_in.post(reverse("cluster_new"), sent)

    assert_refused_or_escaped(response, sent)
    created = Cluster.objects.count() - before
    assert created == (1 if response.status_code == 302 else 0)


@FUZZ
@given(name=TEXT, region=TEXT, role_arn=TEXT)
@pytest.mark.django_db
def test_account_form(signed_in: Client, name: str, region: str, role_arn: str) -> None:
    before = AwsAccount.objects.count()
    sent = {"name": name, "region": region, "role_arn": role_arn}

    response = signed_in.post(reverse("account_connect"), sent, HTTP_HX_REQUEST="true")

    assert_refused_or_escaped(response, sent)
    if response.status_code == 200:
        assert AwsAccount.objects.count() == before


@FUZZ
@given(low=NUMBER, desired=NUMBER, high=NUMBER, instance_type=TEXT, confirm=TEXT)
@pytest.mark.django_db
def test_resize_and_delete_forms(
    signed_in: Client, team: Team, low: str, desired: str, high: str, instance_type: str,
    confirm: str,
) -> None:  # fmt: skip
    cluster, _ = Cluster.objects.get_or_create(
        team=team, name="main",
        defaults={"account": team.aws_accounts.get(), "region": "us-east-1", "status": "ready"},
    )  # fmt: skip
    resize = {"min_instances": low, "desired_instances": desired, "max_instances": high,
              "instance_type": instance_type}  # fmt: skip

    resized = signed_in.post(reverse("cluster_resize", args=["main"]), resize)
    deleted = signed_in.post(reverse("cluster_delete", args=["main"]), {"confirm_name": confirm})

    assert_refused_or_escaped(resized, resize)
    assert_refused_or_escaped(deleted, {"confirm_name": confirm})
    cluster.refresh_from_db()
    assert cluster.status == ("deleting" if confirm == "main" else "ready")


@FUZZ
@given(name=TEXT, value=TEXT, htmx=st.booleans())
@example(name="API_KEY", value="planted-Form-value", htmx=False)
@example(name="1BAD", value="planted-Form-value", htmx=True)
@pytest.mark.django_db
def test_secret_form(signed_in: Client, team: Team, name: str, value: str, htmx: bool) -> None:
    """Whatever is sent, the value is never shown back: not in the form, not in an error."""
    app = App.objects.filter(team=team).first() or _deployed_app(team)
    headers: Any = {"HTTP_HX_REQUEST": "true"} if htmx else {}

    response = signed_in.post(
        reverse("app_secret_set", args=[app.name]), {"name": name, "value": value}, **headers
    )

    assert_refused_or_escaped(response, {"name": name})
    if len(value) >= 8 and value not in name:
        assert value not in response.text and escape(value) not in response.text
    Deployment.objects.filter(status="queued").update(status="succeeded")


SIZE = st.one_of(st.sampled_from([value for value, _ in TASK_SIZE_SUGGESTIONS]), TEXT)
PATH = st.one_of(st.sampled_from(["/", "/healthz", "/a b"]), TEXT)
SETTINGS = ("port", "health_check_path", "cpu", "memory", "command", "min_healthy_percent",
            "max_percent", "circuit_breaker", "rollout_timeout_seconds")  # fmt: skip


@FUZZ
@given(
    port=NUMBER, path=PATH, size=SIZE, command=TEXT, low=NUMBER, high=NUMBER, timeout=NUMBER,
    breaker=st.booleans(), deploy_now=st.booleans(), htmx=st.booleans(),
)  # fmt: skip
@example(port="8080", path="/healthz", size="512/1024", command="<script>alert(1)</script>",
         low="50", high="150", timeout="600", breaker=False, deploy_now=True,
         htmx=False)  # fmt: skip
@example(port="80", path="/", size="4096/30720", command="", low="100", high="200",
         timeout="900", breaker=True, deploy_now=False, htmx=True)  # fmt: skip
@pytest.mark.django_db
def test_app_settings_form(
    signed_in: Client, team: Team, port: str, path: str, size: str, command: str, low: str,
    high: str, timeout: str, breaker: bool, deploy_now: bool, htmx: bool,
) -> None:  # fmt: skip
    """A refusal (the form again, with errors or "Nothing changed.") writes nothing; a save
    changes the row and records one app.update."""
    app = App.objects.filter(team=team).first() or _deployed_app(team)
    sent = {
        "port": port, "health_check_path": path, "size": size, "command": command,
        "min_healthy_percent": low, "max_percent": high, "rollout_timeout_seconds": timeout,
    }  # fmt: skip
    ticked = {"circuit_breaker": breaker, "deploy_now": deploy_now}
    checkboxes = {name: "on" for name, on in ticked.items() if on}
    updates = AuditEntry.objects.filter(action="app.update")
    before = App.objects.values_list(*SETTINGS).get(pk=app.pk), updates.count()
    headers: Any = {"HTTP_HX_REQUEST": "true"} if htmx else {}

    response = signed_in.post(
        reverse("app_settings", args=[app.name]), sent | checkboxes, **headers
    )

    assert_refused_or_escaped(response, sent)
    saved = response.status_code == 302 or "HX-Redirect" in response
    after = App.objects.values_list(*SETTINGS).get(pk=app.pk), updates.count()
    if saved:
        assert after[0] != before[0] and after[1] == before[1] + 1
    else:
        assert response.status_code == 200 and after == before
    Deployment.objects.filter(status="queued").update(status="succeeded")


def _deployed_app(team: Team) -> App:
    cluster = factories.make_cluster(team.aws_accounts.get(), name="main", status="ready")
    app = factories.make_app(cluster, name="web")
    factories.make_deployment(factories.make_release(app), finished_at=timezone.now())
    return app

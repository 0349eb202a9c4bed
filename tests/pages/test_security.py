"""CSRF on every form, and markup the strict CSP allows: no inline styles or scripts."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from deployments.models import AuditEntry, AwsAccount, Cluster, Job, Team
from tests import factories
from tests.pages.conftest import HTMX
from tests.pages.test_access import WRITES

pytestmark = pytest.mark.django_db

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)


def _counts() -> tuple[int, ...]:
    return (
        AwsAccount.objects.count(),
        Cluster.objects.filter(status="ready").count(),
        Job.objects.count(),
        AuditEntry.objects.count(),
    )


@pytest.mark.parametrize(("name", "args", "form"), [*WRITES, ("team_switch", [], {"team": "acme"})])
def test_posts_without_a_csrf_token_are_refused(
    owner: Any, cluster: Cluster, name: str, args: Any, form: dict[str, str]
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    Cluster.objects.filter(pk=cluster.pk).update(status="ready")
    form = form | ({"account": str(cluster.account.pk)} if "account" in form else {})
    before = _counts()

    response = client.post(reverse(name, args=args), form)

    assert response.status_code == 403
    assert _counts() == before


def test_posts_with_the_token_from_the_page_are_accepted(owner: Any, team: Team) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    page = client.get(reverse("accounts"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token is not None

    response = client.post(
        reverse("account_connect_sandbox"), {"csrfmiddlewaretoken": token.group(1)}
    )

    assert response.status_code == 302
    assert AwsAccount.objects.filter(team=team, name="sandbox").exists()


def test_htmx_requests_carry_the_token_in_a_header(owner: Any, team: Team) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    page = client.get(reverse("accounts")).text
    header = re.search(r"hx-headers='\{\"X-CSRFToken\": \"([^\"]+)\"\}'", page)
    assert header is not None

    response = client.post(
        reverse("account_connect"),
        {"name": "Bad Name", "region": "eu-west-1", "role_arn": "x"},
        HTTP_X_CSRFTOKEN=header.group(1),
        **HTMX,  # type: ignore[arg-type]
    )

    assert response.status_code == 200 and "Use 1–40 lowercase" in response.text


def _every_response(client: Client, team: Team) -> list[tuple[str, str]]:
    account = factories.make_account(team, name="sandbox")
    role = factories.make_account(
        team,
        name="prod",
        mode="assume_role",
        role_arn="arn:aws:iam::123456789012:role/TinyStacksAccess",
        verification_error="AccessDenied <script>alert(1)</script>",
    )
    factories.make_job(team, role, status="running")
    busy = factories.make_cluster(
        account,
        name="main",
        status="provisioning",
        steps=[{"name": "network", "status": "running", "error": "<b>waiting</b>"}],
        resources={"vpc_id": "vpc-1", "availability_zones": ["a"], "subnet_ids": ["s"]},
    )
    factories.make_cluster(account, name="bad", status="failed", status_reason="x: y")
    factories.make_cluster(account, name="ok", status="ready")
    factories.make_audit_entry(team, None, target_repr="<i>x</i>")
    factories.make_app(busy, name="web")
    urls = [
        reverse("overview"),
        reverse("accounts"),
        reverse("account", args=["sandbox"]),
        reverse("account", args=["prod"]),
        reverse("cluster_new"),
        reverse("cluster", args=["main"]),
        reverse("cluster", args=["bad"]),
        reverse("cluster", args=["ok"]),
        reverse("activity"),
        reverse("cluster", args=["nope"]),  # the 404 page
    ]
    responses = [(url, client.get(url).text) for url in urls]
    responses += [(f"{url} (htmx)", client.get(url, **HTMX).text) for url in urls[:8]]  # type: ignore[arg-type]
    posts = [
        (reverse("account_connect"), {"name": "X"}),
        (reverse("cluster_new"), {"name": "X"}),
        (reverse("cluster_resize", args=["ok"]), {"min_instances": "9"}),
        (reverse("cluster_delete", args=["ok"]), {"confirm_name": "no"}),
    ]
    for url, form in posts:
        responses.append((f"POST {url}", client.post(url, form).text))
        responses.append((f"POST {url} (htmx)", client.post(url, form, **HTMX).text))  # type: ignore[arg-type]
    return responses


def test_no_page_or_fragment_has_inline_styles_or_scripts(owner_client: Client, team: Team) -> None:
    for url, html in _every_response(owner_client, team):
        assert "style=" not in html, url
        assert not INLINE_SCRIPT.search(html), url
        assert "<script>alert(1)</script>" not in html and "<b>waiting</b>" not in html, url


def test_a_viewer_sees_a_clear_403_page(viewer_client: Client, cluster: Cluster) -> None:
    response = viewer_client.post(reverse("cluster_retry", args=["main"]))

    assert response.status_code == 403
    assert "Viewers can look but not change anything." in response.text
    assert "style=" not in response.text

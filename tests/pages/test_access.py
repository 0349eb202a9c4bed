"""Who may see and change what: every page, fragment and form for each role, an outsider and
someone signed out."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from deployments.models import AuditEntry, AwsAccount, Cluster, Job
from tests import factories
from tests.pages.conftest import HTMX

pytestmark = pytest.mark.django_db

PAGES = [
    ("overview", []),
    ("accounts", []),
    ("account", ["sandbox"]),
    ("cluster_new", []),
    ("cluster", ["main"]),
    ("activity", []),
]
FRAGMENTS = [("overview", []), ("accounts", []), ("account", ["sandbox"]), ("cluster", ["main"])]
OBJECT_PAGES = [("account", ["sandbox"]), ("cluster", ["main"])]
WRITES: list[tuple[str, list[str], dict[str, str]]] = [
    ("account_connect_sandbox", [], {}),
    (
        "account_connect",
        [],
        {
            "name": "prod",
            "region": "eu-west-1",
            "role_arn": "arn:aws:iam::123456789012:role/TinyStacksAccess",
        },
    ),
    ("account_verify", ["sandbox"], {}),
    (
        "cluster_new",
        [],
        {
            "name": "second",
            "account": "",
            "region": "",
            "instance_type": "t3.medium",
            "min_instances": "2",
            "desired_instances": "2",
            "max_instances": "4",
        },
    ),
    (
        "cluster_resize",
        ["main"],
        {
            "instance_type": "t3.large",
            "min_instances": "1",
            "desired_instances": "3",
            "max_instances": "5",
        },
    ),
    ("cluster_retry", ["main"], {}),
    ("cluster_delete", ["main"], {"confirm_name": "main"}),
]
OBJECT_WRITES = [w for w in WRITES if w[1]]


def _rows() -> tuple[object, ...]:
    return (
        AwsAccount.objects.count(),
        Cluster.objects.count(),
        Job.objects.count(),
        AuditEntry.objects.count(),
        *Cluster.objects.order_by("pk").values_list("desired_instances", flat=True),
        *Cluster.objects.order_by("pk").values_list("status", flat=True),
    )


@pytest.fixture
def data(cluster: Cluster) -> Cluster:
    return cluster


@pytest.mark.parametrize("role", ["owner", "deployer", "viewer"])
@pytest.mark.parametrize(("name", "args"), PAGES)
def test_members_read_every_page(
    client: Client, request: pytest.FixtureRequest, data: Cluster, role: str, name: str, args: Any
) -> None:
    client.force_login(request.getfixturevalue(role))

    response = client.get(reverse(name, args=args))

    assert response.status_code == 200
    assert "Acme" in response.text


@pytest.mark.parametrize("role", ["owner", "deployer", "viewer"])
@pytest.mark.parametrize(("name", "args"), FRAGMENTS)
def test_members_read_every_fragment(
    client: Client, request: pytest.FixtureRequest, data: Cluster, role: str, name: str, args: Any
) -> None:
    client.force_login(request.getfixturevalue(role))

    response = client.get(reverse(name, args=args), **HTMX)  # type: ignore[arg-type]

    assert response.status_code in (200, 286)
    assert "<html" not in response.text and "topbar" not in response.text
    assert response["Vary"] and "HX-Request" in response["Vary"]


@pytest.mark.parametrize(("name", "args", "form"), WRITES)
def test_a_viewer_cannot_write(
    client: Client, viewer: Any, data: Cluster, name: str, args: Any, form: dict[str, str]
) -> None:
    client.force_login(viewer)
    form = form | ({"account": str(data.account.pk)} if "account" in form else {})
    before = _rows()

    response = client.post(reverse(name, args=args), form)

    assert response.status_code == 403
    assert _rows() == before


def test_a_viewer_sees_no_write_controls(client: Client, viewer: Any, data: Cluster) -> None:
    client.force_login(viewer)

    pages = [
        client.get(reverse("accounts")).text,
        client.get(reverse("account", args=["sandbox"])).text,
        client.get(reverse("cluster", args=["main"])).text,
        client.get(reverse("overview")).text,
    ]

    assert all('<form method="post" action="/accounts' not in page for page in pages)
    assert not any("Connect the local sandbox" in page for page in pages)
    assert not any("Verify again" in page or "Delete cluster" in page for page in pages)
    assert not any("New cluster" in page for page in pages)


@pytest.mark.parametrize(("name", "args"), OBJECT_PAGES)
def test_an_outsider_gets_404_for_our_objects(
    client: Client, outsider: Any, data: Cluster, name: str, args: Any
) -> None:
    client.force_login(outsider)

    assert client.get(reverse(name, args=args)).status_code == 404
    assert client.get(reverse(name, args=args), **HTMX).status_code == 404  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "args", "form"), OBJECT_WRITES)
def test_an_outsider_cannot_write_to_our_objects(
    client: Client, outsider: Any, data: Cluster, name: str, args: Any, form: dict[str, str]
) -> None:
    client.force_login(outsider)
    before = _rows()

    response = client.post(reverse(name, args=args), form)

    assert response.status_code == 404
    assert _rows() == before


def test_an_outsider_cannot_use_our_account_for_a_cluster(
    client: Client, outsider: Any, other_team: Any, data: Cluster
) -> None:
    factories.make_account(other_team, name="theirs")
    client.force_login(outsider)
    before = _rows()

    response = client.post(
        reverse("cluster_new"),
        {
            "name": "sneaky",
            "account": str(data.account.pk),
            "instance_type": "t3.medium",
            "min_instances": "2",
            "desired_instances": "2",
            "max_instances": "4",
        },
    )

    assert response.status_code == 200
    assert "Select a valid choice" in response.text
    assert _rows() == before


@pytest.mark.parametrize(("name", "args"), PAGES)
def test_an_outsider_sees_only_their_own_team(
    client: Client, outsider: Any, data: Cluster, name: str, args: Any
) -> None:
    client.force_login(outsider)

    response = client.get(reverse(name, args=args))

    assert response.status_code in (200, 404)
    assert "Acme" not in response.text


@pytest.mark.parametrize(("name", "args"), PAGES)
def test_signed_out_visitors_are_sent_to_sign_in(
    client: Client, data: Cluster, name: str, args: Any
) -> None:
    response = client.get(reverse(name, args=args))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(("name", "args", "form"), WRITES)
def test_signed_out_visitors_cannot_write(
    client: Client, data: Cluster, name: str, args: Any, form: dict[str, str]
) -> None:
    before = _rows()

    response = client.post(reverse(name, args=args), form)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert _rows() == before


def test_a_user_without_a_team_gets_404_on_team_pages(client: Client, data: Cluster) -> None:
    client.force_login(factories.make_user())

    assert client.get(reverse("accounts")).status_code == 404
    assert client.get(reverse("cluster", args=["main"])).status_code == 404
    assert client.get(reverse("overview")).status_code == 200


def test_staff_see_links_to_the_admin_and_the_queues(
    client: Client, owner: Any, data: Cluster
) -> None:
    client.force_login(owner)
    assert reverse("admin:index") not in client.get(reverse("accounts")).text
    owner.is_staff = True
    owner.save()

    page = client.get(reverse("accounts")).text

    assert reverse("admin:index") in page and reverse("django_rq:home") in page

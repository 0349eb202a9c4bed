from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from deployments.capacity import INSTANCE_TYPES
from deployments.models import AuditEntry, AwsAccount, Cluster, Job, Team
from tests import factories
from tests.pages.conftest import HTMX

pytestmark = pytest.mark.django_db


def _create_form(owner_account: AwsAccount, **fields: str) -> dict[str, str]:
    return {
        "name": "main",
        "account": str(owner_account.pk),
        "region": "",
        "instance_type": "t3.medium",
        "min_instances": "2",
        "desired_instances": "2",
        "max_instances": "4",
        **fields,
    }


def _counts() -> tuple[int, int, int]:
    return Cluster.objects.count(), Job.objects.count(), AuditEntry.objects.count()


# Create


def test_the_new_cluster_form_offers_the_teams_accounts_and_defaults(
    owner_client: Client, account: AwsAccount, other_team: Team
) -> None:
    factories.make_account(other_team, name="not-ours")

    page = owner_client.get(reverse("cluster_new")).text

    assert "sandbox · eu-west-1 · Local sandbox (simulated AWS)" in page
    assert "not-ours" not in page
    assert 'name="min_instances" value="2"' in page
    assert 'name="desired_instances" value="2"' in page
    assert 'name="max_instances" value="4"' in page
    assert '<option value="t3.medium" selected>' in page
    assert 'name="name" value="main"' in page


def test_the_new_cluster_form_preselects_the_account_it_came_from(
    owner_client: Client, team: Team, account: AwsAccount
) -> None:
    other = factories.make_account(team, name="other")

    page = owner_client.get(reverse("cluster_new") + "?account=other").text

    assert f'<option value="{other.pk}" selected>' in page


def test_without_an_account_the_form_says_to_connect_one(owner_client: Client) -> None:
    page = owner_client.get(reverse("cluster_new")).text

    assert "Connect an AWS account first" in page and reverse("accounts") in page


def test_creating_a_cluster_queues_its_provisioning_and_shows_its_page(
    client: Client, deployer: Any, account: AwsAccount
) -> None:
    client.force_login(deployer)

    response = client.post(reverse("cluster_new"), _create_form(account), follow=True)

    cluster = Cluster.objects.get(name="main")
    assert (cluster.region, cluster.status) == ("eu-west-1", "pending")  # the account's region
    assert (cluster.min_instances, cluster.desired_instances, cluster.max_instances) == (2, 2, 4)
    assert response.redirect_chain[-1][0] == reverse("cluster", args=["main"])
    assert "Provisioning cluster main…" in response.text
    assert "Waiting for a worker to start provisioning" in response.text
    assert "Network: VPC, internet gateway and routes" in response.text  # the plan, step by step
    assert 'hx-trigger="every 2s"' in response.text
    assert Job.objects.filter(kind="provision_cluster", target_id=cluster.pk).count() == 1
    entry = AuditEntry.objects.get(action="cluster.create")
    assert entry.actor == deployer and entry.ip_address == "127.0.0.1"


def test_an_htmx_create_redirects_the_browser(owner_client: Client, account: AwsAccount) -> None:
    response = owner_client.post(
        reverse("cluster_new"),
        _create_form(account, region="us-west-2"),
        **HTMX,  # type: ignore[arg-type]
    )

    assert response["HX-Redirect"] == reverse("cluster", args=["main"])
    assert Cluster.objects.get(name="main").region == "us-west-2"


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"min_instances": "3", "desired_instances": "2"}, "Instances must satisfy min ≤ desired"),
        ({"max_instances": "101"}, "less than or equal to 100"),
        ({"name": "Not OK"}, "Use 1–40 lowercase letters"),
        ({"name": "taken"}, "This team already has a cluster named taken."),
        ({"region": "nowhere"}, "Enter an AWS region"),
        ({"instance_type": "x9.huge"}, "Select a valid choice"),
        ({"account": "999999"}, "Select a valid choice"),
        ({"desired_instances": "lots"}, "Enter a whole number"),
    ],
)
@pytest.mark.parametrize("htmx", [False, True])
def test_bad_cluster_input_shows_the_error_and_writes_nothing(
    owner_client: Client, account: AwsAccount, fields: dict[str, str], error: str, htmx: bool
) -> None:
    factories.make_cluster(account, name="taken")
    before = _counts()
    headers: Any = HTMX if htmx else {}

    response = owner_client.post(reverse("cluster_new"), _create_form(account, **fields), **headers)

    assert response.status_code == 200
    assert error in response.text
    assert _counts() == before
    if htmx:
        assert response.text.lstrip().startswith('<form id="cluster-form"')
    else:
        assert "<h1>New cluster</h1>" in response.text


def test_a_deleted_clusters_name_can_be_used_again(
    owner_client: Client, account: AwsAccount
) -> None:
    factories.make_cluster(account, name="main", status="deleted")

    owner_client.post(reverse("cluster_new"), _create_form(account))

    assert Cluster.objects.filter(name="main").count() == 2
    page = owner_client.get(reverse("cluster", args=["main"])).text
    assert "Waiting for a worker" in page  # the live one, not the deleted one


# Detail and progress


def test_provisioning_shows_step_by_step(owner_client: Client, account: AwsAccount) -> None:
    factories.make_cluster(
        account,
        name="main",
        status="provisioning",
        steps=[
            {"name": "network", "status": "done", "error": ""},
            {"name": "subnets", "status": "done", "error": ""},
            {"name": "security_group", "status": "running", "error": ""},
            {"name": "roles", "status": "pending", "error": ""},
        ],
        resources={
            "vpc_id": "vpc-0abc",
            "subnet_ids": ["subnet-1", "subnet-2", "subnet-3"],
            "availability_zones": ["eu-west-1a", "eu-west-1b", "eu-west-1c"],
        },
    )

    page = owner_client.get(reverse("cluster", args=["main"])).text

    assert "Provisioning" in page and "2 of 4 steps done" in page
    assert page.count("step step-done") == 2
    assert page.count("step step-running") == 1 and "In progress…" in page
    assert page.count("step step-pending") == 1
    assert "vpc-0abc" in page and "subnet-1, subnet-2, subnet-3" in page
    assert "eu-west-1c" in page
    assert "live numbers show once the cluster is ready" in page
    assert 'hx-trigger="every 2s"' in page
    assert "Resizing and deleting are available once" in page


def test_a_failure_shows_the_aws_error_and_offers_a_retry(
    owner_client: Client, account: AwsAccount
) -> None:
    message = "UnauthorizedOperation: You are not authorized to perform: ec2:CreateVpc"
    factories.make_cluster(
        account,
        name="main",
        status="failed",
        status_reason=f"network: {message}",
        steps=[{"name": "network", "status": "failed", "error": message}],
    )

    page = owner_client.get(reverse("cluster", args=["main"])).text

    assert "state state-failed" in page and "Failed" in page
    assert f"network: {message}" in page
    assert "step step-failed" in page
    assert "Retry" in page and reverse("cluster_retry", args=["main"]) in page
    assert "hx-trigger" not in page


def test_retry_queues_provisioning_again_and_the_page_follows_it(
    owner_client: Client, account: AwsAccount
) -> None:
    cluster = factories.make_cluster(account, name="main", status="failed", status_reason="x")

    response = owner_client.post(reverse("cluster_retry", args=["main"]), follow=True)

    assert Job.objects.filter(kind="provision_cluster", target_id=cluster.pk).count() == 1
    assert AuditEntry.objects.filter(action="cluster.retry").count() == 1
    assert "Provisioning cluster main again…" in response.text
    assert 'hx-trigger="every 2s"' in response.text  # the job is queued: follow it


def test_retry_of_a_cluster_that_did_not_fail_says_why(
    owner_client: Client, cluster: Cluster
) -> None:
    response = owner_client.post(reverse("cluster_retry", args=["main"]), follow=True)

    assert "Cluster main has not failed; nothing to retry." in response.text
    assert Job.objects.count() == 0


@pytest.mark.parametrize("status", ["pending", "provisioning", "deleting"])
def test_the_fragment_polls_while_the_cluster_changes(
    owner_client: Client, account: AwsAccount, status: str
) -> None:
    factories.make_cluster(account, name="main", status=status)

    response = owner_client.get(reverse("cluster", args=["main"]), **HTMX)  # type: ignore[arg-type]

    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div id="cluster-live"')
    assert 'hx-trigger="every 2s"' in response.text
    assert "<html" not in response.text and "<h1>" not in response.text


@pytest.mark.parametrize("status", ["ready", "failed", "deleted"])
def test_the_fragment_stops_polling_once_the_cluster_settles(
    owner_client: Client, account: AwsAccount, status: str
) -> None:
    cluster = factories.make_cluster(account, name="main", status=status)
    factories.make_capacity(cluster, {"eu-west-1a": 1, "eu-west-1b": 1})  # its 2, read since

    response = owner_client.get(reverse("cluster", args=["main"]), **HTMX)  # type: ignore[arg-type]

    assert response.status_code == 286
    assert response.text.lstrip().startswith('<div id="cluster-live"')
    assert "hx-trigger" not in response.text


def test_a_ready_cluster_with_a_resize_in_flight_keeps_polling(
    owner_client: Client, team: Team, cluster: Cluster
) -> None:
    factories.make_job(team, cluster, kind="scale_cluster", status="running")

    response = owner_client.get(reverse("cluster", args=["main"]), **HTMX)  # type: ignore[arg-type]

    assert response.status_code == 200 and "Resizing" in response.text


def test_a_failed_resize_job_shows_its_error(
    owner_client: Client, team: Team, cluster: Cluster
) -> None:
    factories.make_job(
        team, cluster, kind="scale_cluster", status="failed", error="Scaling failed: boom"
    )

    page = owner_client.get(reverse("cluster", args=["main"])).text

    assert "Scaling failed: boom" in page


# Live capacity, as the tick last read it


ZONES = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]


def _zoned(account: AwsAccount, **fields: Any) -> Cluster:
    """A ready cluster with a subnet in each of three zones."""
    resources = {"availability_zones": ZONES, "subnet_ids": ["subnet-a", "subnet-b", "subnet-c"]}
    return factories.make_cluster(
        account, name="main", status="ready", resources=resources, **fields
    )


def _row(page: str, zone: str) -> str:
    """The text of the capacity table's row for `zone`, tags and spacing taken out."""
    start = page.index(f"<td>{zone}</td>")
    row = page[start : page.index("</tr>", start)]
    return " ".join(re.sub(r"<[^>]+>", " ", row).split())


def test_the_page_shows_live_instances_per_zone_beside_the_plan(
    owner_client: Client, account: AwsAccount
) -> None:
    cluster = _zoned(account, desired_instances=3, max_instances=6)
    factories.make_capacity(cluster, {"eu-west-1a": 1, "eu-west-1b": 2}, tasks_per_instance=1)

    page = owner_client.get(reverse("cluster", args=["main"])).text

    memory = INSTANCE_TYPES["t3.medium"].task_memory_mib
    assert _row(page, "eu-west-1a") == (
        f"eu-west-1a subnet-a 1 planned, 1 live 256 of 2048 units (12 %) "
        f"512 of {memory} MiB ({round(51200 / memory)} %) 1 running"
    )
    assert _row(page, "eu-west-1b").startswith("eu-west-1b subnet-b 1 planned, 2 live 512 of 4096")
    assert _row(page, "eu-west-1c") == (
        "eu-west-1c subnet-c 1 planned, 0 live 0 of 0 units (0 %) 0 of 0 MiB (0 %) 0 running"
    )
    assert "3 desired" in page and "· 3 live" in page
    assert "768 of 6144 units (12 %)" in page  # all zones
    assert "Live as of" in page and "just now" in page
    assert "Live numbers show here after" not in page


def test_draining_instances_and_disconnected_agents_are_pointed_out(
    owner_client: Client, account: AwsAccount
) -> None:
    cluster = factories.make_capacity(_zoned(account), {"eu-west-1a": 2})
    [zone] = cluster.capacity["zones"]
    zone |= {"active": 1, "draining": 1, "agents_connected": 1}
    Cluster.objects.filter(pk=cluster.pk).update(capacity={"zones": [zone]})

    page = owner_client.get(reverse("cluster", args=["main"])).text

    assert _row(page, "eu-west-1a").startswith(
        "eu-west-1a subnet-a 1 planned, 2 live (1 draining) 1 agent disconnected"
    )


def test_a_failed_read_says_when_the_last_good_one_was_and_why(
    owner_client: Client, account: AwsAccount
) -> None:
    cluster = _zoned(account)
    error = "AWS refused ListContainerInstances: AccessDeniedException: Not authorized."
    factories.make_capacity(
        cluster,
        {"eu-west-1a": 1, "eu-west-1b": 1},
        capacity_at=timezone.now() - timedelta(minutes=3),
        capacity_error=error,
    )

    page = owner_client.get(reverse("cluster", args=["main"])).text

    assert f"3\xa0minutes ago</time>: {error}" in page and "Last read" in page
    assert _row(page, "eu-west-1a").startswith("eu-west-1a subnet-a 1 planned, 1 live")


def test_a_cluster_never_read_says_why_and_shows_the_plan(
    owner_client: Client, account: AwsAccount
) -> None:
    cluster = _zoned(account)
    Cluster.objects.filter(pk=cluster.pk).update(capacity_error="Could not reach AWS at x.")

    page = owner_client.get(reverse("cluster", args=["main"])).text

    assert "Not read yet: Could not reach AWS at x." in page
    assert _row(page, "eu-west-1a") == "eu-west-1a subnet-a 1 planned — — —"


def test_a_ready_cluster_is_followed_until_its_instances_are_read(
    owner_client: Client, account: AwsAccount
) -> None:
    cluster = _zoned(account)
    url = reverse("cluster", args=["main"])

    waiting = owner_client.get(url, **HTMX)  # type: ignore[arg-type]
    assert waiting.status_code == 200 and 'hx-trigger="every 2s"' in waiting.text
    assert "Live numbers show here after the dashboard's next read of ECS" in waiting.text

    factories.make_capacity(cluster, {"eu-west-1a": 1})  # one of two joined so far
    assert owner_client.get(url, **HTMX).status_code == 200  # type: ignore[arg-type]

    factories.make_capacity(cluster, {"eu-west-1a": 1, "eu-west-1b": 1})
    settled = owner_client.get(url, **HTMX)  # type: ignore[arg-type]
    assert settled.status_code == 286 and "hx-trigger" not in settled.text
    assert "Updating as it happens" not in settled.text


def test_a_resize_is_followed_until_a_read_shows_it_but_not_for_ever(
    owner_client: Client, account: AwsAccount
) -> None:
    cluster = factories.make_capacity(_zoned(account), {"eu-west-1a": 1, "eu-west-1b": 1})
    url = reverse("cluster", args=["main"])
    Cluster.objects.filter(pk=cluster.pk).update(
        desired_instances=3, max_instances=6, updated_at=timezone.now()
    )

    assert owner_client.get(url, **HTMX).status_code == 200  # type: ignore[arg-type]

    long_ago = timezone.now() - timedelta(minutes=16)
    Cluster.objects.filter(pk=cluster.pk).update(updated_at=long_ago, capacity_at=long_ago)
    assert owner_client.get(url, **HTMX).status_code == 286  # type: ignore[arg-type]


@pytest.mark.parametrize("status", ["provisioning", "failed", "deleting"])
def test_a_cluster_that_is_not_ready_shows_no_old_live_numbers(
    owner_client: Client, account: AwsAccount, status: str
) -> None:
    cluster = factories.make_capacity(_zoned(account), {"eu-west-1a": 1, "eu-west-1b": 1})
    Cluster.objects.filter(pk=cluster.pk).update(status=status, capacity_error="boom")

    page = owner_client.get(reverse("cluster", args=["main"])).text

    assert _row(page, "eu-west-1a") == "eu-west-1a subnet-a 1 planned — — —"
    assert "live numbers show once the cluster is ready" in page
    assert "Live as of" not in page and "boom" not in page


def test_the_overview_counts_the_live_instances_once_read(
    owner_client: Client, account: AwsAccount
) -> None:
    cluster = _zoned(account, desired_instances=3, max_instances=6)

    assert "3 × t3.medium" in owner_client.get(reverse("overview")).text

    factories.make_capacity(cluster, {"eu-west-1a": 1, "eu-west-1b": 1})
    page = owner_client.get(reverse("overview")).text
    assert "2 live" in page and "of 3" in page and "3 × t3.medium" not in page


def test_an_unknown_or_impossible_cluster_name_is_404(owner_client: Client) -> None:
    assert owner_client.get(reverse("cluster", args=["nope"])).status_code == 404
    assert owner_client.get("/clusters/NOT..valid/").status_code == 404


# Resize


def test_resizing_a_ready_cluster(client: Client, deployer: Any, cluster: Cluster) -> None:
    client.force_login(deployer)

    response = client.post(
        reverse("cluster_resize", args=["main"]),
        {
            "instance_type": "t3.large",
            "min_instances": "1",
            "desired_instances": "3",
            "max_instances": "6",
        },
        follow=True,
    )

    cluster.refresh_from_db()
    assert (cluster.instance_type, cluster.min_instances) == ("t3.large", 1)
    assert (cluster.desired_instances, cluster.max_instances) == (3, 6)
    assert Job.objects.filter(kind="scale_cluster", target_id=cluster.pk).count() == 1
    assert "Resizing cluster main…" in response.text


@pytest.mark.parametrize(
    ("status", "fields", "error"),
    [
        ("ready", {"min_instances": "5"}, "Instances must satisfy min ≤ desired ≤ max ≤ 100."),
        ("ready", {"max_instances": "500"}, "less than or equal to 100"),
        ("provisioning", {}, "Cluster main is provisioning; it can be resized once it is ready."),
        ("failed", {}, "it can be resized once it is ready."),
    ],
)
@pytest.mark.parametrize("htmx", [False, True])
def test_a_refused_resize_shows_why_and_changes_nothing(
    owner_client: Client,
    account: AwsAccount,
    status: str,
    fields: dict[str, str],
    error: str,
    htmx: bool,
) -> None:
    cluster = factories.make_cluster(account, name="main", status=status)
    form = {"instance_type": "t3.large", "min_instances": "2", "desired_instances": "3"}
    headers: Any = HTMX if htmx else {}

    response = owner_client.post(
        reverse("cluster_resize", args=["main"]),
        form | {"max_instances": "4"} | fields,
        **headers,
    )

    assert response.status_code == 200
    assert error in response.text
    cluster.refresh_from_db()
    assert (cluster.instance_type, cluster.desired_instances) == ("t3.medium", 2)
    assert Job.objects.count() == 0 and AuditEntry.objects.count() == 0
    if htmx:
        assert response.text.lstrip().startswith('<form id="resize-form"')
    else:
        assert "<h1>main</h1>" in response.text


# Delete


@pytest.mark.parametrize("typed", ["", "mian", "MAIN", "other"])
@pytest.mark.parametrize("htmx", [False, True])
def test_delete_needs_the_clusters_name_typed(
    owner_client: Client, cluster: Cluster, typed: str, htmx: bool
) -> None:
    headers: Any = HTMX if htmx else {}

    response = owner_client.post(
        reverse("cluster_delete", args=["main"]), {"confirm_name": typed}, **headers
    )

    assert response.status_code == 200
    cluster.refresh_from_db()
    assert cluster.status == "ready"
    assert Job.objects.count() == 0 and AuditEntry.objects.count() == 0
    expected = "This field is required" if not typed else "Type main exactly to delete"
    assert expected in response.text
    if htmx:
        assert response.text.lstrip().startswith('<form id="delete-form"')


def test_deleting_a_cluster(owner_client: Client, cluster: Cluster) -> None:
    response = owner_client.post(
        reverse("cluster_delete", args=["main"]), {"confirm_name": "main"}, follow=True
    )

    cluster.refresh_from_db()
    assert cluster.status == "deleting"
    assert Job.objects.filter(kind="delete_cluster", target_id=cluster.pk).count() == 1
    assert AuditEntry.objects.filter(action="cluster.delete").count() == 1
    assert "Deleting cluster main…" in response.text
    assert 'hx-trigger="every 2s"' in response.text


def test_a_cluster_running_apps_is_not_deleted(owner_client: Client, cluster: Cluster) -> None:
    factories.make_app(cluster, name="storefront")

    response = owner_client.post(reverse("cluster_delete", args=["main"]), {"confirm_name": "main"})

    assert "Cluster main still runs 1 app(s): storefront. Delete them first." in response.text
    cluster.refresh_from_db()
    assert cluster.status == "ready" and Job.objects.count() == 0


def test_a_deleted_cluster_shows_as_deleted_without_controls(
    owner_client: Client, account: AwsAccount
) -> None:
    factories.make_cluster(account, name="main", status="deleted")

    page = owner_client.get(reverse("cluster", args=["main"])).text

    assert "Deleted. Its AWS resources are gone." in page
    assert "Delete cluster" not in page and "Resize" not in page


# Overview


def test_the_overview_links_clusters_and_follows_busy_ones(
    owner_client: Client, account: AwsAccount
) -> None:
    factories.make_cluster(account, name="main", status="provisioning")
    factories.make_cluster(account, name="old", status="ready")

    page = owner_client.get(reverse("overview")).text
    fragment = owner_client.get(reverse("overview"), **HTMX)  # type: ignore[arg-type]

    assert reverse("cluster", args=["main"]) in page and reverse("cluster", args=["old"]) in page
    assert 'hx-trigger="every 2s"' in page
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<section id="clusters"')

    Cluster.objects.filter(name="main").update(status="ready")
    settled = owner_client.get(reverse("overview"), **HTMX)  # type: ignore[arg-type]
    assert settled.status_code == 286 and "hx-trigger" not in settled.text


def test_an_empty_overview_says_what_to_do_next(owner_client: Client, team: Team) -> None:
    page = owner_client.get(reverse("overview")).text
    assert "Connect an account" in page and reverse("accounts") in page

    factories.make_account(team, name="sandbox")
    page = owner_client.get(reverse("overview")).text
    assert "New cluster" in page and reverse("cluster_new") in page


def test_every_provisioning_step_has_words() -> None:
    from deployments import selectors
    from deployments.aws import provisioning

    assert list(selectors.CLUSTER_STEP_LABELS) == [name for name, _ in provisioning.STEPS]
    assert {name for name, _ in provisioning.TEARDOWN_STEPS} <= set(selectors.CLUSTER_STEP_LABELS)

"""App pages: create an app, follow its rollout, deploy, change config, cancel, delete."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from deployments import selectors
from deployments.models import App, AuditEntry, Cluster, Deployment, Job, Release, ScalingSettings
from tests import factories
from tests.pages.conftest import HTMX, deployed

pytestmark = pytest.mark.django_db


def _counts() -> tuple[int, ...]:
    return (
        App.objects.count(),
        Release.objects.count(),
        Deployment.objects.count(),
        Job.objects.count(),
        AuditEntry.objects.count(),
    )


# Create


def _create_form(on: Cluster, /, **fields: str) -> dict[str, str]:
    return {
        "name": "web",
        "cluster": str(on.pk),
        "port": "8080",
        "health_check_path": "/healthz",
        "size": "512/1024",
        "desired_count": "3",
        "min_healthy_percent": "50",
        "max_percent": "200",
        "circuit_breaker": "on",
        **fields,
    }


def test_the_new_app_form_offers_ready_clusters_and_suggests_sizes(
    owner_client: Client, cluster: Cluster, other_team: Any
) -> None:
    factories.make_cluster(cluster.account, name="busy", status="provisioning")
    factories.make_cluster(factories.make_account(other_team), name="theirs", status="ready")

    page = owner_client.get(reverse("app_new")).text

    assert "main · t3.medium · eu-west-1" in page
    assert "busy" not in page and "theirs" not in page
    assert 'name="size" value="256/512"' in page and 'list="size-suggestions"' in page
    assert '<option value="256/512">0.25 vCPU, 0.5 GB</option>' in page
    assert '<option value="4096/30720">' in page
    assert 'name="max_percent" value="200"' in page and 'name="circuit_breaker"' in page


@pytest.mark.parametrize(("size", "cpu", "memory"), [("256/256", 256, 256), ("128/128", 128, 128)])
def test_a_task_size_outside_fargates_table_is_accepted_on_ec2(
    owner_client: Client, cluster: Cluster, size: str, cpu: int, memory: int
) -> None:
    owner_client.post(reverse("app_new"), _create_form(cluster, size=size))

    app = App.objects.get(name="web")
    assert (app.cpu, app.memory) == (cpu, memory)


def test_without_a_ready_cluster_the_form_says_to_make_one(owner_client: Client) -> None:
    page = owner_client.get(reverse("app_new")).text

    assert "No ready cluster" in page and reverse("cluster_new") in page


def test_creating_an_app_saves_its_settings_and_shows_its_page(
    client: Client, deployer: Any, cluster: Cluster
) -> None:
    client.force_login(deployer)

    response = client.post(reverse("app_new"), _create_form(cluster), follow=True)

    app = App.objects.get(name="web")
    assert (app.port, app.health_check_path, app.cpu, app.memory) == (8080, "/healthz", 512, 1024)
    assert (app.desired_count, app.min_healthy_percent, app.max_percent) == (3, 50, 200)
    assert app.circuit_breaker and ScalingSettings.objects.filter(app=app).exists()
    assert response.redirect_chain[-1][0] == reverse("app", args=["web"])
    assert "Created app web. Deploy an image to start it." in response.text
    assert "Not deployed yet" in response.text
    assert AuditEntry.objects.get(action="app.create").actor == deployer


def test_an_htmx_create_redirects_the_browser(owner_client: Client, cluster: Cluster) -> None:
    form = _create_form(cluster)
    del form["circuit_breaker"]

    response = owner_client.post(reverse("app_new"), form, **HTMX)  # type: ignore[arg-type]

    assert response["HX-Redirect"] == reverse("app", args=["web"])
    assert App.objects.get(name="web").circuit_breaker is False


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"size": "4096/30720"}, "does not fit on a t3.medium instance"),
        ({"size": "64/512"}, "CPU must be between 128 and 196608 units"),
        ({"size": "half a vCPU"}, "Enter the task size as CPU units/MiB"),
        ({"name": "Web App"}, "Use 1–40 lowercase letters"),
        ({"name": "taken"}, "This team already has an app named taken."),
        ({"port": "70000"}, "less than or equal to 65535"),
        ({"health_check_path": "healthz"}, "Enter a path starting with /."),
        ({"max_percent": "99"}, "greater than or equal to 100"),
        ({"cluster": "999999"}, "Select a valid choice"),
        ({"desired_count": "many"}, "Enter a whole number"),
    ],
)
@pytest.mark.parametrize("htmx", [False, True])
def test_bad_app_input_shows_the_error_and_writes_nothing(
    owner_client: Client, cluster: Cluster, fields: dict[str, str], error: str, htmx: bool
) -> None:
    factories.make_app(cluster, name="taken")
    before = _counts()
    headers: Any = HTMX if htmx else {}

    response = owner_client.post(reverse("app_new"), _create_form(cluster, **fields), **headers)

    assert response.status_code == 200
    assert error in response.text
    assert _counts() == before
    if htmx:
        assert response.text.lstrip().startswith('<form id="app-form"')
    else:
        assert "<h1>New app</h1>" in response.text


def test_an_app_cannot_go_on_a_cluster_that_is_not_ready(
    owner_client: Client, cluster: Cluster
) -> None:
    busy = factories.make_cluster(cluster.account, name="busy", status="provisioning")
    before = _counts()

    response = owner_client.post(reverse("app_new"), _create_form(busy))

    assert "Select a valid choice" in response.text
    assert _counts() == before


# The app page and its rollout panel


def test_a_new_app_invites_a_first_deploy(owner_client: Client, app: App) -> None:
    page = owner_client.get(reverse("app", args=["web"])).text

    assert "Not deployed yet" in page and "Deploy an image below" in page
    assert "Local sandbox (simulated AWS)" in page
    assert 'id="deploy-form"' in page and "hx-trigger" not in page
    assert reverse("cluster", args=["main"]) in page


def test_a_rollout_in_flight_shows_progress_and_polls(owner_client: Client, app: App) -> None:
    deployed(app, "nginx:1.27")
    rolling = deployed(
        app, "nginx:1.28", status="in_progress", desired_count=4, running_count=1,
        pending_count=2, rollout_state="IN_PROGRESS",
    )  # fmt: skip
    factories.make_event(rolling, message="(service web) has started 2 tasks: (task a) (task b).")
    factories.make_event(rolling, message="(service web) has started 1 tasks: (task c).")

    page = owner_client.get(reverse("app", args=["web"])).text

    assert "Live:" in page and "v1" in page and "nginx:1.27" in page
    assert "Rollout of v2" in page and "Rolling out" in page
    assert "bar-running w-25" in page and "bar-pending w-50" in page
    assert "1 new running" in page and "2 new starting" in page and "4 desired" in page
    assert "Old tasks: draining" in page and "IN_PROGRESS" in page
    assert page.index("has started 1 tasks") < page.index("has started 2 tasks")  # newest first
    assert 'hx-trigger="every 2s"' in page
    assert "Cancel and roll back" in page
    assert reverse("deployment_cancel", args=["web", rolling.pk]) in page


def test_the_rollout_fragment_polls_until_the_rollout_ends(owner_client: Client, app: App) -> None:
    rolling = deployed(app, status="in_progress", running_count=1)

    response = owner_client.get(reverse("app", args=["web"]), **HTMX)  # type: ignore[arg-type]

    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div id="app-live"')
    assert "<html" not in response.text and 'id="deploy-form"' not in response.text
    assert 'hx-trigger="every 2s"' in response.text

    Deployment.objects.filter(pk=rolling.pk).update(
        status="succeeded", running_count=2, rollout_state="COMPLETED"
    )
    settled = owner_client.get(reverse("app", args=["web"]), **HTMX)  # type: ignore[arg-type]

    assert settled.status_code == 286
    assert "hx-trigger" not in settled.text
    assert "Succeeded" in settled.text and "v1 is live: 2 of 2 tasks running" in settled.text


def test_a_rolled_back_rollout_says_which_release_is_live_again(
    owner_client: Client, app: App
) -> None:
    deployed(app, "nginx:1.27")
    reason = "ECS deployment circuit breaker: tasks failed to start. ECS rolled back to web:1."
    deployed(app, "nginx:crashloop", status="rolled_back", failed_count=3,
             rollout_state="FAILED", rollout_state_reason=reason)  # fmt: skip

    response = owner_client.get(reverse("app", args=["web"]), **HTMX)  # type: ignore[arg-type]

    assert response.status_code == 286
    assert "Rolled back — v1 is live again." in response.text
    assert "state state-rolled_back" in response.text and reason in response.text
    assert "3 failed to start" in response.text


@pytest.mark.parametrize(
    ("status", "words"),
    [
        ("failed", "Why it failed"),
        ("timed_out", "Why it timed out"),
        ("cancelled", "Cancelled"),
    ],
)
def test_every_ending_is_shown_with_its_reason(
    owner_client: Client, app: App, status: str, words: str
) -> None:
    deployed(app, status=status, rollout_state_reason=f"the {status} reason")

    page = owner_client.get(reverse("app", args=["web"])).text

    assert f"state state-{status}" in page and words in page and f"the {status} reason" in page
    assert "hx-trigger" not in page and "Cancel and roll back" not in page


# Deploy


def test_deploying_starts_a_release_and_follows_it(client: Client, deployer: Any, app: App) -> None:
    client.force_login(deployer)

    response = client.post(
        reverse("app_deploy", args=["web"]),
        {"image": "nginx:1.27", "description": "first"},
        follow=True,
    )

    release = Release.objects.get(app=app)
    assert (release.version, release.image, release.description) == (1, "nginx:1.27", "first")
    assert release.created_by == deployer
    assert Deployment.objects.get(release=release).status == "queued"
    assert Job.objects.filter(kind="run_deployment").count() == 1
    assert "Deploying nginx:1.27 as v1…" in response.text
    assert "Waiting for a worker to start the rollout." in response.text
    assert 'hx-trigger="every 2s"' in response.text


@pytest.mark.parametrize("htmx", [False, True])
def test_a_deploy_while_one_is_in_flight_says_so_inline(
    owner_client: Client, app: App, htmx: bool
) -> None:
    deployed(app, status="in_progress")
    before = _counts()
    headers: Any = HTMX if htmx else {}

    response = owner_client.post(
        reverse("app_deploy", args=["web"]), {"image": "nginx:1.28"}, **headers
    )

    assert response.status_code == 200
    assert "v1 is still rolling out to web (rolling out); wait for it or cancel it" in response.text
    assert _counts() == before
    if htmx:
        assert response.text.lstrip().startswith('<form id="deploy-form"')


@pytest.mark.parametrize("htmx", [False, True])
def test_a_bad_image_is_refused_beside_the_field(
    owner_client: Client, app: App, htmx: bool
) -> None:
    before = _counts()
    headers: Any = HTMX if htmx else {}

    response = owner_client.post(
        reverse("app_deploy", args=["web"]), {"image": "Not An Image!"}, **headers
    )

    assert response.status_code == 200
    assert "is not an image reference" in response.text
    assert 'id="id_image_error"' in response.text or 'aria-invalid="true"' in response.text
    assert _counts() == before


# Config vars


def test_saving_config_vars_makes_a_release_and_deploys_it(owner_client: Client, app: App) -> None:
    deployed(app, "nginx:1.27")

    response = owner_client.post(
        reverse("app_config", args=["web"]),
        {"config_vars": "# greeting\nGREETING=hello world\n\nDATABASE_URL=postgres://x?a=b\n"},
        follow=True,
    )

    app.refresh_from_db()
    assert app.config_vars == {"GREETING": "hello world", "DATABASE_URL": "postgres://x?a=b"}
    release = Release.objects.get(app=app, version=2)
    assert (release.kind, release.image) == ("config", "nginx:1.27")
    assert release.config["env"] == app.config_vars
    assert "Saved the config vars as v2; deploying it…" in response.text
    assert "DATABASE_URL=postgres://x?a=b" in response.text  # the textarea shows them back


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("GREETING hello", "Line 1 is not NAME=value"),
        ("A=1\nA=2", "A is set twice (line 2)."),
        ("AWS_SECRET=x", "uses a prefix reserved by AWS and ECS"),
        ("1BAD=x", "is not a valid variable name"),
    ],
)
@pytest.mark.parametrize("htmx", [False, True])
def test_bad_config_vars_are_refused_and_nothing_is_written(
    owner_client: Client, app: App, text: str, error: str, htmx: bool
) -> None:
    deployed(app)
    before = _counts()
    headers: Any = HTMX if htmx else {}

    response = owner_client.post(
        reverse("app_config", args=["web"]), {"config_vars": text}, **headers
    )

    assert response.status_code == 200 and error in response.text
    assert _counts() == before
    app.refresh_from_db()
    assert app.config_vars == {}
    if htmx:
        assert response.text.lstrip().startswith('<form id="config-form"')


def test_config_before_the_first_deploy_says_to_deploy_first(
    owner_client: Client, app: App
) -> None:
    response = owner_client.post(reverse("app_config", args=["web"]), {"config_vars": "A=1"})

    assert "Deploy web once before changing its config." in response.text
    assert Release.objects.count() == 0


# Cancel


def test_cancelling_a_rollout_rolls_back_to_the_live_release(
    owner_client: Client, app: App
) -> None:
    good = deployed(app, "nginx:1.27")
    stuck = deployed(app, "nginx:crashloop", status="in_progress")

    response = owner_client.post(reverse("deployment_cancel", args=["web", stuck.pk]), follow=True)

    stuck.refresh_from_db()
    assert stuck.status == "cancelled"
    rollback = Release.objects.get(app=app, version=3)
    assert (rollback.kind, rollback.rollback_of) == ("rollback", good.release)
    assert "Cancelled v2; rolling back as v3…" in response.text

    again = owner_client.post(reverse("deployment_cancel", args=["web", stuck.pk]), follow=True)
    assert "v2 has already ended; nothing to cancel." in again.text


def test_cancelling_another_apps_deployment_through_this_app_is_404(
    owner_client: Client, app: App, cluster: Cluster
) -> None:
    other = factories.make_app(cluster, name="other")
    theirs = deployed(other, status="in_progress")

    response = owner_client.post(reverse("deployment_cancel", args=["web", theirs.pk]))

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "in_progress"


# Delete


def test_deleting_needs_the_name_typed(owner_client: Client, app: App) -> None:
    headers: Any = HTMX
    response = owner_client.post(
        reverse("app_delete", args=["web"]), {"confirm_name": "wbe"}, **headers
    )

    assert response.text.lstrip().startswith('<form id="delete-form"')
    assert "Type web exactly to delete this app; nothing was deleted." in response.text
    assert not Job.objects.filter(kind="delete_app").exists()


def test_deleting_queues_the_teardown_and_the_overview_follows_it(
    owner_client: Client, app: App
) -> None:
    response = owner_client.post(
        reverse("app_delete", args=["web"]), {"confirm_name": "web"}, follow=True
    )

    assert Job.objects.filter(kind="delete_app", target_id=app.pk).count() == 1
    assert response.redirect_chain[-1][0] == reverse("overview")
    assert "Deleting web… It leaves the list once AWS has removed it." in response.text
    assert "state state-deleting" in response.text
    assert 'id="apps"' in response.text and 'hx-trigger="every 2s"' in response.text

    page = owner_client.get(reverse("app", args=["web"])).text
    assert "web is being deleted" in page and 'id="deploy-form"' not in page
    twice = owner_client.post(reverse("app_delete", args=["web"]), {"confirm_name": "web"})
    assert twice.status_code == 302
    assert Job.objects.filter(kind="delete_app").count() == 1

    App.objects.filter(pk=app.pk).delete()  # what the job does once AWS is clean
    settled = owner_client.get(reverse("overview"), HTTP_HX_TARGET="apps", **HTMX)  # type: ignore[arg-type]
    assert settled.status_code == 286 and "web" not in settled.text


def test_writes_to_an_app_being_deleted_are_refused(owner_client: Client, app: App) -> None:
    factories.make_job(app.team, app, kind="delete_app", status="running")
    before = _counts()

    page = owner_client.post(reverse("app_deploy", args=["web"]), {"image": "nginx:1.27"})
    headers: Any = HTMX
    fragment = owner_client.post(
        reverse("app_deploy", args=["web"]), {"image": "nginx:1.27"}, **headers
    )

    assert "web is being deleted" in page.text and 'id="deploy-form"' not in page.text
    assert "web is being deleted." in fragment.text
    assert _counts() == before


def test_deleting_during_a_rollout_is_refused(owner_client: Client, app: App) -> None:
    deployed(app, status="in_progress")

    response = owner_client.post(reverse("app_delete", args=["web"]), {"confirm_name": "web"})

    assert "v1 is still rolling out to web" in response.text
    assert not Job.objects.filter(kind="delete_app").exists()


# Overview


def test_the_overview_shows_each_apps_state_and_follows_rollouts(
    owner_client: Client, cluster: Cluster
) -> None:
    healthy = factories.make_app(cluster, name="healthy")
    deployed(healthy, "nginx:1.27")
    rolling = factories.make_app(cluster, name="rolling")
    deployed(rolling, "nginx:1.27")
    deployed(rolling, "nginx:1.28", status="in_progress", desired_count=2, running_count=1)
    back = factories.make_app(cluster, name="back")
    deployed(back, "nginx:1.27")
    deployed(back, "nginx:crashloop", status="rolled_back")
    stuck = factories.make_app(cluster, name="stuck")
    deployed(stuck, status="timed_out")
    factories.make_app(cluster, name="fresh")

    page = owner_client.get(reverse("overview")).text

    assert reverse("app", args=["healthy"]) in page and "New app" in page
    assert 'state state-succeeded">Healthy' in page
    assert "Deploying v2" in page and "bar-running w-50" in page
    assert "Rolled back" in page and "v1 is live again" in page
    assert "Stuck: timed out" in page and "Not deployed yet" in page
    fragment = owner_client.get(reverse("overview"), HTTP_HX_TARGET="apps", **HTMX)  # type: ignore[arg-type]
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<section id="apps"')

    Deployment.objects.filter(status="in_progress").update(status="succeeded")
    settled = owner_client.get(reverse("overview"), HTTP_HX_TARGET="apps", **HTMX)  # type: ignore[arg-type]
    assert settled.status_code == 286 and "hx-trigger" not in settled.text


def test_the_overview_pages_and_filters_many_apps(owner_client: Client, cluster: Cluster) -> None:
    for n in range(selectors.OVERVIEW_APPS_PAGE + 10):
        factories.make_app(cluster, name=f"svc-{n:03d}")
    rolling = factories.make_app(cluster, name="web")
    deployed(rolling, "nginx:1.28", status="in_progress", desired_count=2, running_count=1)

    first = owner_client.get(reverse("overview")).text
    second = owner_client.get(reverse("overview") + "?page=2").text
    found = owner_client.get(reverse("overview"), {"q": "WE"})
    headers: Any = HTMX
    fragment = owner_client.get(
        reverse("overview"), {"q": "we", "page": "1"}, HTTP_HX_TARGET="apps", **headers
    )

    assert "svc-000" in first and "svc-049" in first and "svc-050" not in first
    assert "Apps 1–50 of 61" in first and 'href="?page=2" rel="next"' in first
    assert "svc-050" in second and "Apps 51–61 of 61" in second and "Deploying v1" in second
    assert "svc-0" not in found.text and "Deploying v1" in found.text
    assert 'hx-get="/?q=WE"' in found.text  # the table follows what it shows
    assert fragment.status_code == 200 and "Deploying v1" in fragment.text


def test_an_overview_filter_that_matches_nothing_says_so_escaped(
    owner_client: Client, app: App
) -> None:
    response = owner_client.get(reverse("overview"), {"q": "<script>x</script>"})

    assert response.status_code == 200
    assert "No app's name contains “&lt;script&gt;x&lt;/script&gt;”" in response.text
    assert "<script>x" not in response.text


def test_a_viewer_sees_no_app_write_controls(viewer_client: Client, app: App) -> None:
    deployed(app, "nginx:1.27")
    rolling = deployed(app, "nginx:1.28", status="in_progress")
    deployed_v1 = reverse("app_rollback", args=["web", 1])

    pages = [
        viewer_client.get(reverse("overview")).text,
        viewer_client.get(reverse("app", args=["web"])).text,
        viewer_client.get(reverse("app_releases", args=["web"])).text,
        viewer_client.get(reverse("app_scaling", args=["web"])).text,
        viewer_client.get(reverse("deployment", args=["web", rolling.pk])).text,
    ]

    for page in pages:
        assert "New app" not in page and 'id="deploy-form"' not in page
        assert 'id="config-form"' not in page and 'id="delete-form"' not in page
        assert 'id="secret-form"' not in page
        assert "Cancel and roll back" not in page and deployed_v1 not in page
        assert 'id="scaling-form"' not in page

"""Releases (what each changed, how it rolled out, rollback), a rollout's own page, scaling."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from deployments import selectors
from deployments.models import App, Deployment, DeploymentEvent, Job, Release
from tests import factories
from tests.pages.conftest import HTMX, deployed

pytestmark = pytest.mark.django_db


# Releases


def test_each_release_says_what_it_changed_against_the_one_before(
    owner_client: Client, app: App, owner: Any
) -> None:
    base = {"cpu": 256, "memory": 512, "port": 80, "command": "", "health_check_path": "/"}
    first = deployed(
        app, "nginx:1.27", config=base | {"env": {"KEEP": "1", "OLD": "x", "TOKEN": "a"}}
    )
    Release.objects.filter(pk=first.release.pk).update(created_by=owner)
    env = {"KEEP": "1", "TOKEN": "secret-b", "NEW": "y"}
    end = timezone.now()
    second = deployed(
        app, "nginx:1.28", config=base | {"memory": 1024, "port": 8080, "env": env},
        started_at=end - timedelta(seconds=75), finished_at=end,
    )  # fmt: skip

    page = owner_client.get(reverse("app_releases", args=["web"])).text

    assert "First release" in page
    assert (
        'Image <code class="wrap">nginx:1.27</code> → <code class="wrap">nginx:1.28</code>' in page
    )
    assert "Added <code>NEW</code>" in page and "Removed <code>OLD</code>" in page
    assert "Changed <code>TOKEN</code>" in page and "secret-b" not in page  # names, not values
    assert "Memory 512 MiB → 1024 MiB" in page and "Port 80 → 8080" in page
    assert "CPU" not in page.split("What changed")[1].split("Memory")[0]  # unchanged: not listed
    assert "olivia" in page and "API or system" in page
    assert "in 1 min 15 s" in page
    assert 'class="tag tag-live">Live' in page
    assert reverse("deployment", args=["web", second.pk]) in page


def test_the_live_release_cannot_be_rolled_back_to_and_the_others_ask_first(
    owner_client: Client, app: App
) -> None:
    deployed(app, "nginx:1.27")
    deployed(app, "nginx:1.28")

    page = owner_client.get(reverse("app_releases", args=["web"])).text

    assert reverse("app_rollback", args=["web", 2]) not in page
    assert 'disabled title="v2 is live"' in page
    assert '<details class="confirm">' in page
    assert "Roll back to v1? A new release runs its image and config." in page
    assert reverse("app_rollback", args=["web", 1]) in page


def test_rolling_back_makes_a_new_release_and_shows_its_rollout(
    owner_client: Client, app: App
) -> None:
    first = deployed(app, "nginx:1.27")
    deployed(app, "nginx:1.28")

    response = owner_client.post(reverse("app_rollback", args=["web", 1]), follow=True)

    release = Release.objects.get(app=app, version=3)
    assert (release.kind, release.image, release.rollback_of) == (
        "rollback",
        "nginx:1.27",
        first.release,
    )
    assert Job.objects.filter(kind="run_deployment").count() == 1
    assert response.redirect_chain[-1][0] == reverse("app", args=["web"])
    assert "Rolling back to v1 as v3…" in response.text
    assert 'hx-trigger="every 2s"' in response.text


@pytest.mark.parametrize(
    ("version", "error"),
    [(9, "web has no release v9."), (2, "v2 is what web runs already.")],
)
def test_a_rollback_that_cannot_be_done_says_why(
    owner_client: Client, app: App, version: int, error: str
) -> None:
    deployed(app, "nginx:1.27")
    deployed(app, "nginx:1.28")

    response = owner_client.post(reverse("app_rollback", args=["web", version]), follow=True)

    assert response.redirect_chain[-1][0] == reverse("app_releases", args=["web"])
    assert error in response.text
    assert Release.objects.count() == 2


def test_a_rollback_during_a_rollout_is_refused(owner_client: Client, app: App) -> None:
    deployed(app, "nginx:1.27")
    deployed(app, "nginx:1.28")
    deployed(app, "nginx:1.29", status="in_progress")

    response = owner_client.post(reverse("app_rollback", args=["web", 1]), follow=True)

    assert "v3 is still rolling out to web" in response.text
    assert Release.objects.count() == 3


def test_releases_are_paginated(owner_client: Client, app: App) -> None:
    for i in range(selectors.RELEASES_PAGE_SIZE + 3):
        factories.make_release(app, image=f"nginx:1.{i}")

    first = owner_client.get(reverse("app_releases", args=["web"])).text
    second = owner_client.get(reverse("app_releases", args=["web"]) + "?page=2").text

    assert "Page 1 of 2" in first and 'id="v53"' in first and 'id="v3"' not in first
    assert 'id="v3"' in second and 'id="v1"' in second and "Page 2 of 2" in second
    # The oldest on page 1 is compared with the newest on page 2.
    assert 'nginx:1.2</code> → <code class="wrap">nginx:1.3</code>' in first


def test_release_changes_between_snapshots() -> None:
    before = Release(image="a:1", config={"env": {"A": "1", "B": "2"}, "cpu": 256, "command": ""})
    after = Release(image="a:1", config={"env": {"B": "3", "C": "4"}, "cpu": 512, "command": "run"})

    changes = selectors.release_changes(before, after)

    assert changes.image is None
    assert (changes.added, changes.removed, changes.changed) == (["C"], ["A"], ["B"])
    assert changes.settings == [("CPU", "256 units", "512 units"), ("Command", "(none)", "run")]
    assert selectors.release_changes(before, before).nothing


def test_release_changes_name_the_secrets_added_and_removed() -> None:
    before = Release(image="a:1", config={"env": {}, "secrets": {"OLD": "t1", "KEPT": "t2"}})
    after = Release(image="a:1", config={"env": {}, "secrets": {"KEPT": "t3", "NEW": "t4"}})

    changes = selectors.release_changes(before, after)

    assert (changes.secrets_added, changes.secrets_removed) == (["NEW"], ["OLD"])
    assert changes.changed == [] and not changes.nothing


# A rollout's page


def test_a_rollouts_page_has_its_timeline_chart_and_outcome(owner_client: Client, app: App) -> None:
    start = timezone.now() - timedelta(minutes=2)
    rollout = deployed(
        app, status="rolled_back", started_at=start, finished_at=start + timedelta(seconds=90),
        rollout_state="FAILED", rollout_state_reason="tasks failed to start. ECS rolled back",
    )  # fmt: skip
    for seconds, message in [
        (5, "(service web) has started 2 tasks: (task a) (task b)."),
        (30, "(service web) has stopped 2 running tasks: (task a) (task b)."),
        (40, "(service web) has started 2 tasks: (task c) (task d)."),
        (80, "(deployment x) deployment failed: tasks failed to start."),
    ]:
        factories.make_event(
            rollout, source="ecs", message=message, created_at=start + timedelta(seconds=seconds)
        )

    page = owner_client.get(reverse("deployment", args=["web", rollout.pk])).text

    assert "Rolled back by ECS's circuit breaker" in page and "ECS rolled back" in page
    assert page.index("has started 2 tasks: (task a)") < page.index("deployment failed")
    assert '<svg class="chart"' in page and 'class="chart-started"' in page
    assert "Tasks started: 4" in page and "Tasks stopped: 2" in page and "Desired: 2" in page
    assert "after 1 min 30 s" in page and "1 min 30 s</text>" in page
    assert "hx-trigger" not in page


def test_the_chart_follows_the_events() -> None:
    start = timezone.now()
    rollout = Deployment(
        desired_count=2, started_at=start, finished_at=start + timedelta(seconds=100)
    )
    events = [
        DeploymentEvent(message="has started 2 tasks", created_at=start + timedelta(seconds=50)),
        DeploymentEvent(
            message="has stopped 1 running tasks", created_at=start + timedelta(seconds=75)
        ),
    ]

    chart = selectors.rollout_chart(rollout, events)

    assert chart is not None
    started, stopped = chart.series
    assert (started.total, stopped.total, chart.y_max) == (2, 1, 2)
    # x from 40 to 624 over 100 s; y from 172 (0) to 14 (2 tasks)
    assert started.points == "40.0,172.0 332.0,172.0 332.0,14.0 624.0,14.0"
    assert stopped.points == "40.0,172.0 478.0,172.0 478.0,93.0 624.0,93.0"
    assert selectors.rollout_chart(rollout, []) is None


def test_a_rollout_in_flight_is_followed_on_its_page(owner_client: Client, app: App) -> None:
    rolling = deployed(app, status="in_progress")
    url = reverse("deployment", args=["web", rolling.pk])

    page = owner_client.get(url).text
    fragment = owner_client.get(url, **HTMX)  # type: ignore[arg-type]

    assert 'hx-trigger="every 2s"' in page and "has not reported starting or stopping" in page
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="deployment-live"')
    Deployment.objects.filter(pk=rolling.pk).update(status="succeeded")
    assert owner_client.get(url, **HTMX).status_code == 286  # type: ignore[arg-type]


def test_another_apps_rollout_is_404_here(owner_client: Client, app: App) -> None:
    other = factories.make_app(app.cluster, name="other")
    theirs = deployed(other)

    assert owner_client.get(reverse("deployment", args=["web", theirs.pk])).status_code == 404
    assert owner_client.get(reverse("deployment", args=["web", 2**63])).status_code == 404


# Scaling


def test_the_scaling_page_says_what_is_asked_and_what_is_applied(
    owner_client: Client, app: App
) -> None:
    page = owner_client.get(reverse("app_scaling", args=["web"])).text

    assert "Autoscaling between 2 and 5 tasks, keeping average CPU near 75 %" in page
    assert "the ECS service is created by the first deploy" in page
    assert "CPU history is not collected yet" in page
    assert reverse("cluster", args=["main"]) in page and "2 × t3.medium" in page

    App.objects.filter(pk=app.pk).update(service_arn="arn:aws:ecs:x")
    app.scaling.applied_at = timezone.now()
    app.scaling.save()
    assert "Applied</span>" in owner_client.get(reverse("app_scaling", args=["web"])).text


def test_a_fixed_count_is_saved_and_applied_by_a_job(owner_client: Client, app: App) -> None:
    App.objects.filter(pk=app.pk).update(service_arn="arn:aws:ecs:x")
    form = {
        "mode": "fixed",
        "desired_count": "3",
        "min_tasks": "2",
        "max_tasks": "5",
        "cpu_target": "75",
    }

    response = owner_client.post(reverse("app_scaling", args=["web"]), form, follow=True)

    app.refresh_from_db()
    assert app.desired_count == 3 and not app.scaling.autoscaling_enabled
    job = Job.objects.get(kind="apply_scaling", target_id=app.pk)
    assert "Saved; applying the new scaling to web&#x27;s ECS service…" in response.text
    assert "Applying…" in response.text and 'hx-trigger="every 2s"' in response.text

    fragment = owner_client.get(reverse("app_scaling", args=["web"]), **HTMX)  # type: ignore[arg-type]
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<section id="scaling-status"')
    Job.objects.filter(pk=job.pk).update(status="succeeded")
    assert owner_client.get(reverse("app_scaling", args=["web"]), **HTMX).status_code == 286  # type: ignore[arg-type]


def test_autoscaling_keeps_the_desired_count(owner_client: Client, app: App) -> None:
    form = {
        "mode": "autoscaling",
        "desired_count": "9",
        "min_tasks": "1",
        "max_tasks": "8",
        "cpu_target": "60",
    }

    response = owner_client.post(reverse("app_scaling", args=["web"]), form, follow=True)

    app.refresh_from_db()
    scaling = app.scaling
    assert (
        scaling.autoscaling_enabled,
        scaling.min_tasks,
        scaling.max_tasks,
        scaling.cpu_target,
    ) == (True, 1, 8, 60)
    assert app.desired_count == 2
    assert not Job.objects.exists()  # no service yet: the first deploy applies it
    assert "the scaling applies when web is first deployed" in response.text


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"min_tasks": "6", "max_tasks": "5"}, "Minimum tasks must not exceed maximum tasks."),
        ({"cpu_target": "0"}, "greater than or equal to 1"),
        ({"mode": "sometimes"}, "Select a valid choice"),
    ],
)
@pytest.mark.parametrize("htmx", [False, True])
def test_bad_scaling_is_refused_and_nothing_changes(
    owner_client: Client, app: App, fields: dict[str, str], error: str, htmx: bool
) -> None:
    form = {
        "mode": "autoscaling",
        "desired_count": "2",
        "min_tasks": "2",
        "max_tasks": "5",
        "cpu_target": "75",
    }
    headers: Any = HTMX if htmx else {}

    response = owner_client.post(reverse("app_scaling", args=["web"]), form | fields, **headers)

    assert response.status_code == 200 and error in response.text
    app.scaling.refresh_from_db()
    assert (app.scaling.min_tasks, app.scaling.max_tasks, app.scaling.cpu_target) == (2, 5, 75)
    if htmx:
        assert response.text.lstrip().startswith('<form id="scaling-form"')

"""Part 4: the dashboard's pages at two sizes of data, beside the Django admin.

Rows are made in bulk (bulk_create) in the benchmark's database, in the shapes the product makes
them: every app has a live release (its config snapshot as `services.release_config` takes it)
and a finished rollout with its events and job; the app whose pages are measured, `web`, has the
whole release history — deploys, config changes, the odd rollback and failed rollout — and one
rollout in flight, which is when the browser polls its rollout fragment.

Each page is asked for in-process through Django's test Client (no network, no server): first a
few warm-up requests, then one with its SQL queries captured (CaptureQueriesContext), then N timed
ones. The timing runs with DEBUG off, as a production server does (no SQL logging).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import connection, reset_queries
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from bench.harness import percentile
from bench.rollouts import progress
from deployments.models import (
    App,
    AwsAccount,
    Cluster,
    Deployment,
    DeploymentEvent,
    Job,
    Membership,
    Release,
    ScalingSettings,
    Team,
)

if TYPE_CHECKING:
    from bench.run import Line, Target

# (apps in the team, releases of the measured app)
SIZES = ((10, 10), (1_000, 10_000))
MEASURED_APP = "web"
HOST = "127.0.0.1"  # one of ALLOWED_HOSTS; the test Client's "testserver" is not
HTMX = {"HX-Request": "true"}
ROLLOUT_EVENTS = 30  # on the rollout in flight: more than the fragment shows (20)
EVENTS_PER_ROLLOUT = 3  # on every finished rollout: our step, ECS's start, ECS's steady state
WARM_UP = 3
FRAGMENT_TARGET_MS = 10.0
# Requests per page: as many as fit in the budget after the warm-up, within these bounds.
MIN_REQUESTS = 20
MAX_REQUESTS = 200
BUDGET_SECONDS = 8.0
QUICK_BUDGET_SECONDS = 2.0


@dataclass
class Dataset:
    apps: int
    releases: int  # of the measured app
    team: Team
    owner: User
    total_releases: int  # in the whole database, which the admin lists
    total_apps: int
    build_seconds: float

    @property
    def label(self) -> str:
        return f"{self.apps:,} apps, {self.releases:,} releases"


@dataclass
class PageRow:
    """One page at one size: its queries and its server time."""

    part: int
    page: str
    tool: str
    size: str
    path: str
    status: int
    bytes: int
    queries: int
    ms: list[float]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def scenario(self) -> str:
        return f"{self.page}, {self.size}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "p50_ms": round(percentile(self.ms, 50), 3),
            "p95_ms": round(percentile(self.ms, 95), 3),
            "p99_ms": round(percentile(self.ms, 99), 3),
        }


# The rows


def config_snapshot(version: int, *, env_vars: int = 8) -> dict[str, Any]:
    """What `services.release_config` snapshots; a config change every 10th release."""
    env = {f"SETTING_{i}": f"value-{i}" for i in range(env_vars)}
    env["FEATURE_FLAGS"] = f"flags-{version // 10}"
    return {
        "env": env,
        "secrets": {},
        "cpu": 256,
        "memory": 512,
        "port": 80,
        "command": "",
        "health_check_path": "/",
    }


def outcome(version: int, in_flight: bool) -> str:
    """How the rollout of release `version` went: now and then one was rolled back by the
    circuit breaker or failed; `in_flight` is still rolling out."""
    if in_flight:
        return Deployment.Status.IN_PROGRESS
    if version % 50 == 7:
        return Deployment.Status.ROLLED_BACK
    if version % 97 == 13:
        return Deployment.Status.FAILED
    return Deployment.Status.SUCCEEDED


def kind(version: int) -> str:
    if version > 1 and version % 25 == 0:
        return Release.Kind.ROLLBACK
    if version > 1 and version % 10 == 0:
        return Release.Kind.CONFIG
    return Release.Kind.DEPLOY


def build_dataset(apps: int, releases: int) -> Dataset:
    """A team of `apps` apps on one ready cluster; `web` with `releases` releases, the others
    with one each; all with their rollouts, events and jobs."""
    began = time.monotonic()
    slug = f"pages-{apps}"
    team = Team.objects.create(name=f"Pages {apps}", slug=slug)
    owner = User.objects.create_user(username=f"{slug}-owner")
    Membership.objects.create(team=team, user=owner, role=Membership.Role.OWNER)
    account = AwsAccount.objects.create(team=team, name="sandbox", verified_at=timezone.now())
    cluster = Cluster.objects.create(
        team=team,
        account=account,
        name="main",
        region=account.region,
        instance_type="m6i.2xlarge",
        desired_instances=4,
        max_instances=10,
        status=Cluster.Status.READY,
        steps=[{"name": "network", "status": "done", "error": ""}],
        resources={"cluster_arn": f"arn:aws:ecs:us-east-1:123456789012:cluster/{slug}"},
    )
    names = [MEASURED_APP, *(f"app-{i:04d}" for i in range(1, apps))]
    app_rows = App.objects.bulk_create(
        App(
            team=team, cluster=cluster, name=name, desired_count=2,
            config_vars=config_snapshot(releases)["env"],
            service_arn=f"arn:aws:ecs:us-east-1:123456789012:service/{slug}/{name}",
        )
        for name in names
    )  # fmt: skip
    ScalingSettings.objects.bulk_create(ScalingSettings(app=app) for app in app_rows)
    web, others = app_rows[0], app_rows[1:]
    now = timezone.now()
    # (app, version, its app's latest version); web's latest release is rolling out.
    history = [(web, v, releases) for v in range(1, releases + 1)]
    history += [(app, 1, 1) for app in others]
    # Released an hour apart, oldest first; the in-flight rollout started 20 s ago.
    created = [
        now - timedelta(hours=(latest - version)) - timedelta(seconds=20)
        for _, version, latest in history
    ]
    release_rows = Release.objects.bulk_create(
        Release(
            app=app, version=version, image=f"registry.example.com/{app.name}:1.{version}",
            config=config_snapshot(version), kind=kind(version),
            task_definition_arn=f"arn:aws:ecs:us-east-1:123456789012:task-definition/"
                                f"tinystacks-{slug}-{app.name}:{version}",
            description="" if kind(version) == Release.Kind.DEPLOY else f"Release {version}",
        )
        for app, version, latest in history
    )  # fmt: skip
    by_version = {r.version: r for r in release_rows if r.app_id == web.pk}
    for release, at in zip(release_rows, created, strict=True):
        release.created_at = at
        if release.kind == Release.Kind.ROLLBACK:
            release.rollback_of = by_version[release.version - 2]
    Release.objects.bulk_update(release_rows, ["created_at", "rollback_of"], batch_size=2_000)
    deployment_rows = Deployment.objects.bulk_create(
        deployment(release, in_flight=app is web and release.version == latest, at=at)
        for release, (app, _, latest), at in zip(release_rows, history, created, strict=True)
    )
    for row, at in zip(deployment_rows, created, strict=True):
        row.created_at = at
    Deployment.objects.bulk_update(deployment_rows, ["created_at"], batch_size=2_000)
    DeploymentEvent.objects.bulk_create(
        itertools.chain.from_iterable(
            events(d, app.name) for d, (app, _, _) in zip(deployment_rows, history, strict=True)
        ),
        batch_size=2_000,
    )
    deployment_type = ContentType.objects.get_for_model(Deployment)
    Job.objects.bulk_create(
        (
            Job(
                kind="run_deployment", team=team, target_type=deployment_type, target_id=d.pk,
                status=Job.Status.SUCCEEDED, attempts=1, started_at=d.created_at,
                finished_at=d.created_at + timedelta(seconds=2),
            )
            for d in deployment_rows
        ),
        batch_size=2_000,
    )  # fmt: skip
    return Dataset(
        apps=apps,
        releases=releases,
        team=team,
        owner=owner,
        total_releases=Release.objects.count(),
        total_apps=App.objects.count(),
        build_seconds=time.monotonic() - began,
    )


# ECS's rolloutState and reason, by how the rollout ended.
ROLLOUT_STATES: dict[str, tuple[str, str]] = {
    Deployment.Status.SUCCEEDED: ("COMPLETED", ""),
    Deployment.Status.ROLLED_BACK: ("FAILED", "ECS deployment circuit breaker: tasks failed"),
    Deployment.Status.FAILED: ("FAILED", "CannotPullContainerError: image not found"),
    Deployment.Status.IN_PROGRESS: ("IN_PROGRESS", ""),
}


def deployment(release: Release, *, in_flight: bool, at: datetime) -> Deployment:
    status = outcome(release.version, in_flight)
    finished = status != Deployment.Status.IN_PROGRESS
    state, reason = ROLLOUT_STATES[status]
    return Deployment(
        app_id=release.app_id,
        release=release,
        status=status,
        ecs_deployment_id=f"ecs-svc/{release.pk:019d}",
        desired_count=2,
        running_count=2 if status == Deployment.Status.SUCCEEDED else 1,
        pending_count=0 if finished else 1,
        failed_count=3 if status == Deployment.Status.ROLLED_BACK else 0,
        rollout_state=state,
        rollout_state_reason=reason,
        started_at=at,
        last_progress_at=at + timedelta(seconds=5),
        finished_at=at + timedelta(seconds=40) if finished else None,
    )


def events(d: Deployment, app_name: str) -> list[DeploymentEvent]:
    start = d.started_at or timezone.now()
    if d.finished_at is None:  # in flight: a long run of ECS events, more than a page shows
        return [
            DeploymentEvent(
                deployment=d, source=DeploymentEvent.Source.ECS, ecs_event_id=f"ev-{d.pk}-{i}",
                message=f"(service {app_name}) has started 1 tasks: (task {i:032x}).",
                created_at=start + timedelta(milliseconds=500 * i),
            )
            for i in range(ROLLOUT_EVENTS)
        ]  # fmt: skip
    messages = [
        (DeploymentEvent.Source.TINYSTACKS, "", "Updated the ECS service."),
        (DeploymentEvent.Source.ECS, f"ev-{d.pk}-1", f"(service {app_name}) has started 2 tasks."),
        (
            DeploymentEvent.Source.ECS,
            f"ev-{d.pk}-2",
            f"(service {app_name}) has reached a steady state.",
        ),
    ]
    return [
        DeploymentEvent(
            deployment=d, source=source, ecs_event_id=event_id, message=message,
            created_at=start + timedelta(seconds=5 * i),
        )
        for i, (source, event_id, message) in enumerate(messages[:EVENTS_PER_ROLLOUT])
    ]  # fmt: skip


def staff_user() -> User:
    user, _ = User.objects.get_or_create(
        username="bench-staff", defaults={"is_staff": True, "is_superuser": True}
    )
    return user


# The measurements


@dataclass(frozen=True)
class Page:
    name: str
    tool: str
    path: Callable[[], str]
    headers: dict[str, str]
    as_staff: bool = False


def pages() -> list[Page]:
    """The pages measured, product first, then the admin's changelists of the same rows."""
    return [
        Page("overview", "TinyStacks", lambda: reverse("overview"), {}),
        Page(
            "releases page", "TinyStacks",
            lambda: reverse("app_releases", args=[MEASURED_APP]), {},
        ),
        Page("rollout fragment (HTMX)", "TinyStacks", rollout_fragment_path, HTMX),
        Page(
            "admin App changelist", "Django admin (reference)",
            lambda: reverse("admin:deployments_app_changelist"), {}, as_staff=True,
        ),
        Page(
            "admin Release changelist", "Django admin (reference)",
            lambda: reverse("admin:deployments_release_changelist"), {}, as_staff=True,
        ),
    ]  # fmt: skip


def rollout_fragment_path() -> str:
    """The URL the app page's live part polls (hx-get) while a rollout is in flight: the app's
    own URL, answered with the `app-live` partial for an HTMX request."""
    return reverse("app", args=[MEASURED_APP])


def client_for(user: User) -> Client:
    client = Client(SERVER_NAME=HOST)
    client.force_login(user)
    return client


def measure(page: Page, client: Client, dataset: Dataset, budget: float, part: int = 4) -> PageRow:
    path = page.path()
    for _ in range(WARM_UP):
        client.get(path, headers=page.headers)
    reset_queries()  # a full log (DEBUG keeps 9,000 queries) would make the capture come back empty
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, headers=page.headers)
    # Read now: every request empties the log the capture is a view of.
    sql = [query["sql"] for query in captured.captured_queries]
    if response.status_code >= 300 and response.status_code != 286:
        raise RuntimeError(f"{path} answered {response.status_code}")
    ms: list[float] = []
    # DEBUG off while timing: no SQL logging, as on a production server.
    with override_settings(DEBUG=False):
        began = time.perf_counter()
        while len(ms) < MAX_REQUESTS and (
            len(ms) < MIN_REQUESTS or time.perf_counter() - began < budget
        ):
            start = time.perf_counter()
            client.get(path, headers=page.headers)
            ms.append((time.perf_counter() - start) * 1000)
    return PageRow(
        part=part,
        page=page.name,
        tool=page.tool,
        size=dataset.label,
        path=path,
        status=response.status_code,
        bytes=len(response.content),
        queries=len(sql),
        ms=ms,
        extra={
            "requests": len(ms),
            "sql": sql,
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "apps_in_database": dataset.total_apps,
            "releases_in_database": dataset.total_releases,
        },
    )


def part_four(quick: bool = False, sizes: Sequence[tuple[int, int]] = SIZES) -> list[PageRow]:
    """Every page at each size; the smaller size is measured before the larger one is made, so
    that the admin (which lists every team's rows) sees each size on its own."""
    staff = staff_user()
    budget = QUICK_BUDGET_SECONDS if quick else BUDGET_SECONDS
    rows: list[PageRow] = []
    for apps, releases in sizes:
        progress(f"part 4: making {apps:,} apps and {releases:,} releases in bulk")
        dataset = build_dataset(apps, releases)
        progress(f"part 4: made them in {dataset.build_seconds:.1f} s; measuring the pages")
        owner, admin = client_for(dataset.owner), client_for(staff)
        for page in pages():
            row = measure(page, admin if page.as_staff else owner, dataset, budget)
            row.extra["build_seconds"] = round(dataset.build_seconds, 2)
            rows.append(row)
    return rows


def latest_dataset_owner(apps: int) -> User | None:
    """The owner of the dataset of `apps` apps part 4 made in this database, if it did."""
    return User.objects.filter(username=f"pages-{apps}-owner").first()


def end_rollouts_in_flight() -> None:
    """End the in-flight rollouts this part made (as succeeded): no sandbox knows their
    services, and the tick of the parts that run next would try to follow them."""
    Deployment.objects.filter(
        app__team__slug__startswith="pages-", status=Deployment.Status.IN_PROGRESS
    ).update(
        status=Deployment.Status.SUCCEEDED,
        running_count=2,
        pending_count=0,
        rollout_state="COMPLETED",
        finished_at=timezone.now(),
    )


# The table


def lines(rows: Sequence[PageRow]) -> tuple[list[Line], list[Target]]:
    """Part 4's rows, with their targets: the same number of queries at every size (on the
    largest size's row) and, for the rollout fragment, p50 under FRAGMENT_TARGET_MS."""
    from bench.http_load import milliseconds
    from bench.run import Line

    out: list[Line] = []
    targets: list[Target] = []
    largest = {row.page: row.size for row in rows}
    for row in rows:
        mine: list[Target] = []
        if row.page.startswith("rollout fragment"):
            mine.append(under(row, FRAGMENT_TARGET_MS))
        if row.size == largest[row.page]:
            sizes = [r for r in rows if r.page == row.page]
            if len(sizes) > 1:
                mine.append(constant_queries(row.page, sizes))
        targets += mine
        out.append(
            Line(
                part=str(row.part),
                scenario=row.scenario,
                tool=row.tool,
                outcome=f"{row.status}, {row.bytes / 1000:,.1f} kB",
                queries=str(row.queries),
                ms=" / ".join(milliseconds(percentile(row.ms, p)) for p in (50, 95, 99)),
                target="; ".join(t.cell() for t in mine) or "—",
            )
        )
    return out, targets


def constant_queries(page: str, sizes: Sequence[PageRow]) -> Target:
    from bench.run import Target

    counts = [r.queries for r in sizes]
    labels = " and ".join(r.size for r in sizes)
    if len(set(counts)) == 1:
        return Target(f"{page}: constant queries", True, f"{counts[0]} queries at {labels}")
    low, high = min(counts), max(counts)
    return Target(
        f"{page}: constant queries",
        False,
        f"{' → '.join(map(str, counts))} queries at {labels}: missed by {high - low} "
        f"(+{(high - low) / low:.0%})",
    )


def under(row: PageRow, bound_ms: float) -> Target:
    """p50 strictly under the bound, saying by how much it is missed otherwise."""
    from bench.run import Target

    p50 = percentile(row.ms, 50)
    name = f"{row.scenario}: p50 under {bound_ms:g} ms"
    if p50 < bound_ms:
        return Target(name, True, f"p50 {p50:.1f} ms < {bound_ms:g} ms")
    over = p50 - bound_ms
    return Target(
        name,
        False,
        f"p50 {p50:.1f} ms ≥ {bound_ms:g} ms: missed by {over:.1f} ms (+{over / bound_ms:.0%})",
    )

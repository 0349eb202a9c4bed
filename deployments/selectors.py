"""Reads for pages: every query a page makes about tenant data starts from a membership."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import User
from django.core.paginator import Page, Paginator
from django.db.models import (
    Case,
    Count,
    Exists,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from deployments.aws import permissions
from deployments.models import (
    ApiToken,
    App,
    AuditEntry,
    AwsAccount,
    Cluster,
    Deployment,
    DeploymentEvent,
    Job,
    Membership,
    Release,
    Team,
)


def memberships_of(user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("team").order_by("team__name")


def accounts_of(team: Team) -> QuerySet[AwsAccount]:
    return AwsAccount.objects.filter(team=team).order_by("name")


def clusters_of(team: Team) -> QuerySet[Cluster]:
    """The team's clusters that still exist (or are on their way out)."""
    return (
        Cluster.objects.filter(team=team)
        .exclude(status=Cluster.Status.DELETED)
        .select_related("account")
        .order_by("name")
    )


def api_tokens_of(team: Team) -> QuerySet[ApiToken]:
    """All of the team's tokens, revoked ones too, newest first within a name."""
    return ApiToken.objects.filter(team=team).order_by("name", "-created_at")


def api_token_by_hash(token_hash: str) -> ApiToken | None:
    """The unrevoked token with this hash, with its team; None when there is none."""
    try:
        return ApiToken.objects.select_related("team").get(
            token_hash=token_hash, revoked_at__isnull=True
        )
    except ApiToken.DoesNotExist:
        return None


# Dashboard pages


def current_membership(
    user: User, team_slug: str | None
) -> tuple[Membership | None, list[Membership]]:
    """The membership of the team the user works in (their chosen one, else their first) and all
    of their memberships, for the team switcher; one query."""
    memberships = list(memberships_of(user))
    chosen = next((m for m in memberships if m.team.slug == team_slug), None)
    return chosen or (memberships[0] if memberships else None), memberships


# A cluster in one of these is changing on its own; pages follow it until it settles.
CLUSTER_BUSY_STATUSES = (
    Cluster.Status.PENDING,
    Cluster.Status.PROVISIONING,
    Cluster.Status.DELETING,
)


@dataclass(frozen=True)
class AccountRow:
    account: AwsAccount
    verify_status: str | None  # of the latest verify_account job; None if there was none
    live_clusters: int

    @property
    def verifying(self) -> bool:
        return self.verify_status in Job.ACTIVE_STATUSES


def account_rows(team: Team) -> list[AccountRow]:
    """The team's accounts, each with the status of its latest verification and how many
    clusters use it: one query whatever the number of accounts."""
    latest_verify = Job.objects.of_kind("awsaccount", "verify_account").filter(
        target_id=OuterRef("pk")
    )
    accounts = accounts_of(team).annotate(
        verify_status=Subquery(latest_verify.order_by("-created_at", "-pk").values("status")[:1]),
        live_clusters=Count("clusters", filter=~Q(clusters__status=Cluster.Status.DELETED)),
    )
    return [
        AccountRow(account, account.verify_status, account.live_clusters) for account in accounts
    ]


def account_by_name(team: Team, name: str) -> AwsAccount | None:
    return AwsAccount.objects.select_related("team").filter(team=team, name=name).first()


def account_latest_verification(account: AwsAccount) -> Job | None:
    return (
        Job.objects.of_kind("awsaccount", "verify_account")
        .filter(target_id=account.pk)
        .order_by("-created_at", "-pk")
        .first()
    )


def account_name_available(team: Team, base: str) -> str:
    """`base`, or `base-2`, `base-3`… : the first name no account of the team has."""
    taken = set(
        AwsAccount.objects.filter(team=team, name__startswith=base).values_list("name", flat=True)
    )
    n = 1
    while (name := base if n == 1 else f"{base}-{n}") in taken:
        n += 1
    return name


def account_trust_policy(account: AwsAccount) -> str:
    """The trust policy to paste; the dashboard's account id is a placeholder unless the operator
    configured it."""
    principal = settings.TINYSTACKS_AWS_ACCOUNT_ID or ACCOUNT_PLACEHOLDER
    return permissions.as_json(permissions.trust_policy(principal, account.external_id))


# What stands for the dashboard's own account id in the trust policy until the operator sets it.
ACCOUNT_PLACEHOLDER = permissions.PLACEHOLDER_ACCOUNT_ID


def account_permissions_policy() -> str:
    return permissions.as_json(permissions.permissions_policy())


def cluster_by_name(team: Team, name: str) -> Cluster | None:
    """The team's live cluster of that name, else the last deleted one (its page still shows
    how the deletion went)."""
    return (
        Cluster.objects.filter(team=team, name=name)
        .select_related("account", "team")
        .order_by(
            Case(When(status=Cluster.Status.DELETED, then=1), default=0), "-updated_at", "-pk"
        )
        .first()
    )


def cluster_latest_job(cluster: Cluster) -> Job | None:
    """The newest job about the cluster (provision, scale or delete), whatever its state."""
    return (
        Job.objects.filter(
            target_type__app_label="deployments",
            target_type__model="cluster",
            target_id=cluster.pk,
        )
        .order_by("-created_at", "-pk")
        .first()
    )


CLUSTER_STEP_LABELS = {
    "service_linked_roles": "Service-linked roles for ECS and Auto Scaling",
    "network": "Network: VPC, internet gateway and routes",
    "subnets": "Subnets, one per availability zone",
    "security_group": "Security group for the instances",
    "roles": "IAM roles and instance profile",
    "launch_template": "Launch template with the ECS-optimised AMI",
    "ecs_cluster": "ECS cluster",
    "auto_scaling_group": "Auto Scaling group",
    "capacity_provider": "Capacity provider with managed scaling",
    "instances_requested": "Instances asked for",
    "instances_joined": "Instances join the ECS cluster",
}


@dataclass(frozen=True)
class StepRow:
    name: str
    label: str
    status: str  # pending | running | done | failed
    error: str


def cluster_steps(cluster: Cluster) -> list[StepRow]:
    """The steps as the job last recorded them; before it starts, the provisioning plan."""
    steps = cluster.steps or (
        [{"name": name, "status": "pending", "error": ""} for name in CLUSTER_STEP_LABELS]
        if cluster.status == Cluster.Status.PENDING
        else []
    )
    return [
        StepRow(
            name=step["name"],
            label=CLUSTER_STEP_LABELS.get(step["name"], step["name"].replace("_", " ")),
            status=step.get("status", "pending"),
            error=step.get("error", ""),
        )
        for step in steps
    ]


CLUSTER_RESOURCE_LABELS = {
    "vpc_id": "VPC",
    "internet_gateway_id": "Internet gateway",
    "route_table_id": "Route table",
    "subnet_ids": "Subnets",
    "security_group_id": "Security group",
    "instance_role_name": "Instance role",
    "instance_profile_arn": "Instance profile",
    "execution_role_arn": "Task execution role",
    "launch_template_id": "Launch template",
    "cluster_arn": "ECS cluster",
    "auto_scaling_group_name": "Auto Scaling group",
    "capacity_provider_name": "Capacity provider",
}
# Shown elsewhere on the page, or another name for a resource already listed.
_RESOURCES_NOT_LISTED = frozenset(
    {
        "availability_zones",
        "container_instances",
        "launch_template_name",
        "auto_scaling_group_arn",
        "capacity_provider_arn",
    }
)


def cluster_resources(cluster: Cluster) -> list[tuple[str, str]]:
    """(what, AWS id) for each resource the cluster owns, in the order they are made."""
    resources = cluster.resources or {}
    keys = [key for key in CLUSTER_RESOURCE_LABELS if key in resources]
    keys += sorted(set(resources) - set(keys) - _RESOURCES_NOT_LISTED)
    rows = []
    for key in keys:
        value = resources[key]
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        rows.append((CLUSTER_RESOURCE_LABELS.get(key, key.replace("_", " ")), shown))
    return rows


def _percent(part: int, whole: int) -> int:
    return round(100 * part / whole) if whole > 0 else 0


@dataclass(frozen=True)
class LiveZone:
    """Container instances in one zone (or in all) as the tick last read them from ECS."""

    instances: int = 0
    active: int = 0
    draining: int = 0
    agents_connected: int = 0
    cpu_registered: int = 0
    cpu_remaining: int = 0
    memory_registered: int = 0
    memory_remaining: int = 0
    running_tasks: int = 0
    pending_tasks: int = 0

    @classmethod
    def from_snapshot(cls, zone: dict[str, Any]) -> LiveZone:
        return cls(**{f.name: int(zone.get(f.name) or 0) for f in fields(cls)})

    def __add__(self, other: LiveZone) -> LiveZone:
        return LiveZone(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def agents_disconnected(self) -> int:
        return self.instances - self.agents_connected

    @property
    def cpu_used(self) -> int:
        return self.cpu_registered - self.cpu_remaining

    @property
    def cpu_percent(self) -> int:
        return _percent(self.cpu_used, self.cpu_registered)

    @property
    def memory_used(self) -> int:
        return self.memory_registered - self.memory_remaining

    @property
    def memory_percent(self) -> int:
        return _percent(self.memory_used, self.memory_registered)


@dataclass(frozen=True)
class ZoneRow:
    zone: str  # "" for instances ECS gave no zone
    subnet_id: str
    expected_instances: int
    live: LiveZone | None  # None: no live numbers (none read yet, or the cluster is not ready)


@dataclass(frozen=True)
class ClusterCapacity:
    zones: list[ZoneRow]
    total: LiveZone | None
    read_at: datetime | None
    error: str  # why the latest read of ECS failed; "" if it did not
    settling: bool  # the instances are catching up with a change: pages follow them


# Instances take minutes to boot and join ECS (provisioning waits up to 15 min for them); a page
# follows a ready cluster's instances for this long after a change, and no longer.
CAPACITY_SETTLE_WINDOW = timedelta(minutes=15)


def cluster_capacity(cluster: Cluster) -> ClusterCapacity:
    """The cluster's availability zones: how the Auto Scaling group spreads the desired instances
    over them (it balances zones), beside what ECS said runs there when the tick last read it
    (`deployments.inventory`). From the database only: pages never call AWS."""
    resources = cluster.resources or {}
    zones: list[str] = list(resources.get("availability_zones") or [])
    subnets: list[str] = list(resources.get("subnet_ids") or [])
    live = _live_zones(cluster)
    share, extra = divmod(cluster.desired_instances, len(zones)) if zones else (0, 0)
    rows = [
        ZoneRow(
            zone=zone,
            subnet_id=subnets[i] if i < len(subnets) else "",
            expected_instances=share + (1 if i < extra else 0),
            live=None if live is None else live.get(zone, LiveZone()),
        )
        for i, zone in enumerate(zones)
    ]
    # Zones the cluster has no subnet in: nothing planned there, but the instances are shown.
    unplanned = {} if live is None else {z: found for z, found in live.items() if z not in zones}
    rows += [ZoneRow(zone, "", 0, unplanned[zone]) for zone in sorted(unplanned)]
    ready = cluster.status == Cluster.Status.READY
    return ClusterCapacity(
        zones=rows,
        total=None if live is None else sum(live.values(), LiveZone()),
        read_at=cluster.capacity_at if ready else None,
        error=cluster.capacity_error if ready else "",
        settling=_capacity_settling(cluster),
    )


def _live_zones(cluster: Cluster) -> dict[str, LiveZone] | None:
    if cluster.live_instances is None:
        return None
    snapshot = cluster.capacity.get("zones", [])
    return {zone["zone"]: LiveZone.from_snapshot(zone) for zone in snapshot}


def _capacity_settling(cluster: Cluster) -> bool:
    """Ready, changed (provisioned or resized) within CAPACITY_SETTLE_WINDOW, and not yet seen
    through: no read since the change, or not the desired number of instances in the last."""
    if (
        cluster.status != Cluster.Status.READY
        or timezone.now() - cluster.updated_at > CAPACITY_SETTLE_WINDOW
    ):
        return False
    read_at = cluster.capacity_at
    return (
        read_at is None
        or read_at < cluster.updated_at
        or cluster.live_instances != cluster.desired_instances
    )


def audit_entries_of(team: Team) -> QuerySet[AuditEntry]:
    """The team's audit log, newest first, with who did it."""
    return (
        AuditEntry.objects.filter(team=team).select_related("actor").order_by("-created_at", "-pk")
    )


# API and command line: apps, releases and rollouts


def _live_version() -> Subquery:
    """The version of the app's live release."""
    live_first = Deployment.objects.filter(app=OuterRef("pk")).live_first()
    return Subquery(live_first.values("release__version")[:1])


def apps_with_status(team: Team) -> QuerySet[App]:
    """The team's apps with their cluster and scaling settings, annotated with `live_version`
    (or None) and `active_deployment_id` (the rollout in flight, or None): one query whatever
    the number of apps."""
    in_flight = Deployment.objects.filter(app=OuterRef("pk"), status__in=Deployment.ACTIVE_STATUSES)
    return (
        App.objects.filter(team=team)
        .select_related("cluster", "scaling")
        .annotate(
            live_version=_live_version(),
            active_deployment_id=Subquery(in_flight.values("pk")[:1]),
        )
        .order_by("name")
    )


def app_with_status(team: Team, name: str) -> App | None:
    return apps_with_status(team).filter(name=name).first()


def app_by_team_slug(team_slug: str, name: str) -> App | None:
    """For the command line, which names an app as <team>/<app>."""
    return (
        App.objects.select_related("team", "cluster")
        .filter(team__slug=team_slug, name=name)
        .first()
    )


def app_releases(app: App) -> QuerySet[Release]:
    """Newest first, with who made each and what it rolled back to."""
    return app.releases.select_related("created_by", "rollback_of").order_by("-version")


def app_deletion_job(app: App) -> Job | None:
    """The app's teardown job while it is queued or running."""
    return (
        Job.objects.app_deletions().filter(target_id=app.pk).order_by("-created_at", "-pk").first()
    )


def team_deployment(team: Team, pk: int) -> Deployment | None:
    """The team's deployment with its app and release; None for another team's."""
    return Deployment.objects.filter(app__team=team, pk=pk).select_related("app", "release").first()


def deployment_events_after(
    deployment: Deployment, after: int, limit: int
) -> tuple[list[DeploymentEvent], bool]:
    """Up to `limit` of the rollout's events recorded after event `after`, in the order they
    were recorded (ids only grow, so a follower passing its last id never misses one), and
    whether more follow."""
    events = list(deployment.events.filter(pk__gt=after).order_by("pk")[: limit + 1])
    return events[:limit], len(events) > limit


def deployment_progress(pk: int) -> Deployment:
    """A deployment as a waiting command line shows it: with its app and release, annotated with
    `latest_event`: the newest ECS event since the rollout started once there is one (ECS may
    report a step before we record ours; earlier events belong to the previous rollout), else our
    newest step (or None); one query."""
    events = DeploymentEvent.objects.filter(deployment=OuterRef("pk"))
    events = events.order_by("-created_at", "-pk")
    from_ecs = events.filter(
        source=DeploymentEvent.Source.ECS, created_at__gte=OuterRef("started_at")
    )
    return (
        Deployment.objects.select_related("app", "release")
        .annotate(
            latest_event=Coalesce(
                Subquery(from_ecs.values("message")[:1]), Subquery(events.values("message")[:1])
            )
        )
        .get(pk=pk)
    )


# App pages


def app_plain(team: Team, name: str) -> App | None:
    """The team's app with nothing annotated: for the polled live part of its page."""
    return App.objects.filter(team=team, name=name).first()


def app_for_page(team: Team, name: str) -> App | None:
    """The team's app as its pages show it: `apps_with_status`'s annotations, its team and its
    cluster's account, and `deleting` (its teardown is queued or running); one query."""
    deleting = Job.objects.app_deletions().filter(target_id=OuterRef("pk"))
    return (
        apps_with_status(team)
        .select_related("team", "cluster__account")
        .annotate(deleting=Exists(deleting))
        .filter(name=name)
        .first()
    )


def ready_clusters_of(team: Team) -> QuerySet[Cluster]:
    """The clusters a new app may go on."""
    return clusters_of(team).filter(status=Cluster.Status.READY)


def _width(part: int, whole: int) -> int:
    """`part` of `whole` as a percentage in steps of 5, for the `w-N` bar classes (CSP: no
    inline styles)."""
    if whole <= 0:
        return 0
    return max(0, min(100, 5 * round(20 * part / whole)))


class RolloutBar:
    """New tasks running and pending against desired, as bar widths; mixed into rows that hold
    a deployment."""

    deployment: Deployment | None

    @property
    def running_width(self) -> int:
        d = self.deployment
        return _width(min(d.running_count, d.desired_count), d.desired_count) if d else 0

    @property
    def pending_width(self) -> int:
        d = self.deployment
        if d is None:
            return 0
        return min(100 - self.running_width, _width(d.pending_count, d.desired_count))


# What the overview says about an app, by its latest rollout's status.
APP_STATES: dict[str, tuple[str, str]] = {
    Deployment.Status.QUEUED: ("in_progress", "Deploying"),
    Deployment.Status.REGISTERING: ("in_progress", "Deploying"),
    Deployment.Status.UPDATING: ("in_progress", "Deploying"),
    Deployment.Status.IN_PROGRESS: ("in_progress", "Deploying"),
    Deployment.Status.SUCCEEDED: ("succeeded", "Healthy"),
    Deployment.Status.FAILED: ("failed", "Failed"),
    Deployment.Status.ROLLED_BACK: ("rolled_back", "Rolled back"),
    Deployment.Status.TIMED_OUT: ("timed_out", "Stuck: timed out"),
    Deployment.Status.CANCELLED: ("cancelled", "Cancelled"),
}


@dataclass(frozen=True)
class AppSummary(RolloutBar):
    app: App
    live: Release | None
    deployment: Deployment | None  # the latest rollout, with its release
    deleting: bool

    @property
    def in_flight(self) -> bool:
        return self.deleting or (self.deployment is not None and self.deployment.is_active)

    @property
    def state(self) -> str:
        if self.deleting:
            return "deleting"
        if self.deployment is None:
            return "pending"
        return APP_STATES[self.deployment.status][0]

    @property
    def state_label(self) -> str:
        if self.deleting:
            return "Deleting…"
        if self.deployment is None:
            return "Not deployed yet"
        return APP_STATES[self.deployment.status][1]


OVERVIEW_APPS_PAGE = 50


def app_summaries(team: Team, page_number: str | None, name_part: str = "") -> Page[AppSummary]:
    """One page of the team's apps (those whose name contains `name_part`), by name, each with
    its live release, latest rollout and whether it is being deleted: four queries whatever the
    number of apps."""
    rollouts = Deployment.objects.filter(app=OuterRef("pk")).order_by("-pk")
    live_first = Deployment.objects.filter(app=OuterRef("pk")).live_first()
    deleting = Job.objects.app_deletions().filter(target_id=OuterRef("pk"))
    apps = (
        App.objects.filter(team=team, name__icontains=name_part)
        .select_related("cluster")
        .annotate(
            latest_deployment_id=Subquery(rollouts.values("pk")[:1]),
            live_release_id=Subquery(live_first.values("release_id")[:1]),
            deleting=Exists(deleting),
        )
        .order_by("name")
    )
    paginator: Paginator[Any] = Paginator(apps, OVERVIEW_APPS_PAGE)
    page = paginator.get_page(page_number)
    shown = list(page.object_list)
    deployment_ids = [getattr(app, "latest_deployment_id", None) for app in shown]
    release_ids = [getattr(app, "live_release_id", None) for app in shown]
    deployments = Deployment.objects.select_related("release").in_bulk(
        [pk for pk in deployment_ids if pk is not None]
    )
    releases = Release.objects.in_bulk([pk for pk in release_ids if pk is not None])
    summaries = [
        AppSummary(
            app=app,
            live=releases.get(release_id) if release_id else None,
            deployment=deployments.get(deployment_id) if deployment_id else None,
            deleting=bool(getattr(app, "deleting", False)),
        )
        for app, deployment_id, release_id in zip(shown, deployment_ids, release_ids, strict=True)
    ]
    return Page(summaries, page.number, paginator)


ROLLOUT_EVENTS = 20


def _elapsed(deployment: Deployment, now: datetime) -> timedelta:
    start = deployment.started_at or deployment.created_at
    return max(timedelta(0), (deployment.finished_at or now) - start)


@dataclass(frozen=True)
class Rollout(RolloutBar):
    deployment: Deployment  # with its release and who started it
    events: list[DeploymentEvent]  # newest first, at most ROLLOUT_EVENTS
    elapsed: timedelta


def app_rollout(app: App) -> Rollout | None:
    """The app's latest rollout with ECS's newest events; two queries, none if never deployed."""
    deployment = (
        Deployment.objects.filter(app=app)
        .select_related("release", "started_by")
        .order_by("-pk")
        .first()
    )
    if deployment is None:
        return None
    events = list(deployment.events.order_by("-created_at", "-pk")[:ROLLOUT_EVENTS])
    return Rollout(
        deployment=deployment, events=events, elapsed=_elapsed(deployment, timezone.now())
    )


def app_deployment(app: App, pk: int) -> Deployment | None:
    return Deployment.objects.filter(app=app, pk=pk).select_related("release", "started_by").first()


DEPLOYMENT_EVENTS = 500


def deployment_timeline(deployment: Deployment) -> list[DeploymentEvent]:
    """The rollout's events, oldest first (capped: a stuck rollout can report for hours)."""
    return list(deployment.events.order_by("created_at", "pk")[:DEPLOYMENT_EVENTS])


TASKS_STARTED = re.compile(r"has started (\d+) tasks?")
TASKS_STOPPED = re.compile(r"has stopped (\d+) running tasks?")


@dataclass(frozen=True)
class ChartSeries:
    label: str
    css: str
    points: str  # an SVG polyline's points
    total: int


@dataclass(frozen=True)
class RolloutChart:
    """Tasks ECS started and stopped during a rollout, cumulatively, from its service events:
    we keep no time series of task counts, so the chart shows only what the events say."""

    WIDTH: ClassVar[int] = 640
    HEIGHT: ClassVar[int] = 200
    LEFT: ClassVar[int] = 40
    RIGHT: ClassVar[int] = 16
    TOP: ClassVar[int] = 14
    BOTTOM: ClassVar[int] = 28

    series: list[ChartSeries]
    y_max: int
    desired: int
    desired_y: float
    span: timedelta

    @property
    def x0(self) -> int:
        return self.LEFT

    @property
    def x1(self) -> int:
        return self.WIDTH - self.RIGHT

    @property
    def y0(self) -> int:
        return self.HEIGHT - self.BOTTOM

    @property
    def y1(self) -> int:
        return self.TOP

    @property
    def label_y(self) -> int:
        return self.HEIGHT - 8


def rollout_chart(
    deployment: Deployment, events: list[DeploymentEvent], now: datetime | None = None
) -> RolloutChart | None:
    """None when ECS has reported no task starting or stopping (yet)."""
    start = deployment.started_at or deployment.created_at
    end = deployment.finished_at or now or timezone.now()
    steps: dict[str, list[tuple[datetime, int]]] = {"started": [], "stopped": []}
    for event in events:
        for key, pattern in (("started", TASKS_STARTED), ("stopped", TASKS_STOPPED)):
            if match := pattern.search(event.message):
                steps[key].append((max(event.created_at, start), int(match[1])))
    if not steps["started"] and not steps["stopped"]:
        return None
    end = max([end, *(at for series in steps.values() for at, _ in series)])
    span = max(end - start, timedelta(seconds=1))
    totals = {key: sum(n for _, n in series) for key, series in steps.items()}
    y_max = max(deployment.desired_count, *totals.values(), 1)
    box = RolloutChart
    width, height = box.WIDTH - box.LEFT - box.RIGHT, box.HEIGHT - box.TOP - box.BOTTOM

    def x(at: datetime) -> float:
        return box.LEFT + width * min(1.0, (at - start) / span)

    def y(value: int) -> float:
        return box.TOP + height * (1 - value / y_max)

    def points(series: list[tuple[datetime, int]]) -> str:
        total, path = 0, [(x(start), y(0))]
        for at, n in series:
            path.append((x(at), y(total)))
            total += n
            path.append((x(at), y(total)))
        path.append((x(end), y(total)))
        return " ".join(f"{px:.1f},{py:.1f}" for px, py in path)

    labels = {"started": "Tasks started", "stopped": "Tasks stopped"}
    return RolloutChart(
        series=[
            ChartSeries(labels[key], f"chart-{key}", points(steps[key]), totals[key])
            for key in ("started", "stopped")
        ],
        y_max=y_max,
        desired=deployment.desired_count,
        desired_y=round(y(deployment.desired_count), 1),
        span=span,
    )


RELEASES_PAGE_SIZE = 50
RELEASE_SETTINGS = (
    ("cpu", "CPU", "{} units"),
    ("memory", "Memory", "{} MiB"),
    ("port", "Port", "{}"),
    ("command", "Command", "{}"),
    ("health_check_path", "Health check", "{}"),
)


@dataclass(frozen=True)
class ReleaseChanges:
    """What a release changed against the one before it: names of config vars only (values may
    be secrets), names of secrets added or removed, and settings with their old and new values.
    (A replaced secret cannot be told from one re-encrypted by key rotation: the release's
    description says which secret was set.)"""

    image: tuple[str, str] | None
    added: list[str]
    removed: list[str]
    changed: list[str]
    secrets_added: list[str]
    secrets_removed: list[str]
    settings: list[tuple[str, str, str]]  # (what, before, after)

    @property
    def nothing(self) -> bool:
        return not (
            self.image or self.added or self.removed or self.changed or self.secrets_added
            or self.secrets_removed or self.settings
        )  # fmt: skip


def _setting(template: str, value: object) -> str:
    return "(none)" if value in (None, "") else template.format(value)


def release_changes(before: Release, after: Release) -> ReleaseChanges:
    old_env: dict[str, str] = before.config.get("env") or {}
    new_env: dict[str, str] = after.config.get("env") or {}
    old_secrets, new_secrets = (set(r.config.get("secrets") or {}) for r in (before, after))
    return ReleaseChanges(
        image=(before.image, after.image) if before.image != after.image else None,
        added=sorted(set(new_env) - set(old_env)),
        removed=sorted(set(old_env) - set(new_env)),
        changed=sorted(k for k in set(new_env) & set(old_env) if new_env[k] != old_env[k]),
        secrets_added=sorted(new_secrets - old_secrets),
        secrets_removed=sorted(old_secrets - new_secrets),
        settings=[
            (
                label,
                _setting(template, before.config.get(key)),
                _setting(template, after.config.get(key)),
            )
            for key, label, template in RELEASE_SETTINGS
            if before.config.get(key) != after.config.get(key)
        ],
    )


@dataclass(frozen=True)
class ReleaseRow:
    release: Release  # annotated with its latest rollout: outcome, rollout_id, times
    changes: ReleaseChanges | None  # None for the first release
    is_live: bool

    @property
    def outcome(self) -> str | None:
        return getattr(self.release, "outcome", None)

    @property
    def outcome_label(self) -> str:
        return Deployment.Status(self.outcome).label if self.outcome else ""

    @property
    def rollout_id(self) -> int | None:
        return getattr(self.release, "rollout_id", None)

    @property
    def duration(self) -> timedelta | None:
        started = getattr(self.release, "rollout_started", None)
        finished = getattr(self.release, "rollout_finished", None)
        return finished - started if started and finished else None


@dataclass(frozen=True)
class ReleaseHistory:
    page: Page[Release]
    rows: list[ReleaseRow]


def release_history(app: App, page_number: str | None, live_version: int | None) -> ReleaseHistory:
    """One page of the app's releases, newest first, each with what it changed and how its
    latest rollout went; two queries whatever the number of releases."""
    rollouts = Deployment.objects.filter(release=OuterRef("pk")).order_by("-pk")
    releases: QuerySet[Release] = (
        app.releases.select_related("created_by", "rollback_of")
        .annotate(
            outcome=Subquery(rollouts.values("status")[:1]),
            rollout_id=Subquery(rollouts.values("pk")[:1]),
            rollout_started=Subquery(rollouts.values("started_at")[:1]),
            rollout_finished=Subquery(rollouts.values("finished_at")[:1]),
        )
        .order_by("-version")
    )
    page = Paginator(releases, RELEASES_PAGE_SIZE).get_page(page_number)
    # One row past the page: the release before its last one, to say what that one changed.
    first = (page.number - 1) * RELEASES_PAGE_SIZE
    fetched = list(releases[first : first + RELEASES_PAGE_SIZE + 1])
    shown = page.object_list = fetched[:RELEASES_PAGE_SIZE]
    previous = [*fetched[1:], None][: len(shown)]
    rows = [
        ReleaseRow(
            release=release,
            changes=release_changes(prior, release) if prior is not None else None,
            is_live=release.version == live_version,
        )
        for release, prior in zip(shown, previous, strict=True)
    ]
    return ReleaseHistory(page=page, rows=rows)


def app_scaling_job(app: App) -> Job | None:
    """The newest job applying the app's scaling settings to its service."""
    return (
        Job.objects.of_kind("app", "apply_scaling")
        .filter(target_id=app.pk)
        .order_by("-created_at", "-pk")
        .first()
    )

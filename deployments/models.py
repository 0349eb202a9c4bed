"""The domain model: teams own AWS accounts, clusters and apps; apps have releases and rollouts.

Rules that the database can keep live in constraints; status fields are explicit choices whose
allowed transitions are declared here, beside them, and applied by `deployments.transitions`.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q

from deployments.capacity import DEFAULT_INSTANCE_TYPE, INSTANCE_TYPE_CHOICES, validate_task_size

name_validator = RegexValidator(
    r"\A[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?\Z",
    "Use 1–40 lowercase letters, digits and hyphens, starting and ending with a letter or digit.",
)
role_arn_validator = RegexValidator(
    r"\Aarn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}\Z",
    "Enter an IAM role ARN such as arn:aws:iam::123456789012:role/TinyStacksAccess.",
)
region_validator = RegexValidator(
    r"\A[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d\Z", "Enter an AWS region such as eu-west-1."
)


def generate_external_id() -> str:
    """An unguessable ExternalId, one per account connection (prevents the confused deputy)."""
    return f"ts-{secrets.token_urlsafe(24)}"


Transitions = dict[str, frozenset[str]]

# A deployment in one of these is "in flight"; the database allows one per app.
MAX_TASKS = 5000  # ECS: a service runs at most 5,000 tasks
DEPLOYMENT_ACTIVE_STATUSES = ("queued", "registering", "updating", "in_progress")


class Team(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=40, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        DEPLOYER = "deployer", "Deployer"
        VIEWER = "viewer", "Viewer"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.DEPLOYER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="one_membership_per_team_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"

    @property
    def can_deploy(self) -> bool:
        return self.role in (self.Role.OWNER, self.Role.DEPLOYER)


class AwsAccount(models.Model):
    class Mode(models.TextChoices):
        SANDBOX = "sandbox", "Local sandbox (simulated AWS)"
        ASSUME_ROLE = "assume_role", "Assume an IAM role in your account"
        AMBIENT = "ambient", "The dashboard's own credentials"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="aws_accounts")
    name = models.CharField(max_length=40, validators=[name_validator])
    mode = models.CharField(max_length=12, choices=Mode.choices, default=Mode.SANDBOX)
    role_arn = models.CharField(max_length=600, blank=True, validators=[role_arn_validator])
    external_id = models.CharField(
        max_length=64, unique=True, default=generate_external_id, editable=False
    )
    region = models.CharField(max_length=25, default="us-east-1", validators=[region_validator])
    verified_at = models.DateTimeField(null=True, blank=True)
    verification_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team", "name"]
        verbose_name = "AWS account"
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="account_name_unique_per_team"),
            models.CheckConstraint(
                condition=~Q(mode="assume_role") | ~Q(role_arn=""),
                name="assume_role_needs_role_arn",
                violation_error_message="An assume_role account needs a role ARN.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.team.slug}/{self.name}"

    def clean(self) -> None:
        if self.mode == self.Mode.SANDBOX and not settings.TINYSTACKS_ALLOW_SANDBOX:
            raise ValidationError(
                {
                    "mode": "The local sandbox is turned off on this server; connect an AWS "
                    "account through an IAM role."
                }
            )


class Cluster(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROVISIONING = "provisioning", "Provisioning"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"
        DELETING = "deleting", "Deleting"
        DELETED = "deleted", "Deleted"

    TRANSITIONS: ClassVar[Transitions] = {
        Status.PENDING: frozenset({Status.PROVISIONING, Status.DELETING}),
        Status.PROVISIONING: frozenset({Status.READY, Status.FAILED}),
        Status.READY: frozenset({Status.PROVISIONING, Status.DELETING}),
        Status.FAILED: frozenset({Status.PROVISIONING, Status.DELETING}),
        Status.DELETING: frozenset({Status.DELETED, Status.FAILED}),
        Status.DELETED: frozenset(),
    }

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="clusters")
    account = models.ForeignKey(AwsAccount, on_delete=models.PROTECT, related_name="clusters")
    name = models.CharField(max_length=40, validators=[name_validator])
    region = models.CharField(max_length=25, validators=[region_validator])
    instance_type = models.CharField(
        max_length=20, choices=INSTANCE_TYPE_CHOICES, default=DEFAULT_INSTANCE_TYPE
    )
    min_instances = models.PositiveSmallIntegerField(default=2, validators=[MaxValueValidator(100)])
    desired_instances = models.PositiveSmallIntegerField(
        default=2, validators=[MaxValueValidator(100)]
    )
    max_instances = models.PositiveSmallIntegerField(default=4, validators=[MaxValueValidator(100)])
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    status_reason = models.TextField(blank=True)
    # Per provisioning step: [{"name", "status", "error"}], for pages to show progress.
    steps = models.JSONField(default=list, blank=True)
    # The AWS resources this cluster owns, by kind: {"vpc_id": ..., "cluster_arn": ...}.
    resources = models.JSONField(default=dict, blank=True)
    # Live capacity as the tick last read it from ECS, for pages (which never call AWS):
    # {"zones": [deployments.aws.inventory.ZoneCapacity as a dict, ...]}, read at capacity_at.
    capacity = models.JSONField(default=dict, blank=True)
    capacity_at = models.DateTimeField(null=True, blank=True)
    # Why the latest read failed ("" once one succeeds); the snapshot above is kept meanwhile.
    capacity_error = models.TextField(blank=True)
    # The latest read, successful or not: reads are spaced from it.
    capacity_tried_at = models.DateTimeField(null=True, blank=True)
    # The job working on this cluster's AWS resources; one at a time (claimed conditionally).
    current_job = models.ForeignKey(
        "Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # What AWS knows the cluster's resources by, fixed on the first save (aws_names_assign).
    ecs_name = models.CharField(max_length=255, editable=False)
    # Roles, instance profile, launch template, Auto Scaling group and capacity provider are
    # named `<name_prefix>-<kind>` (provisioning.ClusterSpec.name).
    name_prefix = models.CharField(max_length=50, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["team", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "name"],
                condition=~Q(status="deleted"),
                name="live_cluster_name_unique_per_team",
            ),
            models.CheckConstraint(
                condition=Q(min_instances__lte=F("desired_instances"))
                & Q(desired_instances__lte=F("max_instances"))
                & Q(max_instances__lte=100),
                name="cluster_instances_ordered",
                violation_error_message="Instances must satisfy min ≤ desired ≤ max ≤ 100.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.team.slug}/{self.name}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        aws_names_assign(self)
        super().save(*args, **kwargs)

    @property
    def live_instances(self) -> int | None:
        """Instances registered with ECS as the tick last read them; None before the first read,
        and unless the cluster is ready (reads stop when it is not, so the numbers would be old)."""
        if self.capacity_at is None or self.status != self.Status.READY:
            return None
        return sum(int(zone["instances"]) for zone in self.capacity.get("zones", []))


class App(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="apps")
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="apps")
    name = models.CharField(max_length=40, validators=[name_validator])
    port = models.PositiveIntegerField(
        default=80, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    # Opt-in: the check runs curl or wget inside the container, which not every image has.
    health_check_path = models.CharField(
        max_length=200,
        blank=True,
        validators=[RegexValidator(r"\A/[^\s]*\Z", "Enter a path starting with /.")],
        help_text="Checked inside the container (curl or wget) when set; empty for no check.",
    )
    cpu = models.PositiveIntegerField(default=256, help_text="CPU units; 1024 = 1 vCPU.")
    memory = models.PositiveIntegerField(default=512, help_text="MiB")
    command = models.CharField(max_length=1000, blank=True)
    desired_count = models.PositiveIntegerField(
        default=2, validators=[MaxValueValidator(MAX_TASKS)]
    )
    min_healthy_percent = models.PositiveSmallIntegerField(
        default=100, validators=[MaxValueValidator(100)]
    )
    max_percent = models.PositiveSmallIntegerField(
        default=200, validators=[MinValueValidator(100), MaxValueValidator(400)]
    )
    circuit_breaker = models.BooleanField(
        default=True, help_text="Stop a failing rollout and roll back to the last good release."
    )
    rollout_timeout_seconds = models.PositiveIntegerField(
        default=15 * 60, validators=[MinValueValidator(60), MaxValueValidator(24 * 60 * 60)]
    )
    config_vars = models.JSONField(default=dict, blank=True)
    # Secret config vars: name → Fernet token (deployments.secrets); never shown, only named.
    secrets = models.JSONField(default=dict, blank=True, editable=False)
    service_arn = models.CharField(max_length=600, blank=True)
    # What AWS knows the app's resources by, fixed on the first save (aws_names_assign): the ECS
    # service, the task definition family, and the log group and Parameter Store path.
    service_name = models.CharField(max_length=255, editable=False)
    task_family = models.CharField(max_length=255, editable=False)
    aws_path = models.CharField(max_length=200, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["team", "name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="app_name_unique_per_team"),
            models.CheckConstraint(
                condition=Q(min_healthy_percent__lte=100) & Q(max_percent__gte=100),
                name="app_rolling_update_bounds",
                violation_error_message="Minimum healthy must be ≤ 100 % and maximum ≥ 100 %.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.team.slug}/{self.name}"

    def clean(self) -> None:
        instance_type = self.cluster.instance_type if self.cluster_id else None
        validate_task_size(self.cpu, self.memory, instance_type)

    def save(self, *args: Any, **kwargs: Any) -> None:
        aws_names_assign(self)
        super().save(*args, **kwargs)


def aws_names_assign(row: Cluster | App) -> None:
    """Name a new row's AWS resources, once, whichever path makes the row: a renamed team,
    cluster or app keeps its resources. The row's uuid ends every name, so no two rows (of any
    team, or of two installations sharing an account) ever share one; the team and object names
    before it are for humans. Longest: 125 of ECS's 255 characters, an IAM role 53 of 64. Rows
    made earlier keep the names older formulas gave them (migration 0012)."""
    if isinstance(row, Cluster) and not row.ecs_name:
        row.ecs_name = f"tinystacks-{row.team.slug}-{row.name}-{row.uuid.hex}"
        row.name_prefix = f"tinystacks-{row.uuid.hex}"
    elif isinstance(row, App) and not row.service_name:
        base = f"{row.team.slug}/{row.name}-{row.uuid.hex}"
        row.service_name = f"{row.name}-{row.uuid.hex}"
        row.task_family = f"tinystacks-{base.replace('/', '-')}"
        row.aws_path = f"{team_aws_path(row.team)}/{row.name}-{row.uuid.hex}"


def team_aws_path(team: Team) -> str:
    """What every app's `aws_path` (its log group and Parameter Store path) of the team starts
    with, whatever formula named it (migration 0014's too): the team's slug never changes once
    the team exists. The cluster's task-execution role may read the parameters under it only."""
    return f"/tinystacks/{team.slug}"


class ScalingSettings(models.Model):
    app = models.OneToOneField(App, on_delete=models.CASCADE, related_name="scaling")
    autoscaling_enabled = models.BooleanField(default=True)
    min_tasks = models.PositiveIntegerField(default=2, validators=[MaxValueValidator(MAX_TASKS)])
    max_tasks = models.PositiveIntegerField(default=5, validators=[MaxValueValidator(MAX_TASKS)])
    cpu_target = models.PositiveSmallIntegerField(
        default=75, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "scaling settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(min_tasks__lte=F("max_tasks")),
                name="scaling_min_not_above_max",
                violation_error_message="Minimum tasks must not exceed maximum tasks.",
            ),
            models.CheckConstraint(
                condition=Q(cpu_target__gte=1) & Q(cpu_target__lte=100),
                name="scaling_cpu_target_percent",
                violation_error_message="The CPU target is a percentage between 1 and 100.",
            ),
        ]

    def __str__(self) -> str:
        return f"scaling of {self.app}"


class Release(models.Model):
    """An immutable, numbered snapshot of what an app runs: image plus config."""

    class Kind(models.TextChoices):
        DEPLOY = "deploy", "Deploy"
        CONFIG = "config", "Config change"
        ROLLBACK = "rollback", "Rollback"

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="releases")
    version = models.PositiveIntegerField()
    image = models.CharField(max_length=1024)
    # env, cpu, memory, port, command, health_check_path as they were when released.
    config = models.JSONField(default=dict)
    task_definition_arn = models.CharField(max_length=600, blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.DEPLOY)
    rollback_of = models.ForeignKey(
        "self", on_delete=models.RESTRICT, null=True, blank=True, related_name="rollbacks"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    description = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["app", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["app", "version"], name="release_version_unique"),
            models.CheckConstraint(condition=Q(version__gte=1), name="release_version_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.app} v{self.version}"

    @property
    def label(self) -> str:
        return f"v{self.version}"


class DeploymentQuerySet(models.QuerySet["Deployment"]):
    def live_first(self) -> DeploymentQuerySet:
        """Successful rollouts, newest first: the first one's release is the one the app runs."""
        return self.filter(status=Deployment.Status.SUCCEEDED).order_by("-finished_at", "-pk")


class Deployment(models.Model):
    """One rollout of one release, followed until ECS says how it ended."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        REGISTERING = "registering", "Registering task definition"
        UPDATING = "updating", "Updating service"
        IN_PROGRESS = "in_progress", "Rolling out"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        ROLLED_BACK = "rolled_back", "Rolled back"
        TIMED_OUT = "timed_out", "Timed out"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE_STATUSES: ClassVar[tuple[str, ...]] = DEPLOYMENT_ACTIVE_STATUSES
    # Endings reachable from every in-flight state.
    _ENDINGS = frozenset({Status.FAILED, Status.TIMED_OUT, Status.CANCELLED})
    TRANSITIONS: ClassVar[Transitions] = {
        Status.QUEUED: _ENDINGS | {Status.REGISTERING},
        Status.REGISTERING: _ENDINGS | {Status.UPDATING},
        Status.UPDATING: _ENDINGS | {Status.IN_PROGRESS},
        Status.IN_PROGRESS: _ENDINGS | {Status.SUCCEEDED, Status.ROLLED_BACK},
        Status.SUCCEEDED: frozenset(),
        Status.FAILED: frozenset(),
        Status.ROLLED_BACK: frozenset(),
        Status.TIMED_OUT: frozenset(),
        Status.CANCELLED: frozenset(),
    }

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="deployments")
    # RESTRICT, not PROTECT: deleting the app deletes its deployments and releases together.
    release = models.ForeignKey(Release, on_delete=models.RESTRICT, related_name="deployments")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    ecs_deployment_id = models.CharField(max_length=100, blank=True)
    desired_count = models.PositiveIntegerField(default=0)
    running_count = models.PositiveIntegerField(default=0)
    pending_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    # The most tasks of this deployment seen running and healthy at once: only a new high is
    # progress, so tasks that start and crash over and over do not hold off the rollout timeout.
    healthy_peak = models.PositiveIntegerField(default=0)
    rollout_state = models.CharField(max_length=20, blank=True)
    rollout_state_reason = models.TextField(blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    last_progress_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = DeploymentQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["app"],
                condition=Q(status__in=DEPLOYMENT_ACTIVE_STATUSES),
                name="one_active_deployment_per_app",
                violation_error_message="A rollout is already in flight for this app.",
            ),
        ]
        indexes = [
            models.Index(fields=["status"], name="deployment_status_idx"),
            # "The app's latest successful rollout" (its live release), read on every page poll.
            models.Index(
                fields=["app", "status", "-finished_at", "-id"], name="deployment_app_latest_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.release} rollout #{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES


class DeploymentEvent(models.Model):
    class Source(models.TextChoices):
        ECS = "ecs", "ECS"
        TINYSTACKS = "tinystacks", "TinyStacks"

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="events")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.TINYSTACKS)
    ecs_event_id = models.CharField(max_length=100, blank=True)
    message = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["deployment", "created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "ecs_event_id"],
                condition=~Q(ecs_event_id=""),
                name="ecs_event_once_per_deployment",
            )
        ]

    def __str__(self) -> str:
        return self.message[:80]


class JobQuerySet(models.QuerySet["Job"]):
    def of_kind(self, model: str, kind: str) -> JobQuerySet:
        """Jobs of `kind` on rows of `model`. By the target type's natural key in the query
        itself: no ContentType lookup, so no extra query."""
        return self.filter(
            kind=kind, target_type__app_label="deployments", target_type__model=model
        )

    def app_deletions(self) -> JobQuerySet:
        """App teardowns queued or running: their apps are being deleted."""
        return self.of_kind("app", "delete_app").filter(status__in=Job.ACTIVE_STATUSES)


class Job(models.Model):
    """A background job as users and staff see it; Redis only carries the id to a worker."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    ACTIVE_STATUSES: ClassVar[tuple[str, ...]] = (Status.QUEUED, Status.RUNNING)
    TRANSITIONS: ClassVar[Transitions] = {
        Status.QUEUED: frozenset({Status.RUNNING, Status.FAILED}),
        # A job that ran and failed may be queued again (a retry or the reconciler).
        Status.RUNNING: frozenset({Status.SUCCEEDED, Status.FAILED, Status.QUEUED}),
        Status.SUCCEEDED: frozenset(),
        Status.FAILED: frozenset({Status.QUEUED}),
    }

    kind = models.CharField(max_length=50)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, null=True, blank=True)
    target_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, null=True, blank=True)
    target_id = models.PositiveBigIntegerField(null=True, blank=True)
    target = GenericForeignKey("target_type", "target_id")
    rq_id = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Times AWS throttled it or could not be reached; drives the back-off.
    retries = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    log = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Refreshed by the run while it lives: a running row whose heartbeat is stale lost its worker.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "kind"], name="job_status_kind_idx"),
            models.Index(fields=["target_type", "target_id"], name="job_target_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"


class AuditEntry(models.Model):
    """Who did what to which object, when and from where. Written by services only."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="audit_entries")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    action = models.CharField(max_length=50)
    target_type = models.ForeignKey(ContentType, on_delete=models.SET_NULL, null=True, blank=True)
    target_id = models.PositiveBigIntegerField(null=True, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["team", "-created_at"], name="audit_team_recent_idx")]

    def __str__(self) -> str:
        return f"{self.action} {self.target_repr}"


api_token_name_validator = RegexValidator(
    r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,59}\Z",
    "Use up to 60 letters, digits, dots, hyphens and underscores, starting with a letter or digit.",
)


class ApiToken(models.Model):
    """A team's bearer token for the API. Only a SHA-256 hash of the secret is stored: the secret
    itself is shown once, when the token is made, and cannot be recovered afterwards."""

    SECRET_PREFIX: ClassVar[str] = "tsk_"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=60, validators=[api_token_name_validator])
    role = models.CharField(
        max_length=10, choices=Membership.Role.choices, default=Membership.Role.DEPLOYER
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    # The secret's first characters, so people can tell their tokens apart; not enough to guess it.
    prefix = models.CharField(max_length=12, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["team", "name", "-created_at"]
        verbose_name = "API token"
        constraints = [
            models.UniqueConstraint(
                fields=["team", "name"],
                condition=Q(revoked_at__isnull=True),
                name="live_api_token_name_unique_per_team",
                violation_error_message="This team already has an active API token of that name.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.team.slug}/{self.name}"

    @staticmethod
    def hash_secret(secret: str) -> str:
        import hashlib

        return hashlib.sha256(secret.encode()).hexdigest()

    @property
    def can_write(self) -> bool:
        return self.revoked_at is None and self.role in (
            Membership.Role.OWNER,
            Membership.Role.DEPLOYER,
        )

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

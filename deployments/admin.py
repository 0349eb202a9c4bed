"""The support admin: find anything by team, app, image, ARN or ExternalId in a constant number of
queries; AWS identifiers and timestamps are read-only because AWS, not support, owns them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from deployments import services
from deployments.client_address import client_address
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
    ScalingSettings,
    Team,
)


def admin_link(obj: Model | None, text: str | None = None) -> str:
    """A link to `obj`'s change page, for following relations across the admin."""
    if obj is None:
        return "—"
    meta = obj._meta
    url = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text or str(obj))


class ReadOnlyInline(admin.TabularInline):  # type: ignore[type-arg]
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MembershipInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin[Team]):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]

    # The slug tags the team's AWS resources (tinystacks:team), which are known as ours by it.
    def get_readonly_fields(self, request: HttpRequest, obj: Team | None = None) -> list[str]:
        return ["slug"] if obj else []

    def get_prepopulated_fields(
        self, request: HttpRequest, obj: Team | None = None
    ) -> dict[str, Sequence[str]]:
        return {} if obj else {"slug": ["name"]}


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin[Membership]):
    list_display = ["user", "team", "role", "created_at"]
    list_filter = ["role"]
    list_select_related = ["user", "team"]
    search_fields = ["user__username", "user__email", "team__name", "team__slug"]
    autocomplete_fields = ["user", "team"]


@admin.register(AwsAccount)
class AwsAccountAdmin(admin.ModelAdmin[AwsAccount]):
    list_display = ["name", "team", "mode", "region", "verified_at", "created_at"]
    list_filter = ["mode", "region"]
    list_select_related = ["team"]
    search_fields = ["name", "team__name", "team__slug", "role_arn", "external_id"]
    autocomplete_fields = ["team"]
    readonly_fields = ["external_id", "verified_at", "verification_error", "created_at"]


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin[Cluster]):
    list_display = [
        "name", "team", "account", "region", "instance_type", "instances", "status", "updated_at",
    ]  # fmt: skip
    list_filter = ["status", "region", "instance_type"]
    list_select_related = ["team", "account__team"]
    search_fields = ["name", "uuid", "team__name", "team__slug", "account__name", "resources"]
    autocomplete_fields = ["team", "account"]
    readonly_fields = ["uuid", "status", "status_reason", "steps", "resources", "capacity",
                       "capacity_at", "capacity_error", "capacity_tried_at", "created_at",
                       "updated_at", "jobs_link"]  # fmt: skip

    @admin.display(description="instances (min/desired/max)")
    def instances(self, cluster: Cluster) -> str:
        return f"{cluster.min_instances}/{cluster.desired_instances}/{cluster.max_instances}"

    @admin.display(description="jobs")
    def jobs_link(self, cluster: Cluster) -> str:
        url = reverse("admin:deployments_job_changelist")
        return format_html(
            '<a href="{}?target_type__model=cluster&target_id={}">Jobs of this cluster</a>',
            url,
            cluster.pk,
        )


class ScalingSettingsInline(admin.StackedInline):  # type: ignore[type-arg]
    model = ScalingSettings
    can_delete = False
    readonly_fields = ["applied_at"]


class ReleaseInline(ReadOnlyInline):
    model = Release
    readonly_fields = (
        "version",
        "image",
        "kind",
        "task_definition_arn",
        "created_by",
        "created_at",
    )
    fields = readonly_fields
    ordering = ["-version"]


class DeploymentInline(ReadOnlyInline):
    model = Deployment
    fk_name = "app"
    readonly_fields = ("release", "status", "running_count", "desired_count", "rollout_state",
                       "created_at")  # fmt: skip
    fields = readonly_fields


@admin.register(App)
class AppAdmin(admin.ModelAdmin[App]):
    list_display = ["name", "team", "cluster", "desired_count", "cpu", "memory", "updated_at"]
    list_filter = ["circuit_breaker"]
    list_select_related = ["team", "cluster__team"]
    search_fields = ["name", "team__name", "team__slug", "cluster__name", "service_arn",
                     "releases__image"]  # fmt: skip
    autocomplete_fields = ["team", "cluster"]
    readonly_fields = ["service_arn", "created_at", "updated_at"]
    inlines = [ScalingSettingsInline, ReleaseInline, DeploymentInline]

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> Any:
        # Searching across releases joins many rows per app; collapse them.
        queryset, _ = super().get_search_results(request, queryset, search_term)
        return queryset.distinct(), False


@admin.register(ScalingSettings)
class ScalingSettingsAdmin(admin.ModelAdmin[ScalingSettings]):
    list_display = ["app", "autoscaling_enabled", "min_tasks", "max_tasks", "cpu_target",
                    "applied_at"]  # fmt: skip
    list_filter = ["autoscaling_enabled"]
    list_select_related = ["app__team"]
    search_fields = ["app__name", "app__team__slug"]
    autocomplete_fields = ["app"]
    readonly_fields = ["applied_at"]


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin[Release]):
    list_display = ["__str__", "app_link", "image", "kind", "created_by", "created_at"]
    list_filter = ["kind"]
    list_select_related = ["app__team", "created_by"]
    search_fields = ["image", "app__name", "app__team__slug", "task_definition_arn",
                     "description"]  # fmt: skip
    readonly_fields = ["app", "version", "image", "configuration", "task_definition_arn", "kind",
                       "rollback_of", "created_by", "created_at"]  # fmt: skip
    exclude = ["config"]

    @admin.display(description="app", ordering="app__name")
    def app_link(self, release: Release) -> str:
        return admin_link(release.app)

    @admin.display(description="config")
    def configuration(self, release: Release) -> str:
        """The snapshot with secret values left out: support sees which secrets, never what."""
        shown = {**release.config, "secrets": sorted(release.config.get("secrets", {}))}
        return format_html("<pre>{}</pre>", json.dumps(shown, indent=2, sort_keys=True))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # releases are immutable and only made by deploys


class DeploymentEventInline(ReadOnlyInline):
    model = DeploymentEvent
    readonly_fields = ("created_at", "source", "message")
    fields = readonly_fields
    show_change_link = False


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin[Deployment]):
    list_display = ["__str__", "app_link", "status", "running_count", "desired_count",
                    "failed_count", "rollout_state", "started_by", "created_at"]  # fmt: skip
    list_filter = ["status", "rollout_state"]
    list_select_related = ["app__team", "release__app__team", "started_by"]
    search_fields = ["app__name", "app__team__slug", "release__image", "ecs_deployment_id",
                     "rollout_state_reason"]  # fmt: skip
    readonly_fields = [field.name for field in Deployment._meta.fields]
    inlines = [DeploymentEventInline]

    @admin.display(description="app", ordering="app__name")
    def app_link(self, deployment: Deployment) -> str:
        return admin_link(deployment.app)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a deployment is started by a deploy, never typed in


@admin.register(DeploymentEvent)
class DeploymentEventAdmin(admin.ModelAdmin[DeploymentEvent]):
    list_display = ["created_at", "deployment_link", "source", "message"]
    list_filter = ["source"]
    list_select_related = ["deployment__release__app__team"]
    search_fields = ["message", "ecs_event_id", "deployment__app__name"]
    readonly_fields = ["deployment", "source", "ecs_event_id", "message", "created_at"]

    @admin.display(description="deployment")
    def deployment_link(self, event: DeploymentEvent) -> str:
        return admin_link(event.deployment)


@admin.register(Job)
class JobAdmin(admin.ModelAdmin[Job]):
    list_display = ["__str__", "status", "team", "target_type", "target_id", "attempts",
                    "created_at", "finished_at", "rq_link"]  # fmt: skip
    list_filter = ["status", "kind"]
    list_select_related = ["team", "target_type"]
    search_fields = ["kind", "rq_id", "error", "team__slug"]
    readonly_fields = ["kind", "status", "team", "target_type", "target_id", "rq_id", "attempts",
                       "error", "log", "created_by", "created_at", "started_at", "heartbeat_at",
                       "finished_at", "rq_link"]  # fmt: skip

    @admin.display(description="RQ job")
    def rq_link(self, job: Job) -> str:
        if not job.rq_id:
            return "—"
        url = reverse("django_rq:job_detail", args=[0, job.rq_id])
        return format_html('<a href="{}">{}</a>', url, job.rq_id[:8])

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin[AuditEntry]):
    list_display = ["created_at", "team", "actor", "action", "target_repr", "ip_address"]
    list_filter = ["action"]
    list_select_related = ["team", "actor"]
    search_fields = ["action", "target_repr", "team__slug", "actor__username"]
    readonly_fields = ["team", "actor", "action", "target_type", "target_id", "target_repr",
                       "details", "ip_address", "created_at"]  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin[ApiToken]):
    """Tokens are made by `manage.py api_token create`, which shows the secret once; support can
    see and revoke them here but never the secret or its hash."""

    list_display = ["name", "team", "role", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["role", ("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["team"]
    search_fields = ["name", "team__slug", "prefix"]
    exclude = ["token_hash"]
    readonly_fields = ["team", "name", "role", "prefix", "created_by", "created_at",
                       "last_used_at", "revoked_at"]  # fmt: skip
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke selected API tokens", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        tokens = list(queryset.filter(revoked_at__isnull=True).select_related("team"))
        for token in tokens:
            services.api_token_revoke(
                token=token, actor=request.user, ip_address=client_address(request)
            )
        self.message_user(request, f"Revoked {len(tokens)} API token(s).")

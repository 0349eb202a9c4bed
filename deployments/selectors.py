"""Reads for pages: every query a page makes about tenant data starts from a membership."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db.models import QuerySet

from deployments.models import ApiToken, App, AwsAccount, Cluster, Membership, Team


def memberships_of(user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("team").order_by("team__name")


def membership_for(user: User, team_slug: str | None) -> Membership | None:
    """The user's membership of the team they chose, else of their first team; None if none."""
    memberships = memberships_of(user)
    if team_slug:
        chosen = memberships.filter(team__slug=team_slug).first()
        if chosen:
            return chosen
    return memberships.first()


@dataclass(frozen=True)
class Overview:
    apps: list[App]
    clusters: list[Cluster]


def overview_for(membership: Membership) -> Overview:
    apps = App.objects.filter(team_id=membership.team_id).select_related("cluster").order_by("name")
    clusters = (
        Cluster.objects.filter(team_id=membership.team_id)
        .exclude(status=Cluster.Status.DELETED)
        .select_related("account")
        .order_by("name")
    )
    return Overview(apps=list(apps), clusters=list(clusters))


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

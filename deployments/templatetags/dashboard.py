"""Small presentation filters for the dashboard's templates: words and times, no logic."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

from deployments.models import Deployment

register = template.Library()

ACTION_WORDS = {
    "account.connect": "connected AWS account",
    "account.verify": "verified AWS account",
    "cluster.create": "created cluster",
    "cluster.scale": "resized cluster",
    "cluster.retry": "retried provisioning cluster",
    "cluster.delete": "deleted cluster",
    "app.create": "created app",
    "app.deploy": "deployed app",
    "app.rollback": "rolled back app",
    "app.scale": "scaled app",
    "app.config": "changed config of app",
    "app.secret": "changed a secret of app",
    "app.delete": "deleted app",
    "app.update": "changed settings of app",
    "deployment.cancel": "cancelled a rollout of app",
    "api_token.create": "created API token",
    "api_token.revoke": "revoked API token",
}

JOB_WORDS = {
    "verify_account": "Verifying the account",
    "provision_cluster": "Provisioning",
    "scale_cluster": "Resizing",
    "delete_cluster": "Deleting",
    "apply_scaling": "Applying scaling",
    "run_deployment": "Starting the rollout",
    "delete_app": "Deleting",
}


@register.filter
def action_words(action: str) -> str:
    """An audit action ("cluster.scale") as words ("resized cluster")."""
    return ACTION_WORDS.get(action) or action.replace(".", " ").replace("_", " ")


@register.filter
def job_words(kind: str) -> str:
    return JOB_WORDS.get(kind) or kind.replace("_", " ").capitalize()


@register.filter
def ago(value: datetime | None) -> str:
    """Relative time in its largest unit ("just now", "5 minutes ago"), as consoles show it."""
    if value is None:
        return ""
    if timezone.now() - value < timedelta(minutes=1):
        return "just now"
    return f"{timesince(value, depth=1)} ago"


@register.filter
def duration(value: timedelta | int | None) -> str:
    """A span (or a number of seconds) in its two largest units ("45 s", "3 min 5 s",
    "2 h 10 min")."""
    if value is None:
        return ""
    seconds = max(0, int(value.total_seconds() if isinstance(value, timedelta) else value))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    return f"{seconds} s"


@register.filter
def elapsed(deployment: Deployment) -> str:
    """How long a rollout ran, or has been running."""
    start = deployment.started_at or deployment.created_at
    return duration((deployment.finished_at or timezone.now()) - start)

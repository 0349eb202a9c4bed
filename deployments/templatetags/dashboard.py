"""Small presentation filters for the dashboard's templates: words and times, no logic."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

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
    "app.delete": "deleted app",
    "api_token.create": "created API token",
    "api_token.revoke": "revoked API token",
}

JOB_WORDS = {
    "verify_account": "Verifying the account",
    "provision_cluster": "Provisioning",
    "scale_cluster": "Resizing",
    "delete_cluster": "Deleting",
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

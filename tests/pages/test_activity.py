from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from deployments.models import AuditEntry, Team
from tests import factories

pytestmark = pytest.mark.django_db


def test_the_activity_log_says_who_did_what_when_and_from_where(
    owner_client: Client, owner: Any, team: Team, other_team: Team
) -> None:
    older = factories.make_audit_entry(
        team, owner, action="cluster.scale", target_repr="acme/main", ip_address="203.0.113.7"
    )
    AuditEntry.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(hours=3))
    factories.make_audit_entry(team, None, action="cluster.delete", target_repr="acme/old")
    factories.make_audit_entry(other_team, None, action="cluster.create", target_repr="globex/x")
    older.refresh_from_db()

    page = owner_client.get(reverse("activity")).text

    assert "olivia" in page and "system" in page
    assert "resized cluster" in page and "acme/main" in page and "203.0.113.7" in page
    assert "deleted cluster" in page and "acme/old" in page
    assert page.index("acme/old") < page.index("acme/main")  # newest first
    assert "3\xa0hours ago" in page and "just now" in page
    exact = timezone.localtime(older.created_at).strftime("%Y-%m-%d %H:%M:%S")
    assert f'title="{exact} UTC"' in page
    assert "globex" not in page


def test_the_activity_log_is_paginated_by_50(owner_client: Client, team: Team) -> None:
    for n in range(51):
        factories.make_audit_entry(team, None, target_repr=f"entry-{n:02d}")

    first = owner_client.get(reverse("activity")).text
    second = owner_client.get(reverse("activity") + "?page=2").text
    beyond = owner_client.get(reverse("activity") + "?page=99")

    assert first.count("entry-") == 50 and "Page 1 of 2" in first and "?page=2" in first
    assert second.count("entry-") == 1 and "Page 2 of 2" in second
    assert beyond.status_code == 200 and "Page 2 of 2" in beyond.text


def test_an_empty_activity_log_says_what_will_show(owner_client: Client) -> None:
    assert "Nothing has happened in Acme yet" in owner_client.get(reverse("activity")).text


def test_the_pages_actions_show_up_in_the_activity_log(owner_client: Client, team: Team) -> None:
    owner_client.post(reverse("account_connect_sandbox"))

    page = owner_client.get(reverse("activity")).text

    assert "connected AWS account" in page and "acme/sandbox" in page and "127.0.0.1" in page

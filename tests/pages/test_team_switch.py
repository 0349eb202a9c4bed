from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from deployments import views
from deployments.models import Membership, Team
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def member_of_two(team: Team, other_team: Team) -> Any:
    user = factories.make_user(team, Membership.Role.OWNER, username="tess")
    Membership.objects.create(team=other_team, user=user, role=Membership.Role.VIEWER)
    return user


def test_members_of_several_teams_can_switch(
    client: Client, member_of_two: Any, team: Team, other_team: Team
) -> None:
    factories.make_account(team, name="acme-account")
    factories.make_account(other_team, name="globex-account")
    client.force_login(member_of_two)
    before = client.get(reverse("accounts")).text
    assert "acme-account" in before and "globex-account" not in before
    assert 'name="team"' in before and "Switch team" in before

    response = client.post(reverse("team_switch"), {"team": "globex"}, follow=True)

    assert client.session[views.TEAM_SESSION_KEY] == "globex"
    assert "Switched to Globex." in response.text
    after = client.get(reverse("accounts")).text
    assert "globex-account" in after and "acme-account" not in after
    assert '<option value="globex" selected>' in after
    # A viewer in Globex: reading yes, writing no.
    assert client.post(reverse("account_connect_sandbox")).status_code == 403


def test_switching_to_a_team_one_is_not_in_is_404(
    client: Client, owner: Any, other_team: Team
) -> None:
    client.force_login(owner)

    response = client.post(reverse("team_switch"), {"team": "globex"})

    assert response.status_code == 404
    assert views.TEAM_SESSION_KEY not in client.session


def test_switching_needs_a_post(client: Client, member_of_two: Any) -> None:
    client.force_login(member_of_two)

    assert client.get(reverse("team_switch") + "?team=globex").status_code == 405


def test_members_of_one_team_see_no_switcher(owner_client: Client) -> None:
    page = owner_client.get(reverse("overview")).text

    assert "Switch team" not in page and "Acme" in page


def test_an_object_of_the_other_team_is_404_until_switching(
    client: Client, member_of_two: Any, other_team: Team
) -> None:
    factories.make_cluster(factories.make_account(other_team), name="theirs")
    client.force_login(member_of_two)

    assert client.get(reverse("cluster", args=["theirs"])).status_code == 404
    client.post(reverse("team_switch"), {"team": "globex"})
    assert client.get(reverse("cluster", args=["theirs"])).status_code == 200

"""manage.py api_token create / revoke / list."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from deployments.models import ApiToken, AuditEntry, Membership, Team
from tests.api.conftest import Api, make_api_token

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("api_token", *args, stdout=out)
    return out.getvalue()


def test_create_prints_the_token_alone_on_its_last_line_and_it_works(api: Api, team: Team) -> None:
    output = run("create", "--team", "acme", "--name", "ci")

    secret = output.rstrip("\n").splitlines()[-1]
    assert secret.startswith("tsk_") and " " not in secret
    token = ApiToken.objects.get(team=team, name="ci")
    assert token.role == Membership.Role.DEPLOYER
    assert token.token_hash == ApiToken.hash_secret(secret)
    assert not ApiToken.objects.filter(token_hash=secret).exists()
    assert api("GET", "/clusters", secret).status_code == 200
    assert api("POST", "/accounts", secret, {"name": "ci", "mode": "sandbox"}).status_code == 201
    assert AuditEntry.objects.filter(action="api_token.create", target_repr="acme/ci").exists()


def test_create_with_a_role(api: Api, team: Team) -> None:
    output = run("create", "--team", "acme", "--name", "dashboards", "--role", "viewer")

    secret = output.splitlines()[-1]
    assert ApiToken.objects.get(name="dashboards").role == Membership.Role.VIEWER
    assert api("GET", "/clusters", secret).status_code == 200
    assert api("POST", "/accounts", secret, {"name": "x", "mode": "sandbox"}).status_code == 403


def test_create_refuses_an_unknown_team_and_a_name_in_use(team: Team) -> None:
    make_api_token(team, name="ci")

    with pytest.raises(CommandError, match="no team with the slug 'nope'"):
        run("create", "--team", "nope", "--name", "ci")
    with pytest.raises(CommandError, match="already has an active API token of that name"):
        run("create", "--team", "acme", "--name", "ci")
    with pytest.raises(CommandError, match="letters, digits"):
        run("create", "--team", "acme", "--name", "no spaces please")
    assert ApiToken.objects.count() == 1


def test_revoke_refuses_the_token_from_then_on(api: Api, team: Team) -> None:
    token, secret = make_api_token(team, name="ci")

    output = run("revoke", "--team", "acme", "--name", "ci")

    assert f"Revoked API token 'ci' ({token.prefix}…) of team acme." in output
    assert api("GET", "/clusters", secret).status_code == 401
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEntry.objects.filter(action="api_token.revoke").count() == 1
    # The name is free again; the revoked row stays for the record.
    run("create", "--team", "acme", "--name", "ci")
    assert ApiToken.objects.filter(team=team, name="ci").count() == 2


def test_revoke_refuses_unknown_names_and_other_teams_tokens(team: Team, other_team: Team) -> None:
    make_api_token(other_team, name="theirs")

    with pytest.raises(CommandError, match="no active API token named 'theirs'"):
        run("revoke", "--team", "acme", "--name", "theirs")
    assert ApiToken.objects.get(name="theirs").revoked_at is None


def test_list_shows_tokens_but_never_their_secrets(team: Team, other_team: Team) -> None:
    ci, ci_secret = make_api_token(team, name="ci")
    old, old_secret = make_api_token(team, name="old", role=Membership.Role.VIEWER)
    make_api_token(other_team, name="theirs")
    run("revoke", "--team", "acme", "--name", "old")

    output = run("list", "--team", "acme")

    assert "ci" in output and ci.prefix in output and "active" in output
    assert "old" in output and "viewer" in output and "revoked" in output
    assert "theirs" not in output
    for secret_part in (ci_secret, old_secret, ci_secret[12:], ci.token_hash, old.token_hash):
        assert secret_part not in output


def test_list_of_a_team_without_tokens(team: Team) -> None:
    assert run("list", "--team", "acme") == "Team acme has no API tokens.\n"

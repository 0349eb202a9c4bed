"""GET/POST /api/v1/accounts: the team's AWS accounts."""

from __future__ import annotations

from typing import Any

import pytest

from deployments.aws import permissions
from deployments.models import AuditEntry, AwsAccount, Job, Team
from tests import factories
from tests.api.conftest import Api, row_counts

pytestmark = pytest.mark.django_db

ACCOUNT_FIELDS = {
    "name", "mode", "role_arn", "external_id", "region", "verified_at", "verification_error",
    "created_at",
}  # fmt: skip
ROLE_ARN = "arn:aws:iam::123456789012:role/TinyStacksAccess"


def test_lists_only_the_teams_accounts(
    api: Api, team: Team, other_team: Team, viewer_token: str
) -> None:
    factories.make_account(team, name="prod", region="eu-west-1")
    factories.make_account(team, name="dev")
    factories.make_account(other_team, name="secret-account")

    response = api("GET", "/accounts", viewer_token)

    assert response.status_code == 200
    accounts = response.json()
    assert [a["name"] for a in accounts] == ["dev", "prod"]
    assert set(accounts[1]) == ACCOUNT_FIELDS
    assert accounts[1]["region"] == "eu-west-1" and accounts[1]["mode"] == "sandbox"


def test_creating_a_sandbox_account(api: Api, team: Team, deployer_token: str) -> None:
    response = api(
        "POST",
        "/accounts",
        deployer_token,
        {"name": "play", "mode": "sandbox", "region": "eu-west-1"},
    )

    assert response.status_code == 201
    body = response.json()
    account = AwsAccount.objects.get(team=team, name="play")
    assert body | {"created_at": None} == {
        "name": "play",
        "mode": "sandbox",
        "role_arn": permissions.sandbox_role_arn(account.external_id),
        "external_id": account.external_id,
        "region": "eu-west-1",
        "verified_at": None,
        "verification_error": "",
        "created_at": None,
    }
    job = Job.objects.get(kind="verify_account")
    assert (job.target, job.status, job.team) == (account, Job.Status.QUEUED, team)
    entry = AuditEntry.objects.get(action="account.connect")
    assert (entry.actor, entry.target_repr, entry.ip_address) == (None, "acme/play", "127.0.0.1")


def test_region_defaults_to_us_east_1(api: Api, deployer_token: str) -> None:
    response = api("POST", "/accounts", deployer_token, {"name": "play", "mode": "sandbox"})

    assert response.status_code == 201
    assert response.json()["region"] == "us-east-1"


def test_creating_an_assume_role_account_shows_the_generated_external_id(
    api: Api, team: Team, owner_token: str
) -> None:
    response = api(
        "POST",
        "/accounts",
        owner_token,
        {"name": "prod", "mode": "assume_role", "role_arn": ROLE_ARN, "region": "eu-central-1"},
    )

    assert response.status_code == 201
    body = response.json()
    assert body["role_arn"] == ROLE_ARN and body["mode"] == "assume_role"
    assert body["external_id"].startswith("ts-") and len(body["external_id"]) > 20
    assert AwsAccount.objects.get(team=team, name="prod").external_id == body["external_id"]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": "prod", "mode": "assume_role"}, "role_arn", "required when mode is assume_role"),
        ({"name": "prod", "mode": "assume_role", "role_arn": "arn:aws:iam::1:role/x"}, "role_arn",
         "Enter an IAM role ARN"),
        ({"name": "prod", "mode": "sandbox", "external_id": "mine"}, "external_id",
         "The server generates the ExternalId"),
        ({"name": "prod", "mode": "sandbox", "verified_at": None}, "verified_at", "read-only"),
        ({"name": "prod", "mode": "cloud"}, "mode", "not a valid choice"),
        ({"name": "prod", "mode": "sandbox", "region": "mars-1"}, "region", "AWS region"),
        ({"name": "Prod Account", "mode": "sandbox"}, "name", "lowercase letters"),
        ({"name": "<b>x</b>", "mode": "sandbox"}, "name", "lowercase letters"),
        ({"mode": "sandbox"}, "name", "This field is required."),
        ({"name": "prod"}, "mode", "This field is required."),
        ({"name": 7, "mode": "sandbox"}, "name", "Expected a string, got an integer."),
        ({"name": "prod", "mode": "sandbox", "region": None}, "region", "got null"),
        ({"name": "prod", "mode": "sandbox", "owner": "me"}, "owner", "Unknown field."),
    ],
)  # fmt: skip
def test_invalid_accounts_are_400_by_field_and_write_nothing(
    api: Api, deployer_token: str, body: dict[str, Any], field: str, message: str
) -> None:
    before = row_counts()

    response = api("POST", "/accounts", deployer_token, body)

    assert response.status_code == 400
    errors = response.json()
    assert message in " ".join(errors["fields"][field])
    assert errors["error"]
    assert row_counts() == before


def test_unknown_fields_are_named_in_the_error(api: Api, deployer_token: str) -> None:
    response = api(
        "POST", "/accounts", deployer_token, {"name": "prod", "mode": "sandbox", "x": 1, "y": 2}
    )

    assert response.status_code == 400
    assert response.json()["error"] == "Unknown field(s): x, y."


def test_a_duplicate_name_is_409(api: Api, team: Team, deployer_token: str) -> None:
    factories.make_account(team, name="prod")
    before = row_counts()

    response = api("POST", "/accounts", deployer_token, {"name": "prod", "mode": "sandbox"})

    assert response.status_code == 409
    assert response.json() == {
        "error": "This team already has an AWS account named prod.",
        "fields": {"name": ["An AWS account of this name already exists in this team."]},
    }
    assert row_counts() == before


def test_another_teams_account_name_is_free_here(
    api: Api, other_team: Team, deployer_token: str
) -> None:
    factories.make_account(other_team, name="prod")

    response = api("POST", "/accounts", deployer_token, {"name": "prod", "mode": "sandbox"})

    assert response.status_code == 201


def test_listing_takes_the_same_queries_for_more_accounts(
    api: Api, team: Team, viewer_token: str, django_assert_max_num_queries: Any
) -> None:
    api("GET", "/accounts", viewer_token)  # records the token's first use
    for _ in range(2):
        factories.make_account(team)
    with django_assert_max_num_queries(2) as few:
        assert len(api("GET", "/accounts", viewer_token).json()) == 2
    for _ in range(20):
        factories.make_account(team)
    with django_assert_max_num_queries(len(few)) as many:
        assert len(api("GET", "/accounts", viewer_token).json()) == 22
    assert len(many) == len(few)


def test_teams_cannot_connect_an_ambient_account(api: Api, owner_token: str) -> None:
    before = row_counts()

    response = api("POST", "/accounts", owner_token, {"name": "mine", "mode": "ambient"})

    assert response.status_code == 400
    assert "only staff can, in the admin" in response.json()["fields"]["mode"][0]
    assert row_counts() == before


def test_sandbox_accounts_are_refused_when_the_server_turns_the_sandbox_off(
    api: Api, deployer_token: str, settings: Any
) -> None:
    settings.TINYSTACKS_ALLOW_SANDBOX = False
    before = row_counts()

    response = api("POST", "/accounts", deployer_token, {"name": "play", "mode": "sandbox"})

    assert response.status_code == 400
    assert "The local sandbox is turned off" in response.json()["fields"]["mode"][0]
    assert row_counts() == before

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from deployments import selectors
from deployments.models import AuditEntry, AwsAccount, Job, Team
from tests import factories
from tests.pages.conftest import HTMX

pytestmark = pytest.mark.django_db

ROLE_ARN = "arn:aws:iam::123456789012:role/TinyStacksAccess"


def test_the_sandbox_connects_in_one_click_under_a_free_name(
    client: Client, deployer: Any, team: Team
) -> None:
    client.force_login(deployer)

    first = client.post(reverse("account_connect_sandbox"), follow=True)
    client.post(reverse("account_connect_sandbox"))

    assert list(team.aws_accounts.order_by("name").values_list("name", "mode", "region")) == [
        ("sandbox", "sandbox", "us-east-1"),
        ("sandbox-2", "sandbox", "us-east-1"),
    ]
    assert "Connected the local sandbox as sandbox" in first.text
    assert "Local sandbox (simulated AWS)" in first.text
    assert "Verifying…" in first.text  # its verify job is queued
    entry = AuditEntry.objects.filter(action="account.connect").first()
    assert entry is not None and entry.actor == deployer and entry.ip_address == "127.0.0.1"
    assert Job.objects.filter(kind="verify_account", team=team).count() == 2


def test_an_assume_role_account_leads_to_its_setup_page(owner_client: Client, team: Team) -> None:
    response = owner_client.post(
        reverse("account_connect"),
        {"name": "production", "region": "eu-west-1", "role_arn": ROLE_ARN},
        follow=True,
    )

    account = AwsAccount.objects.get(team=team, name="production")
    assert account.mode == "assume_role" and account.role_arn == ROLE_ARN
    assert response.redirect_chain[-1][0] == reverse("account", args=["production"])
    assert "Connected production." in response.text
    assert account.external_id in response.text
    assert "Assume an IAM role in your account" in response.text


def test_the_setup_page_shows_the_trust_and_permissions_policies(
    owner_client: Client, team: Team
) -> None:
    account = factories.make_account(team, name="production", mode="assume_role", role_arn=ROLE_ARN)

    response = owner_client.get(reverse("account", args=["production"]))

    trust = json.loads(selectors.account_trust_policy(account))
    statement = trust["Statement"][0]
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": account.external_id}}
    assert statement["Principal"] == {"AWS": "arn:aws:iam::<the TinyStacks AWS account id>:root"}
    permissions = json.loads(selectors.account_permissions_policy())
    sids = [statement["Sid"] for statement in permissions["Statement"]]
    assert "PassOurRoles" in sids and "ServiceLinkedRoles" in sids
    # Both are on the page, escaped for HTML but otherwise verbatim.
    assert "sts:ExternalId" in response.text and account.external_id in response.text
    assert "iam:RemoveRoleFromInstanceProfile" in response.text
    assert "&lt;the TinyStacks AWS account id&gt;" in response.text
    assert "It is not configured on this server" in response.text


def test_the_trust_policy_names_the_configured_account(
    owner_client: Client, team: Team, settings: Any
) -> None:
    settings.TINYSTACKS_AWS_ACCOUNT_ID = "210987654321"
    factories.make_account(team, name="production", mode="assume_role", role_arn=ROLE_ARN)

    response = owner_client.get(reverse("account", args=["production"]))

    assert "arn:aws:iam::210987654321:root" in response.text
    assert "It is not configured on this server" not in response.text


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"name": "Bad Name", "region": "eu-west-1", "role_arn": ROLE_ARN}, "Use 1–40 lowercase"),
        ({"name": "prod", "region": "eu-west-1", "role_arn": "arn:nope"}, "Enter an IAM role ARN"),
        ({"name": "prod", "region": "mars-1", "role_arn": ROLE_ARN}, "Enter an AWS region"),
        (
            {"name": "sandbox", "region": "eu-west-1", "role_arn": ROLE_ARN},
            "already has an AWS account named sandbox",
        ),
        ({"name": "prod", "region": "eu-west-1", "role_arn": ""}, "This field is required"),
    ],
)
@pytest.mark.parametrize("htmx", [False, True])
def test_bad_account_input_shows_the_error_and_writes_nothing(
    owner_client: Client, account: AwsAccount, form: dict[str, str], error: str, htmx: bool
) -> None:
    headers: Any = HTMX if htmx else {}
    before = (AwsAccount.objects.count(), Job.objects.count(), AuditEntry.objects.count())

    response = owner_client.post(reverse("account_connect"), form, **headers)

    assert response.status_code == 200
    assert error in response.text
    assert (AwsAccount.objects.count(), Job.objects.count(), AuditEntry.objects.count()) == before
    if htmx:
        assert response.text.lstrip().startswith('<form id="connect-form"')
        assert "<html" not in response.text
    else:
        assert "<html" in response.text and "Connected accounts" in response.text


def test_verification_shows_each_state(owner_client: Client, team: Team) -> None:
    factories.make_account(team, name="never")
    broken = factories.make_account(
        team,
        name="broken",
        verification_error="AccessDenied: User is not authorized to perform sts:AssumeRole",
    )
    factories.make_job(team, broken, status="failed")
    verified = factories.make_account(team, name="fine")
    AwsAccount.objects.filter(pk=verified.pk).update(verified_at="2030-01-02T03:04:05Z")
    busy = factories.make_account(team, name="busy", verification_error="old error")
    factories.make_job(team, busy, status="failed")
    factories.make_job(team, busy, status="running")

    page = owner_client.get(reverse("accounts")).text

    assert "Not verified yet" in page
    assert "AccessDenied: User is not authorized to perform sts:AssumeRole" in page
    assert 'title="2030-01-02 03:04:05 UTC"' in page
    assert page.count("Verifying…") == 1 and "old error" not in page
    assert 'hx-trigger="every 2s"' in page


def test_the_accounts_fragment_polls_while_verifying_and_stops_after(
    owner_client: Client, team: Team, account: AwsAccount
) -> None:
    job = factories.make_job(team, account, status="queued")

    polling = owner_client.get(reverse("accounts"), **HTMX)  # type: ignore[arg-type]
    Job.objects.filter(pk=job.pk).update(status="succeeded")
    AwsAccount.objects.filter(pk=account.pk).update(verified_at="2030-01-01T00:00:00Z")
    settled = owner_client.get(reverse("accounts"), **HTMX)  # type: ignore[arg-type]

    assert polling.status_code == 200
    assert polling.text.lstrip().startswith('<section id="accounts-table"')
    assert 'hx-trigger="every 2s"' in polling.text and "Verifying…" in polling.text
    assert settled.status_code == 286
    assert "hx-trigger" not in settled.text and "Verified" in settled.text


def test_verify_again_queues_a_verification_and_the_detail_fragment_follows_it(
    owner_client: Client, team: Team, account: AwsAccount
) -> None:
    response = owner_client.post(reverse("account_verify", args=["sandbox"]), follow=True)

    job = Job.objects.get(kind="verify_account", target_id=account.pk)
    assert job.status == "queued" and job.created_by is not None
    assert "Verifying sandbox…" in response.text
    fragment = owner_client.get(reverse("account", args=["sandbox"]), **HTMX)  # type: ignore[arg-type]
    assert fragment.status_code == 200 and 'hx-trigger="every 2s"' in fragment.text
    assert fragment.text.lstrip().startswith('<section id="verification"')

    Job.objects.filter(pk=job.pk).update(
        status="failed", log=[{"at": "", "message": "Calling sts:GetCallerIdentity"}]
    )
    AwsAccount.objects.filter(pk=account.pk).update(verification_error="Could not connect: boom")
    settled = owner_client.get(reverse("account", args=["sandbox"]), **HTMX)  # type: ignore[arg-type]

    assert settled.status_code == 286
    assert "Could not connect: boom" in settled.text and "hx-trigger" not in settled.text
    assert "Calling sts:GetCallerIdentity" in settled.text


def test_history_restore_gets_the_whole_page(owner_client: Client, account: AwsAccount) -> None:
    response = owner_client.get(
        reverse("accounts"), HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )

    assert response.status_code == 200 and "<html" in response.text


def test_the_account_page_lists_its_clusters(owner_client: Client, account: AwsAccount) -> None:
    factories.make_cluster(account, name="main")
    factories.make_cluster(account, name="gone", status="deleted")

    page = owner_client.get(reverse("account", args=["sandbox"])).text

    assert reverse("cluster", args=["main"]) in page
    assert "gone" not in page


def test_the_sandbox_is_refused_when_the_server_turns_it_off(
    client: Client, deployer: Any, team: Team, settings: Any
) -> None:
    settings.TINYSTACKS_ALLOW_SANDBOX = False
    client.force_login(deployer)

    response = client.post(reverse("account_connect_sandbox"), follow=True)

    assert "The local sandbox is turned off on this server" in response.text
    assert "Connect the local sandbox</button>" not in response.text
    assert not team.aws_accounts.exists()


def test_the_connect_form_makes_only_assume_role_accounts(owner_client: Client, team: Team) -> None:
    owner_client.post(
        reverse("account_connect"),
        {"name": "production", "region": "eu-west-1", "role_arn": ROLE_ARN, "mode": "ambient"},
    )

    assert team.aws_accounts.get().mode == AwsAccount.Mode.ASSUME_ROLE

"""From rows to the plain values the aws/ layer takes: how to reach an account, what things are
called there."""

from __future__ import annotations

from deployments.aws.clients import AccountAccess
from deployments.models import App, AwsAccount


def account_access(account: AwsAccount) -> AccountAccess:
    return AccountAccess(
        mode=account.mode,
        region=account.region,
        role_arn=account.role_arn,
        external_id=account.external_id,
        session_name=f"tinystacks-{account.team.slug}",
    )


def app_names(app: App) -> dict[str, str]:
    """The AWS names of an app's resources: task definition family, service, log group and the
    Parameter Store path of its secrets."""
    return {
        "family": f"tinystacks-{app.team.slug}-{app.name}",
        "service": app.name,
        "log_group": f"/tinystacks/{app.team.slug}/{app.name}",
        "parameters": f"/tinystacks/{app.team.slug}/{app.name}",
    }

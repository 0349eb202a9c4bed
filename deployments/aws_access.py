"""From rows to the plain values the aws/ layer takes: how to reach an account, what things are
called there."""

from __future__ import annotations

from deployments.aws.clients import AccountAccess
from deployments.models import App, AwsAccount, Cluster


def account_access(account: AwsAccount, region: str | None = None) -> AccountAccess:
    """How to reach the account, in `region` (its default region when None)."""
    return AccountAccess(
        mode=account.mode,
        region=region or account.region,
        role_arn=account.role_arn,
        external_id=account.external_id,
        session_name=f"tinystacks-{account.team.slug}",
    )


def cluster_access(cluster: Cluster) -> AccountAccess:
    """Every call about a cluster, or an app on it, goes to the cluster's region."""
    return account_access(cluster.account, cluster.region)


def app_names(app: App) -> dict[str, str]:
    """The AWS names of an app's resources: task definition family, service, log group and the
    Parameter Store path of its secrets."""
    return {
        "family": f"tinystacks-{app.team.slug}-{app.name}",
        "service": app.name,
        "log_group": f"/tinystacks/{app.team.slug}/{app.name}",
        "parameters": f"/tinystacks/{app.team.slug}/{app.name}",
    }

"""From rows to the plain values the aws/ layer takes: how to reach an account, what things are
called there."""

from __future__ import annotations

from deployments.aws import ownership
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
    """The AWS names of an app's resources, as stored on its row: task definition family,
    service, log group and the Parameter Store path of its secrets."""
    return {
        "family": app.task_family,
        "service": app.service_name,
        "log_group": app.aws_path,
        "parameters": app.aws_path,
    }


def app_owner(app: App) -> dict[str, str]:
    """The tags an app's service and task definitions carry, by which we know them as ours."""
    return {
        ownership.TEAM_TAG: app.team.slug,
        ownership.APP_TAG: app.name,
        ownership.APP_ID_TAG: str(app.uuid),
    }

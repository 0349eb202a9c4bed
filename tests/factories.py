"""Rows for tests, with sensible defaults; pass only what a test is about."""

from __future__ import annotations

import itertools
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from deployments.aws import identity, permissions
from deployments.aws.inventory import ZoneCapacity
from deployments.aws_access import account_access
from deployments.capacity import INSTANCE_TYPES
from deployments.models import (
    App,
    AuditEntry,
    AwsAccount,
    Cluster,
    Deployment,
    DeploymentEvent,
    Job,
    Membership,
    Release,
    ScalingSettings,
    Team,
)

_numbers = itertools.count(1)


def make_team(**fields: Any) -> Team:
    n = next(_numbers)
    return Team.objects.create(**{"name": f"Team {n}", "slug": f"team-{n}", **fields})


def make_user(team: Team | None = None, role: str = Membership.Role.OWNER, **fields: Any) -> User:
    user = User.objects.create_user(**{"username": f"user{next(_numbers)}", **fields})
    if team is not None:
        Membership.objects.create(team=team, user=user, role=role)
    return user


def make_account(team: Team, **fields: Any) -> AwsAccount:
    """A row only: a sandbox account's role exists in the sandbox once `connect_sandbox` ran."""
    account = AwsAccount(
        **{"team": team, "name": f"account-{next(_numbers)}", "mode": "sandbox", **fields}
    )
    if account.mode == "sandbox" and not account.role_arn:
        account.role_arn = permissions.sandbox_role_arn(account.external_id)
    account.save()
    return account


def connect_sandbox(account: AwsAccount) -> AwsAccount:
    """Create the account's customer role in the sandbox, as verifying the account does."""
    identity.create_sandbox_customer_role(account_access(account))
    return account


def make_cluster(account: AwsAccount, **fields: Any) -> Cluster:
    return Cluster.objects.create(
        **{
            "team": account.team,
            "account": account,
            "name": f"cluster-{next(_numbers)}",
            "region": account.region,
            **fields,
        }
    )


def make_app(cluster: Cluster, **fields: Any) -> App:
    app = App.objects.create(
        **{"team": cluster.team, "cluster": cluster, "name": f"app-{next(_numbers)}", **fields}
    )
    ScalingSettings.objects.create(app=app)
    return app


def make_release(app: App, **fields: Any) -> Release:
    version = (app.releases.order_by("-version").values_list("version", flat=True).first() or 0) + 1
    return Release.objects.create(
        **{"app": app, "version": version, "image": "nginx:1.27", "config": {}, **fields}
    )


def make_deployment(release: Release, **fields: Any) -> Deployment:
    return Deployment.objects.create(
        **{"app": release.app, "release": release, "status": "succeeded", **fields}
    )


def make_event(deployment: Deployment, **fields: Any) -> DeploymentEvent:
    return DeploymentEvent.objects.create(
        **{"deployment": deployment, "message": "has started 1 tasks", "created_at": timezone.now()}
        | fields
    )


def make_job(team: Team, target: Any, **fields: Any) -> Job:
    from django.contrib.contenttypes.models import ContentType

    return Job.objects.create(
        **{
            "kind": "verify_account",
            "team": team,
            "target_type": ContentType.objects.get_for_model(target),
            "target_id": target.pk,
            **fields,
        }
    )


def make_audit_entry(team: Team, actor: User | None = None, **fields: Any) -> AuditEntry:
    return AuditEntry.objects.create(
        **{"team": team, "actor": actor, "action": "app.deploy", "target_repr": "x", **fields}
    )


def backdate_lost(job: Job) -> None:
    """Age `job`'s row as if its worker died minutes ago: past the reconciler's enqueue grace,
    its heartbeat long stale."""
    long_ago = timezone.now() - timedelta(minutes=5)
    Job.objects.filter(pk=job.pk).update(created_at=long_ago, heartbeat_at=long_ago)


def make_capacity(
    cluster: Cluster, instances: dict[str, int], tasks_per_instance: int = 0, **fields: Any
) -> Cluster:
    """A live-capacity snapshot, stored as the tick stores it: `instances[zone]` ACTIVE t3.medium
    instances in each zone, each running `tasks_per_instance` tasks of 256 CPU units and 512 MiB;
    `fields` override the cluster's other capacity fields (read now, no error, by default)."""
    medium = INSTANCE_TYPES["t3.medium"]
    zones = [
        ZoneCapacity(
            zone=zone, instances=n, active=n, draining=0, agents_connected=n,
            cpu_registered=n * medium.cpu_units,
            cpu_remaining=n * (medium.cpu_units - 256 * tasks_per_instance),
            memory_registered=n * medium.task_memory_mib,
            memory_remaining=n * (medium.task_memory_mib - 512 * tasks_per_instance),
            running_tasks=n * tasks_per_instance, pending_tasks=0,
        )
        for zone, n in instances.items()
    ]  # fmt: skip
    now = timezone.now()
    snapshot = {"capacity": {"zones": [asdict(zone) for zone in zones]}, "capacity_at": now}
    Cluster.objects.filter(pk=cluster.pk).update(
        **snapshot | {"capacity_tried_at": now, "capacity_error": ""} | fields
    )
    cluster.refresh_from_db()
    return cluster

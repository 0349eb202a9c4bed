"""Writes: every change to the domain goes through a function here, with its audit entry."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Max

from deployments import jobs
from deployments.capacity import DEFAULT_INSTANCE_TYPE
from deployments.models import (
    App,
    AuditEntry,
    AwsAccount,
    Cluster,
    Job,
    Membership,
    Release,
    Team,
)
from deployments.transitions import transition

Actor = AbstractBaseUser | AnonymousUser | None


def _actor_or_none(actor: Actor) -> Any:
    return actor if actor is not None and actor.is_authenticated else None


def audit_record(
    *,
    team: Team,
    actor: Actor,
    action: str,
    target: models.Model | None = None,
    details: dict[str, Any] | None = None,
    ip_address: str | None = None,
) -> AuditEntry:
    return AuditEntry.objects.create(
        team=team,
        actor=_actor_or_none(actor),
        action=action,
        target_type=ContentType.objects.get_for_model(target) if target is not None else None,
        target_id=target.pk if target is not None else None,
        target_repr=str(target)[:200] if target is not None else "",
        details=details or {},
        ip_address=ip_address,
    )


def job_enqueue(*, kind: str, target: models.Model, team: Team, created_by: Actor = None) -> Job:
    """Create the Job row now and hand its id to RQ once the surrounding transaction commits."""
    job = Job.objects.create(
        kind=kind,
        team=team,
        target_type=ContentType.objects.get_for_model(target),
        target_id=target.pk,
        rq_id=str(uuid.uuid4()),
        created_by=_actor_or_none(created_by),
    )
    # robust: if Redis is down the row stays queued and the reconciler enqueues it later.
    transaction.on_commit(lambda: jobs.enqueue(job), robust=True)
    return job


@transaction.atomic
def account_create(
    *,
    team: Team,
    actor: Actor,
    name: str,
    mode: str,
    region: str,
    role_arn: str = "",
    ip_address: str | None = None,
) -> AwsAccount:
    account = AwsAccount(team=team, name=name, mode=mode, region=region, role_arn=role_arn)
    account.full_clean()
    account.save()
    audit_record(
        team=team,
        actor=actor,
        action="account.connect",
        target=account,
        details={"mode": mode, "region": region},
        ip_address=ip_address,
    )
    account_verify(account=account, actor=actor)
    return account


def account_verify(*, account: AwsAccount, actor: Actor) -> Job:
    return job_enqueue(kind="verify_account", target=account, team=account.team, created_by=actor)


@transaction.atomic
def cluster_create(
    *,
    team: Team,
    actor: Actor,
    account: AwsAccount,
    name: str,
    region: str | None = None,
    instance_type: str = DEFAULT_INSTANCE_TYPE,
    min_instances: int = 2,
    desired_instances: int = 2,
    max_instances: int = 4,
    ip_address: str | None = None,
) -> Cluster:
    """Record the cluster and queue its provisioning; the job reports progress per step."""
    if account.team_id != team.pk:
        raise ValidationError({"account": "No such AWS account in this team."})
    cluster = Cluster(
        team=team,
        account=account,
        name=name,
        region=region or account.region,
        instance_type=instance_type,
        min_instances=min_instances,
        desired_instances=desired_instances,
        max_instances=max_instances,
    )
    cluster.full_clean()
    cluster.save()
    audit_record(
        team=team,
        actor=actor,
        action="cluster.create",
        target=cluster,
        details={"region": cluster.region, "instance_type": instance_type,
                 "instances": [min_instances, desired_instances, max_instances]},
        ip_address=ip_address,
    )  # fmt: skip
    job_enqueue(kind="provision_cluster", target=cluster, team=team, created_by=actor)
    return cluster


SCALABLE_FIELDS = ("instance_type", "min_instances", "desired_instances", "max_instances")


@transaction.atomic
def cluster_scale(
    *, cluster: Cluster, actor: Actor, ip_address: str | None = None, **changes: Any
) -> Cluster:
    """Change instance counts and/or type (any of SCALABLE_FIELDS) and queue applying them."""
    unknown = set(changes) - set(SCALABLE_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "This field cannot be changed."))
    cluster = Cluster.objects.select_for_update().get(pk=cluster.pk)
    if cluster.status != Cluster.Status.READY:
        raise ValidationError(
            f"Cluster {cluster.name} is {cluster.get_status_display().lower()}; "
            "it can be resized once it is ready."
        )
    before = {name: getattr(cluster, name) for name in SCALABLE_FIELDS}
    for name, value in changes.items():
        setattr(cluster, name, value)
    cluster.full_clean()
    cluster.save(update_fields=[*SCALABLE_FIELDS, "updated_at"])
    after = {name: getattr(cluster, name) for name in SCALABLE_FIELDS}
    audit_record(
        team=cluster.team,
        actor=actor,
        action="cluster.scale",
        target=cluster,
        details={"before": before, "after": after},
        ip_address=ip_address,
    )
    job_enqueue(kind="scale_cluster", target=cluster, team=cluster.team, created_by=actor)
    return cluster


@transaction.atomic
def cluster_retry(*, cluster: Cluster, actor: Actor, ip_address: str | None = None) -> Cluster:
    """Run provisioning again after a failure; finished steps adopt what they made."""
    cluster = Cluster.objects.select_for_update().get(pk=cluster.pk)
    if cluster.status != Cluster.Status.FAILED:
        raise ValidationError(f"Cluster {cluster.name} has not failed; nothing to retry.")
    audit_record(
        team=cluster.team,
        actor=actor,
        action="cluster.retry",
        target=cluster,
        ip_address=ip_address,
    )
    job_enqueue(kind="provision_cluster", target=cluster, team=cluster.team, created_by=actor)
    return cluster


@transaction.atomic
def cluster_delete(*, cluster: Cluster, actor: Actor, ip_address: str | None = None) -> Cluster:
    """Tear the cluster down, refusing while apps still run on it."""
    cluster = Cluster.objects.select_for_update().get(pk=cluster.pk)
    app_names = list(cluster.apps.order_by("name").values_list("name", flat=True))
    if app_names:
        raise ValidationError(
            f"Cluster {cluster.name} still runs {len(app_names)} app(s): "
            f"{', '.join(app_names)}. Delete them first."
        )
    if cluster.status in (Cluster.Status.DELETING, Cluster.Status.DELETED):
        return cluster
    if not transition(cluster, Cluster.Status.DELETING, status_reason=""):
        raise ValidationError(
            f"Cluster {cluster.name} is {cluster.get_status_display().lower()}; "
            "wait for it to finish before deleting it."
        )
    audit_record(
        team=cluster.team,
        actor=actor,
        action="cluster.delete",
        target=cluster,
        ip_address=ip_address,
    )
    job_enqueue(kind="delete_cluster", target=cluster, team=cluster.team, created_by=actor)
    return cluster


@transaction.atomic
def release_create(
    *,
    app: App,
    actor: Actor,
    image: str,
    config: dict[str, Any],
    kind: str = Release.Kind.DEPLOY,
    description: str = "",
    rollback_of: Release | None = None,
) -> Release:
    """Release v(N+1) of `app`. The app row is locked so concurrent releases queue up for it
    instead of colliding on a version number."""
    App.objects.select_for_update().filter(pk=app.pk).get()
    latest = app.releases.aggregate(latest=Max("version"))["latest"] or 0
    return Release.objects.create(
        app=app,
        version=latest + 1,
        image=image,
        config=config,
        kind=kind,
        description=description,
        rollback_of=rollback_of,
        created_by=_actor_or_none(actor),
    )


@transaction.atomic
def demo_environment_ensure(*, password: str | None) -> tuple[Any, str | None]:
    """The `demo` team, user and sandbox account; idempotent.

    Returns the user and the password set now (None when the user already existed and no
    password was asked for, so a re-run never silently changes someone's password).
    """
    from django.contrib.auth import get_user_model

    team, _ = Team.objects.get_or_create(slug="demo", defaults={"name": "Demo"})
    user, created = get_user_model().objects.get_or_create(username="demo")
    new_password = password or (secrets.token_urlsafe(12) if created else None)
    if new_password:
        user.set_password(new_password)
        user.save(update_fields=["password"])
    Membership.objects.get_or_create(team=team, user=user, defaults={"role": Membership.Role.OWNER})
    if not AwsAccount.objects.filter(team=team, name="sandbox").exists():
        account_create(
            team=team, actor=user, name="sandbox", mode=AwsAccount.Mode.SANDBOX, region="us-east-1"
        )
    return user, new_password

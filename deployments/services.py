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
from django.db.models.functions import Now
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from deployments import encryption, jobs
from deployments.aws import permissions
from deployments.capacity import DEFAULT_INSTANCE_TYPE
from deployments.models import (
    ApiToken,
    App,
    AuditEntry,
    AwsAccount,
    Cluster,
    Deployment,
    Job,
    Membership,
    Release,
    ScalingSettings,
    Team,
)
from deployments.transitions import transition
from deployments.validators import validate_config_vars, validate_image, validate_secret

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


AMBIENT_STAFF_ONLY = (
    "Teams cannot connect an account with the dashboard's own credentials (ambient); "
    "only staff can, in the admin. Connect your AWS account through an IAM role."
)


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
    """A team connects an account (pages, API). Never an ambient one: that would lend the team
    the dashboard's own credentials; staff connect those in the Django admin."""
    if mode == AwsAccount.Mode.AMBIENT:
        raise ValidationError({"mode": AMBIENT_STAFF_ONLY})
    account = AwsAccount(team=team, name=name, mode=mode, region=region, role_arn=role_arn)
    if mode == AwsAccount.Mode.SANDBOX:
        # Reached like any customer's role; verifying creates it in the sandbox first.
        account.role_arn = permissions.sandbox_role_arn(account.external_id)
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


class Conflict(Exception):
    """The request clashes with the current state (e.g. a rollout is already in flight)."""


def release_config(app: App) -> dict[str, Any]:
    """What a release snapshots of its app's configuration, besides the image."""
    return {
        "env": dict(app.config_vars),
        "secrets": dict(app.secrets),  # encrypted tokens; the job puts the values in SSM
        "cpu": app.cpu,
        "memory": app.memory,
        "port": app.port,
        "command": app.command,
        "health_check_path": app.health_check_path,
    }


@transaction.atomic
def app_create(
    *, team: Team, actor: Actor, cluster: Cluster, name: str, ip_address: str | None = None,
    **settings: Any,
) -> App:  # fmt: skip
    """A new app on one of the team's clusters; its ECS service is created by its first deploy."""
    if cluster.team_id != team.pk or cluster.status == Cluster.Status.DELETED:
        raise ValidationError({"cluster": "No such cluster in this team."})
    app = App(team=team, cluster=cluster, name=name, **settings)
    app.full_clean()
    validate_config_vars(app.config_vars)
    app.save()
    ScalingSettings.objects.create(app=app)
    audit_record(
        team=team, actor=actor, action="app.create", target=app, ip_address=ip_address,
        details={"cluster": cluster.name},
    )  # fmt: skip
    return app


def _refuse_if_deleting(app: App) -> None:
    """Nothing changes an app once its teardown is queued. Callers hold the app's row lock."""
    if Job.objects.app_deletions().filter(target_id=app.pk).exists():
        raise Conflict(f"{app.name} is being deleted.")


def _refuse_if_in_flight(app: App) -> None:
    """One rollout at a time per app (the database constraint backs this clear message up),
    and none once the app is being deleted. Callers hold the app's row lock."""
    _refuse_if_deleting(app)
    running = (
        app.deployments.filter(status__in=Deployment.ACTIVE_STATUSES)
        .select_related("release")
        .first()
    )
    if running is not None:
        raise Conflict(
            f"{running.release.label} is still rolling out to {app.name} "
            f"({running.get_status_display().lower()}); wait for it or cancel it first."
        )


def _deploy(
    *, app: App, actor: Actor, release: Release, ip_address: str | None, action: str,
    details: dict[str, Any] | None = None,
) -> Deployment:  # fmt: skip
    """Start rolling out `release`; the caller holds the app's row lock and has refused if a
    rollout is in flight. `details` adds to the audit entry's."""
    deployment = Deployment.objects.create(
        app=app, release=release, desired_count=app.desired_count,
        started_by=_actor_or_none(actor),
    )  # fmt: skip
    audit_record(
        team=app.team, actor=actor, action=action, target=app, ip_address=ip_address,
        details={"release": release.label, "image": release.image, "deployment": deployment.pk}
        | (details or {}),
    )  # fmt: skip
    job_enqueue(kind="run_deployment", target=deployment, team=app.team, created_by=actor)
    return deployment


def _locked(app: App) -> App:
    return App.objects.select_for_update().select_related("team", "cluster").get(pk=app.pk)


@transaction.atomic
def deployment_start(
    *, app: App, actor: Actor, image: str, description: str = "", ip_address: str | None = None
) -> Deployment:
    """Deploy `image` as a new release of `app` (Conflict while another rollout is in flight)."""
    validate_image(image)
    app = _locked(app)
    _refuse_if_in_flight(app)
    release = release_create(
        app=app, actor=actor, image=image, config=release_config(app), description=description
    )
    return _deploy(
        app=app, actor=actor, release=release, ip_address=ip_address, action="app.deploy"
    )


def live_release(app: App) -> Release | None:
    """The release the app runs: that of its latest successful rollout."""
    latest = Deployment.objects.filter(app=app).live_first().select_related("release").first()
    return latest.release if latest else None


@transaction.atomic
def app_rollback(
    *, app: App, actor: Actor, version: int, ip_address: str | None = None
) -> Deployment:
    """Heroku's rollback: a new release copying vN's image and config, then deploy it."""
    app = _locked(app)
    _refuse_if_in_flight(app)
    target = app.releases.filter(version=version).first()
    if target is None:
        raise ValidationError({"version": f"{app.name} has no release v{version}."})
    live = live_release(app)
    if live is not None and live.image == target.image and live.config == target.config:
        raise ValidationError({"version": f"v{version} is what {app.name} runs already."})
    release = release_create(
        app=app, actor=actor, image=target.image, config=dict(target.config),
        kind=Release.Kind.ROLLBACK, description=f"Rollback to v{version}", rollback_of=target,
    )  # fmt: skip
    # Reuse the old revision while it is still ACTIVE; the job checks and re-registers if not.
    Release.objects.filter(pk=release.pk).update(task_definition_arn=target.task_definition_arn)
    release.task_definition_arn = target.task_definition_arn
    return _deploy(
        app=app, actor=actor, release=release, ip_address=ip_address, action="app.rollback"
    )


@transaction.atomic
def config_set(
    *, app: App, actor: Actor, config_vars: dict[str, str], ip_address: str | None = None
) -> Deployment:
    """New config vars make a new release of the live image, deployed at once."""
    validate_config_vars(config_vars)
    app = _locked(app)
    live = _live_release_to_change(app)
    clashing = sorted(set(config_vars) & set(app.secrets))
    if clashing:
        raise ValidationError(
            {"config_vars": f"{', '.join(clashing)} already exist as secrets; unset them first."}
        )
    app.config_vars = dict(config_vars)
    app.save(update_fields=["config_vars", "updated_at"])
    changed = sorted(set(config_vars) ^ set(live.config.get("env", {})) | {
        k for k in config_vars if live.config.get("env", {}).get(k) != config_vars[k]
    })  # fmt: skip
    release = _release_new_config(
        app, actor, live, f"Config change: {', '.join(changed) or 'none'}"
    )
    return _deploy(
        app=app, actor=actor, release=release, ip_address=ip_address, action="app.config"
    )


def _live_release_to_change(app: App) -> Release:
    """A config change is a new release of the live image: there must be one, and no rollout in
    flight or teardown under way. Callers hold the app's row lock."""
    _refuse_if_in_flight(app)
    live = live_release(app)
    if live is None:
        raise Conflict(f"Deploy {app.name} once before changing its config.")
    return live


def _release_new_config(app: App, actor: Actor, live: Release, description: str) -> Release:
    return release_create(
        app=app, actor=actor, image=live.image, config=release_config(app),
        kind=Release.Kind.CONFIG, description=description,
    )  # fmt: skip


# Error reports (the admins' email) show no local variable of this call or of those it makes:
# the value passes through several.
@sensitive_variables()
@transaction.atomic
def secret_set(
    *, app: App, actor: Actor, name: str, value: str, ip_address: str | None = None
) -> Deployment:
    """Set (add or replace) a secret config var: encrypted at rest, handed to ECS through SSM
    Parameter Store (a SecureString per release), never shown again. Makes a release and deploys
    it. Refusals are keyed "name" or "value" and never quote the value."""
    validate_secret(name, value)
    app = _locked(app)
    live = _live_release_to_change(app)
    if name in app.config_vars:
        raise ValidationError({"name": f"{name} is a plain config var; remove it first."})
    app.secrets = {**app.secrets, name: encryption.encrypt(value)}
    app.save(update_fields=["secrets", "updated_at"])
    release = _release_new_config(app, actor, live, f"Secret set: {name}")
    return _deploy(
        app=app, actor=actor, release=release, ip_address=ip_address, action="app.secret",
        details={"secret": name, "change": "set"},
    )  # fmt: skip


@transaction.atomic
def secret_unset(*, app: App, actor: Actor, name: str, ip_address: str | None = None) -> Deployment:
    """Remove a secret config var: a release without it, deployed at once."""
    app = _locked(app)
    live = _live_release_to_change(app)
    if name not in app.secrets:
        raise ValidationError({"name": f"{app.name} has no secret named {name}."})
    app.secrets = {key: token for key, token in app.secrets.items() if key != name}
    app.save(update_fields=["secrets", "updated_at"])
    release = _release_new_config(app, actor, live, f"Secret removed: {name}")
    return _deploy(
        app=app, actor=actor, release=release, ip_address=ip_address, action="app.secret",
        details={"secret": name, "change": "removed"},
    )  # fmt: skip


@transaction.atomic
def secrets_rotate() -> int:
    """Re-encrypt every stored secret under the first of TINYSTACKS_SECRET_KEYS, so older keys
    can then be retired. Returns how many values were re-encrypted."""
    count = 0
    for app in App.objects.select_for_update().exclude(secrets={}):
        app.secrets = {name: encryption.rotate(token) for name, token in app.secrets.items()}
        app.save(update_fields=["secrets"])
        count += len(app.secrets)
    for release in Release.objects.select_for_update().filter(config__has_key="secrets"):
        kept = release.config["secrets"]
        if kept:
            rotated = {name: encryption.rotate(token) for name, token in kept.items()}
            release.config = {**release.config, "secrets": rotated}
            release.save(update_fields=["config"])
            count += len(rotated)
    return count


@transaction.atomic
def deployment_cancel(
    *, deployment: Deployment, actor: Actor, ip_address: str | None = None
) -> Deployment | None:
    """Stop following a stuck rollout and roll back to the last good release, if there is one.

    Returns the rollback's deployment, or None when the app never ran a good release.
    """
    app = _locked(deployment.app)
    if not transition(
        deployment,
        Deployment.Status.CANCELLED,
        finished_at=timezone.now(),
        rollout_state_reason="Cancelled; rolling back to the last good release.",
    ):
        raise Conflict(f"{deployment.release.label} has already ended; nothing to cancel.")
    audit_record(
        team=app.team, actor=actor, action="deployment.cancel", target=app, ip_address=ip_address,
        details={"release": deployment.release.label, "deployment": deployment.pk},
    )  # fmt: skip
    good = live_release(app)
    if good is None:
        return None
    release = release_create(
        app=app, actor=actor, image=good.image, config=dict(good.config),
        kind=Release.Kind.ROLLBACK, rollback_of=good,
        description=f"Rollback to {good.label} after cancelling {deployment.release.label}",
    )  # fmt: skip
    Release.objects.filter(pk=release.pk).update(task_definition_arn=good.task_definition_arn)
    return _deploy(
        app=app, actor=actor, release=release, ip_address=ip_address, action="app.rollback"
    )


SCALING_FIELDS = ("autoscaling_enabled", "min_tasks", "max_tasks", "cpu_target")


@transaction.atomic
def scaling_update(
    *, app: App, actor: Actor, ip_address: str | None = None, desired_count: int | None = None,
    **changes: Any,
) -> ScalingSettings:  # fmt: skip
    """Autoscaling on CPU (min/max/target) or a fixed `desired_count`; applied by a job."""
    unknown = set(changes) - set(SCALING_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "This field cannot be changed."))
    app = _locked(app)
    _refuse_if_deleting(app)
    scaling = app.scaling
    for name, value in changes.items():
        setattr(scaling, name, value)
    scaling.full_clean()
    if desired_count is not None:
        app.desired_count = desired_count
        app.full_clean()
        app.save(update_fields=["desired_count", "updated_at"])
    scaling.save()
    audit_record(
        team=app.team, actor=actor, action="app.scale", target=app, ip_address=ip_address,
        details={name: getattr(scaling, name) for name in SCALING_FIELDS}
        | {"desired_count": app.desired_count},
    )  # fmt: skip
    if app.service_arn:
        job_enqueue(kind="apply_scaling", target=app, team=app.team, created_by=actor)
    return scaling


APP_SETTINGS = (
    "port", "health_check_path", "cpu", "memory", "command", "min_healthy_percent",
    "max_percent", "circuit_breaker", "rollout_timeout_seconds",
)  # fmt: skip


@transaction.atomic
def app_update(*, app: App, actor: Actor, ip_address: str | None = None, **changes: Any) -> App:
    """Change settings; those in the task definition take effect with the next release."""
    unknown = set(changes) - set(APP_SETTINGS)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "This field cannot be changed."))
    app = _locked(app)
    _refuse_if_deleting(app)
    before = {name: getattr(app, name) for name in changes}
    for name, value in changes.items():
        setattr(app, name, value)
    app.full_clean()
    app.save(update_fields=[*changes, "updated_at"])
    audit_record(
        team=app.team, actor=actor, action="app.update", target=app, ip_address=ip_address,
        details={"before": before, "after": changes},
    )  # fmt: skip
    return app


@transaction.atomic
def app_delete(*, app: App, actor: Actor, ip_address: str | None = None) -> Job:
    """Tear the app down in AWS (a job); the row goes once AWS has nothing left of it."""
    app = _locked(app)
    _refuse_if_in_flight(app)
    audit_record(team=app.team, actor=actor, action="app.delete", target=app, ip_address=ip_address)
    return job_enqueue(kind="delete_app", target=app, team=app.team, created_by=actor)


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
    account = AwsAccount.objects.filter(team=team, name="sandbox").first()
    if account is None:
        account_create(
            team=team, actor=user, name="sandbox", mode=AwsAccount.Mode.SANDBOX, region="us-east-1"
        )
    else:  # a restarted sandbox has forgotten the customer role: verifying creates it again
        account_verify(account=account, actor=user)
    return user, new_password


@transaction.atomic
def api_token_create(
    *, team: Team, name: str, role: str, created_by: Actor
) -> tuple[ApiToken, str]:
    """A new bearer token for the team's API. Returns the row and the secret, which is not stored
    (only its hash is) and so must be shown to the user now."""
    secret = ApiToken.SECRET_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        team=team,
        name=name,
        role=role,
        token_hash=ApiToken.hash_secret(secret),
        prefix=secret[:12],
        created_by=_actor_or_none(created_by),
    )
    token.full_clean()
    token.save()
    audit_record(
        team=team,
        actor=created_by,
        action="api_token.create",
        target=token,
        details={"name": name, "role": role, "prefix": token.prefix},
    )
    return token, secret


@transaction.atomic
def api_token_revoke(*, token: ApiToken, actor: Actor, ip_address: str | None = None) -> ApiToken:
    """Refuse the token from now on; the row stays, for the audit trail. Idempotent."""
    revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=Now())
    token.refresh_from_db(fields=["revoked_at"])
    if revoked:
        audit_record(
            team=token.team,
            actor=actor,
            action="api_token.revoke",
            target=token,
            details={"name": token.name, "prefix": token.prefix},
            ip_address=ip_address,
        )
    return token

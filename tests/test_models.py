"""Rules that live in the database, and the ECS task-size rules moto does not check."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from deployments.capacity import validate_task_size
from deployments.models import App, AwsAccount, Cluster, Deployment, Release, Team
from deployments.transitions import transition
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def app(team: Team) -> App:
    return factories.make_app(factories.make_cluster(factories.make_account(team)))


def test_defaults_match_the_original_product(app: App) -> None:
    assert app.desired_count == 2
    assert (app.min_healthy_percent, app.max_percent, app.circuit_breaker) == (100, 200, True)
    assert (app.scaling.min_tasks, app.scaling.max_tasks, app.scaling.cpu_target) == (2, 5, 75)
    assert app.scaling.autoscaling_enabled
    cluster = app.cluster
    assert (cluster.min_instances, cluster.desired_instances, cluster.max_instances) == (2, 2, 4)


def test_release_version_is_unique_per_app(app: App) -> None:
    factories.make_release(app, version=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Release.objects.create(app=app, version=1, image="nginx:1.27", config={})


def test_one_deployment_in_flight_per_app(app: App) -> None:
    release = factories.make_release(app)
    factories.make_deployment(release, status=Deployment.Status.IN_PROGRESS)
    factories.make_deployment(release, status=Deployment.Status.SUCCEEDED)

    with pytest.raises(IntegrityError), transaction.atomic():
        factories.make_deployment(release, status=Deployment.Status.QUEUED)
    assert app.deployments.count() == 2


def test_app_names_are_unique_per_team_only(app: App, other_team: Team) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.make_app(app.cluster, name=app.name)
    elsewhere = factories.make_cluster(factories.make_account(other_team))
    assert factories.make_app(elsewhere, name=app.name).name == app.name


def test_cluster_instance_counts_must_be_ordered(team: Team) -> None:
    account = factories.make_account(team)
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.make_cluster(account, min_instances=3, desired_instances=2, max_instances=4)


def test_a_deleted_cluster_frees_its_name(team: Team) -> None:
    account = factories.make_account(team)
    factories.make_cluster(account, name="prod", status=Cluster.Status.DELETED)
    assert factories.make_cluster(account, name="prod").status == Cluster.Status.PENDING


def test_assume_role_accounts_need_a_role_arn(team: Team) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.make_account(team, mode=AwsAccount.Mode.ASSUME_ROLE, role_arn="")


def test_external_ids_are_generated_unguessable_and_read_only(team: Team) -> None:
    first, second = factories.make_account(team), factories.make_account(team)

    assert first.external_id != second.external_id
    assert len(first.external_id) >= 32
    assert not AwsAccount._meta.get_field("external_id").editable


@pytest.mark.parametrize(
    ("cpu", "memory", "field", "message"),
    [
        (127, 512, "cpu", "between 128 and 196608 units"),
        (256, 5, "memory", "at least 6 MiB"),
        # Within ECS's bounds but more than a t3.medium (2 vCPU, 4 GiB) offers to tasks.
        (4096, 1024, "cpu", "offers at most 2048 CPU units"),
        (256, 4096, "memory", "offers at most 3635 MiB"),
    ],
)
def test_task_sizes_ecs_would_refuse(cpu: int, memory: int, field: str, message: str) -> None:
    with pytest.raises(ValidationError) as error:
        validate_task_size(cpu, memory, "t3.medium")
    assert message in " ".join(error.value.message_dict[field])


@pytest.mark.parametrize(("cpu", "memory"), [(256, 256), (128, 128), (300, 700), (2048, 3635)])
def test_any_task_size_that_fits_the_instance_is_valid_on_ec2(cpu: int, memory: int) -> None:
    # Not Fargate's table: on EC2 ECS takes any size the instance can hold.
    validate_task_size(cpu, memory, "t3.medium")


def test_valid_task_size_passes_and_app_clean_checks_the_cluster(app: App) -> None:
    validate_task_size(512, 1024, "t3.medium")
    app.cpu, app.memory = 2048, 16384
    with pytest.raises(ValidationError, match="does not fit on a t3.medium"):
        app.full_clean()


def test_transitions_are_conditional_and_declared_once(app: App) -> None:
    deployment = factories.make_deployment(
        factories.make_release(app), status=Deployment.Status.QUEUED
    )
    stale_copy = Deployment.objects.get(pk=deployment.pk)

    assert transition(deployment, Deployment.Status.REGISTERING)
    assert not transition(stale_copy, Deployment.Status.REGISTERING)  # someone else won
    assert not transition(deployment, Deployment.Status.SUCCEEDED)  # not allowed from here
    deployment.refresh_from_db()
    assert deployment.status == Deployment.Status.REGISTERING

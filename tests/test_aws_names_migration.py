"""Names stored on rows: new rows get names no other row can share; rows that existed before
names were stored keep the ones their AWS resources already have, whatever changes later."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from deployments.models import App, Cluster
from tests import factories

BEFORE = [("deployments", "0013_signin_throttling_by_axes")]
AFTER = [("deployments", "0014_aws_names")]


def test_new_names_end_in_the_rows_uuid_and_stay_put(db: Any) -> None:
    demo, demo_prod = factories.make_team(slug="demo"), factories.make_team(slug="demo-prod")
    theirs = factories.make_cluster(factories.make_account(demo), name="prod-east")
    ours = factories.make_cluster(factories.make_account(demo_prod), name="east")
    app = factories.make_app(ours, name="web")

    assert theirs.ecs_name == f"tinystacks-demo-prod-east-{theirs.uuid.hex}" != ours.ecs_name
    assert ours.name_prefix == f"tinystacks-{ours.uuid.hex}"
    assert len(f"{ours.name_prefix}-execution") <= 64  # an IAM role name
    assert (app.service_name, app.task_family, app.aws_path) == (
        f"web-{app.uuid.hex}",
        f"tinystacks-demo-prod-web-{app.uuid.hex}",
        f"/tinystacks/demo-prod/web-{app.uuid.hex}",
    )
    Cluster.objects.filter(pk=ours.pk).update(name="renamed")
    ours.refresh_from_db()
    ours.save()
    assert ours.ecs_name == f"tinystacks-demo-prod-east-{ours.uuid.hex}"


@pytest.fixture
def migrator(transactional_db: Any) -> Iterator[MigrationExecutor]:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    yield executor
    MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes())


def test_rows_made_before_keep_todays_names(migrator: MigrationExecutor) -> None:
    old = migrator.loader.project_state(BEFORE).apps
    team = old.get_model("deployments", "Team").objects.create(name="Demo", slug="demo")
    account = old.get_model("deployments", "AwsAccount").objects.create(team=team, name="aws")
    cluster = old.get_model("deployments", "Cluster").objects.create(
        team=team, account=account, name="prod-east", region="us-east-1"
    )
    old.get_model("deployments", "App").objects.create(team=team, cluster=cluster, name="web")

    MigrationExecutor(connection).migrate(AFTER)

    migrated = Cluster.objects.get(pk=cluster.pk)
    assert migrated.ecs_name == "tinystacks-demo-prod-east"
    assert migrated.name_prefix == f"tinystacks-{cluster.uuid.hex[:12]}"
    app = App.objects.get(name="web")
    assert (app.service_name, app.task_family, app.aws_path) == (
        "web", "tinystacks-demo-web", "/tinystacks/demo/web",
    )  # fmt: skip
    assert app.uuid is not None

from __future__ import annotations

import uuid
from typing import Any

from django.db import migrations, models


def keep_todays_names(apps: Any, schema_editor: Any) -> None:
    """Rows made before names were stored keep the names their AWS resources already have: the
    formulas below are the ones the code used until now (frozen here on purpose)."""
    Cluster = apps.get_model("deployments", "Cluster")
    App = apps.get_model("deployments", "App")
    for cluster in Cluster.objects.select_related("team"):
        cluster.ecs_name = f"tinystacks-{cluster.team.slug}-{cluster.name}"
        cluster.name_prefix = f"tinystacks-{cluster.uuid.hex[:12]}"
        cluster.save(update_fields=["ecs_name", "name_prefix"])
    for app in App.objects.select_related("team"):
        app.uuid = uuid.uuid4()
        app.service_name = app.name
        app.task_family = f"tinystacks-{app.team.slug}-{app.name}"
        app.aws_path = f"/tinystacks/{app.team.slug}/{app.name}"
        app.save(update_fields=["uuid", "service_name", "task_family", "aws_path"])


class Migration(migrations.Migration):
    dependencies = [("deployments", "0013_signin_throttling_by_axes")]

    operations = [
        migrations.AddField(
            model_name="cluster",
            name="ecs_name",
            field=models.CharField(default="", editable=False, max_length=255),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="cluster",
            name="name_prefix",
            field=models.CharField(default="", editable=False, max_length=50),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="app",
            name="uuid",
            field=models.UUIDField(editable=False, null=True),
        ),
        migrations.AddField(
            model_name="app",
            name="service_name",
            field=models.CharField(default="", editable=False, max_length=255),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="app",
            name="task_family",
            field=models.CharField(default="", editable=False, max_length=255),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="app",
            name="aws_path",
            field=models.CharField(default="", editable=False, max_length=200),
            preserve_default=False,
        ),
        migrations.RunPython(keep_todays_names, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="app",
            name="uuid",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
    ]

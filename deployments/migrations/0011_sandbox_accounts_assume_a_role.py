from __future__ import annotations

from typing import Any

from django.db import migrations

from deployments.aws.permissions import sandbox_role_arn


def name_the_sandbox_role(apps: Any, schema_editor: Any) -> None:
    """Sandbox accounts are reached through a role like any customer's; verifying creates it."""
    AwsAccount = apps.get_model("deployments", "AwsAccount")
    for account in AwsAccount.objects.filter(mode="sandbox", role_arn=""):
        account.role_arn = sandbox_role_arn(account.external_id)
        account.save(update_fields=["role_arn"])


class Migration(migrations.Migration):
    dependencies = [("deployments", "0010_cluster_capacity")]

    operations = [migrations.RunPython(name_the_sandbox_role, migrations.RunPython.noop)]

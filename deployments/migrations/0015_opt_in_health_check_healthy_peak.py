from __future__ import annotations

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('deployments', '0014_aws_names'),
    ]

    operations = [
        migrations.AddField(
            model_name='deployment',
            name='healthy_peak',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AlterField(
            model_name='app',
            name='health_check_path',
            field=models.CharField(blank=True, help_text='Checked inside the container (curl or wget) when set; empty for no check.', max_length=200, validators=[django.core.validators.RegexValidator('\\A/[^\\s]*\\Z', 'Enter a path starting with /.')]),
        ),
    ]

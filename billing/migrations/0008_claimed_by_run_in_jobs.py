"""`claimed_by_run` points at CommandRun in its new app (`jobs`, jobs/migrations/0001): the same
table, so the database keeps its column and constraint."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0007_service_order_claimed_by_run"),
        ("jobs", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="opportunityserviceorder",
                    name="claimed_by_run",
                    field=models.ForeignKey(
                        blank=True,
                        editable=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="jobs.commandrun",
                        verbose_name="reservada por la ejecución",
                    ),
                ),
            ],
            database_operations=[],
        ),
    ]

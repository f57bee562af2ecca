"""CommandRun now belongs to the `jobs` app (jobs/migrations/0001): `crm` forgets it without
touching its table."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0002_command_run_liveness"),
        ("jobs", "0001_initial"),
        ("billing", "0008_claimed_by_run_in_jobs"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="CommandRun")], database_operations=[]),
    ]

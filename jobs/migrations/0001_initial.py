"""CommandRun moves from the `crm` app to `jobs`: the table (`crm_commandrun`) stays as it is, only
Django's record of which app owns the model changes, and the model's content type (and so its
permissions and admin log entries) follows it."""

import django.utils.timezone
from django.db import migrations, models


def content_type_to(app_label: str, other: str):
    def move(apps, schema_editor):
        content_types = apps.get_model("contenttypes", "ContentType").objects.using(schema_editor.connection.alias)
        if not content_types.filter(app_label=app_label, model="commandrun").exists():
            content_types.filter(app_label=other, model="commandrun").update(app_label=app_label)

    return move


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("crm", "0002_command_run_liveness"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="CommandRun",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("command", models.CharField(max_length=50, verbose_name="comando")),
                        ("host", models.CharField(max_length=255, verbose_name="servidor")),
                        ("started_at", models.DateTimeField(default=django.utils.timezone.now, verbose_name="inicio")),
                        ("finished_at", models.DateTimeField(blank=True, null=True, verbose_name="fin")),
                        (
                            "outcome",
                            models.CharField(
                                choices=[("running", "en curso"), ("ok", "correcta"), ("partial", "parcial"), ("failed", "fallida")],
                                default="running",
                                max_length=10,
                                verbose_name="resultado",
                            ),
                        ),
                        ("counts", models.JSONField(blank=True, default=dict, verbose_name="conteos")),
                        ("fatal", models.TextField(blank=True, default="", verbose_name="motivo del fallo")),
                        ("pid", models.IntegerField(blank=True, null=True, verbose_name="proceso")),
                        ("process_started", models.BigIntegerField(blank=True, null=True, verbose_name="inicio del proceso")),
                        ("heartbeat_at", models.DateTimeField(blank=True, null=True, verbose_name="última señal de vida")),
                    ],
                    options={
                        "verbose_name": "ejecución de comando",
                        "verbose_name_plural": "ejecuciones de comandos",
                        "ordering": ("-started_at", "-id"),
                        "db_table": "crm_commandrun",
                        "indexes": [models.Index(fields=["command", "-started_at"], name="command_run_latest_idx")],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_type_to("jobs", "crm"), content_type_to("crm", "jobs")),
    ]

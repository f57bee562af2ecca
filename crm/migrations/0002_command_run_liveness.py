from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="commandrun",
            name="pid",
            field=models.IntegerField(blank=True, null=True, verbose_name="proceso"),
        ),
        migrations.AddField(
            model_name="commandrun",
            name="process_started",
            field=models.BigIntegerField(blank=True, null=True, verbose_name="inicio del proceso"),
        ),
        migrations.AddField(
            model_name="commandrun",
            name="heartbeat_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="última señal de vida"),
        ),
    ]

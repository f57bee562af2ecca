from django.db import migrations


def clear_current_comprobante(apps, schema_editor):
    """An O.S whose comprobante was voided and not reissued yet has no current comprobante: its
    head id and URLs stay only in the history and on the (voided) attachments."""
    ServiceOrder = apps.get_model("billing", "OpportunityServiceOrder")
    ServiceOrder.objects.filter(facturado=False, voided_at__isnull=False).update(
        invoice_result_head_id=None, url_soles=None, url_dolares=None
    )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0008_claimed_by_run_in_jobs"),
    ]

    operations = [migrations.RunPython(clear_current_comprobante, migrations.RunPython.noop)]

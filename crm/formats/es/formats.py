"""Spanish (es, es-pe) display formats: the clinic's one format (crm/admin_ui/display.py)."""

from crm.admin_ui.display import CLINIC_DATETIME_FORMAT

DATETIME_FORMAT = CLINIC_DATETIME_FORMAT
SHORT_DATETIME_FORMAT = CLINIC_DATETIME_FORMAT
DATE_FORMAT = "d/m/Y"
SHORT_DATE_FORMAT = "d/m/Y"

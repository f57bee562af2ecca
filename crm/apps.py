from axes import apps as axes_apps
from django.apps import AppConfig
from django.db.backends.signals import connection_created

from crm.search import register_sqlite_fold


class CrmConfig(AppConfig):
    """The project package: wiring and API plumbing; its one model is the API's `IdempotencyKey`
    (its earlier migrations moved `CommandRun` to `jobs`)."""

    default = True
    name = "crm"
    verbose_name = "CRM"

    def ready(self) -> None:
        connection_created.connect(register_sqlite_fold, dispatch_uid="crm.search.register_sqlite_fold")


class AxesConfig(axes_apps.AppConfig):
    """django-axes under a Spanish name in the admin (listed in `INSTALLED_APPS` in place of
    `axes`, Django's documented way to rename a third-party app); its models and fields speak
    Spanish through locale/es (LOCALE_PATHS), its admin is crm/admin.py's."""

    default = False
    verbose_name = "Accesos al panel (django-axes)"

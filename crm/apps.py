from django.apps import AppConfig
from django.db.backends.signals import connection_created

from crm.search import register_sqlite_fold


class CrmConfig(AppConfig):
    """Wiring and plumbing; its one model is the run record of the periodic commands."""

    name = "crm"
    verbose_name = "Procesos automáticos"

    def ready(self) -> None:
        connection_created.connect(register_sqlite_fold, dispatch_uid="crm.search.register_sqlite_fold")

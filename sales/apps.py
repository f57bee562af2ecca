from django.apps import AppConfig


class SalesConfig(AppConfig):
    """The process update, the REST API and the staff's opportunity admin, on top of the opportunity
    core (`opportunities`) and billing (`billing`)."""

    name = "sales"
    verbose_name = "Ventas"

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class SalesConfig(AppConfig):
    """The process update, the REST API and the staff's opportunity admin, on top of the opportunity
    core (`opportunities`) and billing (`billing`)."""

    default = True
    name = "sales"
    verbose_name = "Ventas"


class ClinicAdminConfig(admin_apps.AdminConfig):
    """`django.contrib.admin` with the clinic's site (sales/admin_site.py) as `admin.site`; listed
    in `INSTALLED_APPS` in place of `django.contrib.admin`."""

    default = False
    default_site = "sales.admin_site.ClinicAdminSite"

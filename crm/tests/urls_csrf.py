"""Test URLconf: the project's routes plus one CSRF-protected form view outside the admin."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from crm.urls import handler400, handler403, handler404, handler500  # noqa: F401
from crm.urls import urlpatterns as project_urlpatterns


def protected_form(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [path("formulario-protegido", protected_form), *project_urlpatterns]

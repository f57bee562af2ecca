"""Root URL configuration: the API (with and without trailing slash), docs, admin and the product's page."""

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from crm import apis, errors, home

handler400 = "crm.errors.json_400"
handler403 = "crm.errors.json_403"
handler404 = "crm.errors.json_404"
handler500 = "crm.errors.json_500"

urlpatterns = [
    re_path(r"^auth/signin/?$", apis.SigninApi.as_view(), name="auth-signin"),
    path("", include("sales.urls")),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="schema"),
    # GET and HEAD only: DRF's OPTIONS answer would render this view's HTML template without a
    # name (a 500); any other method is the JSON 405.
    re_path(
        r"^api/docs/?$",
        SpectacularSwaggerView.as_view(url_name="schema", http_method_names=["get", "head"]),
        name="swagger-ui",
    ),
    # drf-spectacular's ReDoc page without its web fonts from fonts.googleapis.com.
    re_path(
        r"^api/redoc/?$", SpectacularRedocView.as_view(url_name="schema", template_name="crm/redoc.html"), name="redoc"
    ),
    # Staff type the admin's address without the slash: send them to it (the API never redirects).
    re_path(r"^admin$", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    # The product's page (the admin's "Ver el sitio"); any method but GET and HEAD is a JSON 405.
    re_path(r"^$", csrf_exempt(home.home), name="home"),
    # Anything else is a JSON 404, with DEBUG on too (Django's debug 404 page is HTML), for every
    # method: exempt from the CSRF check, which would otherwise answer a PUT or POST to an unknown
    # path with a 403 (it changes nothing, so there is nothing to protect).
    re_path(r"^", csrf_exempt(errors.json_404)),
]

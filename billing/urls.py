"""Routes of the billing API (service orders); with and without a trailing slash."""
from django.urls import re_path

from . import apis

urlpatterns = [
    re_path(
        r"^opportunity/(?P<opportunity_id>[^/]+)/service-orders/?$",
        apis.ServiceOrderListApi.as_view(),
        name="opportunity-service-orders",
    ),
]

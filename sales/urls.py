"""Routes of the API; each is served with and without a trailing slash."""

from django.urls import re_path
from django.views.decorators.clickjacking import xframe_options_exempt

from . import apis, attachment_open, health, metrics
from .attachment_links import TOKEN_PATTERN

urlpatterns = [
    re_path(r"^health/?$", health.HealthApi.as_view(), name="health"),
    re_path(r"^health/live/?$", health.LiveApi.as_view(), name="health-live"),
    re_path(r"^metrics/?$", metrics.metrics_view, name="metrics"),
    re_path(r"^opportunity/?$", apis.OpportunityCreateApi.as_view(), name="opportunity-create"),
    re_path(
        r"^opportunity/update-opportunity-procces/(?P<opportunity_id>[^/]+)/?$",
        apis.OpportunityProcessUpdateApi.as_view(),
        name="opportunity-process-update",
    ),
    re_path(
        r"^opportunity/(?P<opportunity_id>[^/]+)/meetings/?$",
        apis.MeetingListApi.as_view(),
        name="opportunity-meetings",
    ),
    re_path(
        r"^opportunity/(?P<opportunity_id>[^/]+)/action-history/?$",
        apis.ActionHistoryListApi.as_view(),
        name="opportunity-action-history",
    ),
    re_path(
        r"^opportunity/(?P<opportunity_id>[^/]+)/attachments/?$",
        apis.AttachmentListApi.as_view(),
        name="opportunity-attachments",
    ),
    re_path(
        r"^opportunity/(?P<opportunity_id>[^/]+)/attachments/(?P<attachment_id>[0-9]{1,18})/download/?$",
        apis.AttachmentDownloadApi.as_view(),
        name="opportunity-attachment-download",
    ),
    # A comprobante by its signed link (downloadUrl); framed by the front-end's pages only (its CSP).
    re_path(
        rf"^opportunity/(?P<opportunity_id>[^/]+)/attachments/(?P<attachment_id>[0-9]{{1,18}})/open/(?P<token>{TOKEN_PATTERN})/?$",
        xframe_options_exempt(attachment_open.AttachmentOpenApi.as_view()),
        name="opportunity-attachment-open",
    ),
    re_path(
        r"^opportunity/(?P<opportunity_id>[^/]+)/service-orders/?$",
        apis.ServiceOrderListApi.as_view(),
        name="opportunity-service-orders",
    ),
    re_path(
        r"^opportunity/(?P<opportunity_id>[^/]+)/?$", apis.OpportunityDetailApi.as_view(), name="opportunity-detail"
    ),
]

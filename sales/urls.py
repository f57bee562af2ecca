"""Routes of the API; each is served with and without a trailing slash."""

from collections.abc import Callable
from typing import Any

from django.urls import URLPattern, re_path
from django.views.decorators.clickjacking import xframe_options_exempt

from . import apis, attachment_open, health, metrics
from .attachment_links import TOKEN_PATTERN

OPPORTUNITY = r"opportunity/(?P<opportunity_id>[^/]+)"
ATTACHMENT = rf"{OPPORTUNITY}/attachments/(?P<attachment_id>[0-9]{{1,18}})"


def route(pattern: str, view: Callable[..., Any], name: str) -> URLPattern:
    """`pattern` (a regular expression without anchors), with or without a trailing slash."""
    return re_path(rf"^{pattern}/?$", view, name=name)


urlpatterns = [
    route("health", health.HealthApi.as_view(), "health"),
    route("health/live", health.LiveApi.as_view(), "health-live"),
    route("metrics", metrics.metrics_view, "metrics"),
    route("opportunity", apis.OpportunityCreateApi.as_view(), "opportunity-create"),
    route(
        r"opportunity/update-opportunity-procces/(?P<opportunity_id>[^/]+)",
        apis.OpportunityProcessUpdateApi.as_view(),
        "opportunity-process-update",
    ),
    route(f"{OPPORTUNITY}/meetings", apis.MeetingListApi.as_view(), "opportunity-meetings"),
    route(f"{OPPORTUNITY}/action-history", apis.ActionHistoryListApi.as_view(), "opportunity-action-history"),
    route(f"{OPPORTUNITY}/attachments", apis.AttachmentListApi.as_view(), "opportunity-attachments"),
    route(f"{ATTACHMENT}/download", apis.AttachmentDownloadApi.as_view(), "opportunity-attachment-download"),
    # A comprobante by its signed link (downloadUrl); framed by the front-end's pages only (its CSP).
    route(
        f"{ATTACHMENT}/open/(?P<token>{TOKEN_PATTERN})",
        xframe_options_exempt(attachment_open.AttachmentOpenApi.as_view()),
        "opportunity-attachment-open",
    ),
    route(f"{OPPORTUNITY}/service-orders", apis.ServiceOrderListApi.as_view(), "opportunity-service-orders"),
    route(OPPORTUNITY, apis.OpportunityDetailApi.as_view(), "opportunity-detail"),
]

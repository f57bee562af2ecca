"""WSGI entry point (gunicorn crm.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
django_application = get_wsgi_application()

from crm.bodylimit import ChunkedRequestBodyMiddleware  # noqa: E402 - needs the settings set up

# Chunked request bodies, bounded by API_MAX_BODY_BYTES (Django reads only Content-Length bodies).
application = ChunkedRequestBodyMiddleware(django_application)

"""Settings for the test suite: the real settings with a hermetic environment.

Only `DATABASE_URL` is taken from the caller's environment (so the same suite runs on SQLite and
PostgreSQL); the `.env` file is ignored so that a developer's local values never leak into tests.
"""

import os

os.environ["ENV_FILE"] = ""
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ["DEBUG"] = "false"
os.environ["SECURE_SSL_REDIRECT"] = "false"
os.environ["SECURE_HSTS_SECONDS"] = "0"
for _name in (
    "URL_INVOICE_MIFACT_V3",
    "URL_SV",
    "WEBHOOK_URL",
    "WEBHOOK_SECRET",
    "USERNAME_ADMIN",
    "PASSWORD_ADMIN",
    "INVOICE_MIFACT_USERNAME",
    "INVOICE_MIFACT_PASSWORD",
    "SV_USERNAME",
    "SV_PASSWORD",
    "INVOICE_DOWNLOAD_ALLOWED_HOSTS",
    "MEDIA_ROOT",
    "TIME_ZONE",
    "CORS_ALLOWED_ORIGINS",
    "ATTACHMENT_LINK_MINUTES",
):
    os.environ.pop(_name, None)

from crm.settings import *  # noqa: E402, F403

# The development commands are tested too (production installs them only with DEBUG).
INSTALLED_APPS = [*INSTALLED_APPS, "devtools"]  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"signin": "1000/min"}}  # noqa: F405
# No collectstatic under tests: plain static storage (no manifest), and WhiteNoise finds the
# apps' static files itself instead of reading a STATIC_ROOT that does not exist.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

"""Settings of the clinic CRM backend.

Every value comes from the environment or from the `.env` file in the project folder (cron runs
commands with no shell environment, so the file is what it sees). docs/operations.md "Configuration" lists the
variables; `.env.example` documents each one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import environ
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# Values already in the process environment win over the file (read_env uses setdefault).
_env_file = os.environ.get("ENV_FILE", str(BASE_DIR / ".env"))
if _env_file and Path(_env_file).is_file():
    environ.Env.read_env(_env_file)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required unless DEBUG=true")
    SECRET_KEY = "insecure-development-key-only-used-with-debug"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    # django.contrib.admin with the clinic's admin site (start page, titles; docs/admin.md).
    "sales.apps.ClinicAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_crontab",
    "corsheaders",  # CORS for the front-end on its own origin (CORS_* below)
    "import_export",  # the admin lists' exports (crm/admin_ui/export.py, IMPORT_EXPORT_* below)
    # django-axes with a Spanish name; its admin is crm/admin.py's (AXES_ENABLE_ADMIN below).
    "crm.apps.AxesConfig",
    "crm",
    "jobs",
    "opportunities",
    "billing",
    "sales",
]
if DEBUG:
    # Development commands (devtools/management: load_sample_day); never installed in production.
    INSTALLED_APPS.append("devtools")

MIDDLEWARE = [
    # Request counts and latencies by view and status for /metrics (django-prometheus): first and last.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # Every request gets an id (X-Request-ID, or a new one), on every log line and outside call.
    "crm.request_ids.RequestIdHeaderMiddleware",
    "log_request_id.middleware.RequestIDMiddleware",
    # CORS: answers the API's preflights before anything else can (authentication, body limit), and
    # adds its headers to every answer, also the errors made or rewritten below, for the page to read.
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Error answers that the framework or WhiteNoise make themselves become JSON (crm/json_errors.py).
    "crm.json_errors.JsonErrorsMiddleware",
    # Pages load nothing from other hosts: CONTENT_SECURITY_POLICY below, on every answer (django-csp).
    "csp.middleware.CSPMiddleware",
    # Serves collected static files (admin, Swagger UI) from gunicorn; right after security.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # A JSON 413 for bodies over API_MAX_BODY_BYTES, before anything reads them (crm/bodylimit.py).
    "crm.bodylimit.RequestBodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Locks out admin-login password guessing (django-axes); last but for the metrics.
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "crm.urls"
WSGI_APPLICATION = "crm.wsgi.application"
# Routes are declared with and without the trailing slash; never redirect.
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Project templates (crm/templates), e.g. the offline ReDoc page.
        "DIRS": [BASE_DIR / "crm" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# Relative paths (a SQLite file, MEDIA_ROOT) are the project folder's, not the current folder's:
# cron runs commands from the user's home.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" and DATABASES["default"]["NAME"] != ":memory:":
    DATABASES["default"]["NAME"] = str(BASE_DIR / DATABASES["default"]["NAME"])
_postgresql = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
# Persistent connections (docs/decisions.md "Database connections"): on PostgreSQL a connection
# is kept for CONN_MAX_AGE seconds across requests, as opening one is most of a PUT's cost.
# Wherever connections persist, each is health-checked (one cheap round trip) before the first
# query of a request, so one the server dropped (failover, restart, pg_terminate_backend) is
# replaced instead of failing that request. Commands are not requests: nothing changes for them.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=600 if _postgresql else 0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = DATABASES["default"]["CONN_MAX_AGE"] != 0
if _postgresql:
    # Server-side parameters, and psycopg preparing a statement once it has run
    # DB_PREPARE_THRESHOLD times on a connection (kept with CONN_MAX_AGE): PostgreSQL then stops
    # parsing and planning the hot statements on every request. Django turns preparing off by
    # default for the sake of connection poolers: set DB_PREPARE_THRESHOLD=none behind PgBouncer
    # in transaction mode. Preparing needs server-side binding.
    _prepare_threshold = env.str("DB_PREPARE_THRESHOLD", default="5").strip().lower()
    if _prepare_threshold not in ("", "none") and not _prepare_threshold.isdigit():
        raise ImproperlyConfigured("DB_PREPARE_THRESHOLD must be a whole number or 'none'")
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "server_side_binding": env.bool("DB_SERVER_SIDE_BINDING", default=True),
            "prepare_threshold": None if _prepare_threshold in ("", "none") else int(_prepare_threshold),
        }
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Concurrent requests on the embedded database: take the write lock when a transaction starts
    # (no lock-upgrade deadlock between two read-then-write transactions), wait for it instead
    # of failing at once, and let readers run beside the writer (WAL).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": env.int("SQLITE_TIMEOUT", default=20),
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Admin login: after AXES_FAILURE_LIMIT failed attempts for one username from one address, that
# pair is locked out for AXES_COOLOFF_MINUTES (HTTP 429). /auth/signin has its own DRF throttle.
AXES_ONLY_ADMIN_SITE = True
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = env.int("AXES_COOLOFF_MINUTES", default=15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "crm.security.client_ip"
AXES_HANDLER = "crm.security.AdminOnlyAxesHandler"
# The lockout answer is an admin page in Spanish (how long, what to do, back to the login).
AXES_LOCKOUT_CALLABLE = "crm.admin_ui.lockout.admin_lockout_page"
# Exports of admin lists need the model's `export_<model>` permission (granted by the roles,
# sales/migrations/0001_staff_roles.py); a cell's leading "=" is dropped (no formula runs in
# Excel), and a control character Excel refuses becomes U+FFFD instead of failing the export.
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "export"
IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT = True
IMPORT_EXPORT_ESCAPE_ILLEGAL_CHARS_ON_EXPORT = True
# The lockout lists are registered in Spanish by crm/admin.py instead of axes' English admin.
AXES_ENABLE_ADMIN = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "es-pe"
# Spanish for third-party apps that ship none (django-axes): locale/es (docs/decisions.md).
LOCALE_PATHS = [BASE_DIR / "locale"]
# Dates and times read dd/mm/yyyy HH:MM everywhere in the admin, Django's own fields included.
FORMAT_MODULE_PATH = ["crm.formats"]
TIME_ZONE = env.str("TIME_ZONE", default="America/Lima")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES: dict[str, dict[str, Any]] = {
    # Media (downloaded comprobantes) stays on the local disk in MEDIA_ROOT.
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # `collectstatic` (make serve) writes hashed, compressed copies that WhiteNoise serves with
    # far-future cache headers. crm/settings_test.py swaps in the plain storage.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_URL = "media/"  # never routed: attachments are served only through the authenticated API
MEDIA_ROOT = (BASE_DIR / env.str("MEDIA_ROOT", default="media")).resolve()

# Shared media for several app servers: MEDIA_STORAGE=s3 keeps comprobantes in an S3-compatible
# bucket (AWS S3, MinIO, Ceph...) through django-storages. Files stay private: the API streams
# them to authenticated users or by its own signed links; no bucket URL is ever handed out.
MEDIA_STORAGE = env.str("MEDIA_STORAGE", default="local").lower()
if MEDIA_STORAGE == "s3":
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            "access_key": env.str("AWS_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default="") or None,
            "location": env.str("AWS_LOCATION", default="media"),
            "default_acl": "private",
            # Comprobantes are stored under their SHA-256 (opportunities/attachment_files.py):
            # the same name always holds the same bytes, so overwriting is safe and keeps the
            # object young for the orphan sweep.
            "file_overwrite": True,
        },
    }
elif MEDIA_STORAGE != "local":
    raise ImproperlyConfigured("MEDIA_STORAGE must be 'local' or 's3'")

# --- Security (docs/operations.md "Configuration") -------------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^health/?$", r"^health/live/?$"]
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=SECURE_HSTS_SECONDS > 0)
# The preload directive only matters when the registrable domain itself is submitted to the
# browsers' preload list; switch it off with SECURE_HSTS_PRELOAD=false if that must never happen.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=SECURE_HSTS_INCLUDE_SUBDOMAINS)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Pages load nothing from other hosts (docs/decisions.md, offline pages): the intranet has no way
# out, and pages about patients tell no third party who reads them. ReDoc's bundle would fetch the
# Redocly logo from cdn.redoc.ly; this policy stops it. Inline scripts and styles (drf-spectacular
# starts Swagger UI and ReDoc inline) and blob: workers (ReDoc's search) stay allowed.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, UNSAFE_INLINE],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "worker-src": [SELF, "blob:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
SESSION_COOKIE_HTTPONLY = True
# A failed CSRF check is a JSON 403, except in the admin (Django's page).
CSRF_FAILURE_VIEW = "crm.errors.csrf_failure"
# Origins allowed to POST forms (the admin) when a proxy rewrites the Host, e.g. https://crm.example.com
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
if env.bool("USE_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Calling from a browser (docs/api.md "Calling from a browser") ---------------------------------
# Front-end origins allowed to call the API from a browser, e.g. https://crm.clinica.pe (empty: same
# origin only). Bearer tokens, no credentials; the admin, the docs and /metrics never take part.
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/(auth/signin|opportunity|health)(/|$)"
CORS_ALLOW_HEADERS = ["authorization", "content-type", "idempotency-key", "if-match", "if-none-match", "x-request-id"]
CORS_EXPOSE_HEADERS = ["ETag", "X-Request-ID", "Retry-After", "Idempotent-Replayed"]
ATTACHMENT_LINK_MINUTES = env.int("ATTACHMENT_LINK_MINUTES", default=15)  # a downloadUrl's life (sales/)

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["crm.parsers.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "crm.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DATETIME_FORMAT": "%Y-%m-%d %H:%M:%S",
    "DATE_FORMAT": "iso-8601",  # yyyy-MM-dd, zero-padded (strftime's %Y is not, before year 1000)
    "DEFAULT_THROTTLE_RATES": {"signin": env.str("SIGNIN_THROTTLE_RATE", default="10/min")},
    # Proxies in front of the app whose X-Forwarded-For entries are trusted when throttling by
    # client address. Unset, DRF would key on the whole header, which any client can vary to
    # escape the sign-in throttle. Default: one proxy when USE_X_FORWARDED_PROTO is on, else none.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=1 if env.bool("USE_X_FORWARDED_PROTO", default=False) else 0),
    "UNAUTHENTICATED_USER": None,
}

# Largest request body (bytes), on every path; larger bodies get a JSON 413 (crm/bodylimit.py).
# That middleware is the only limit: Django's own (DATA_UPLOAD_MAX_MEMORY_SIZE) is off, so it
# never refuses first, with its RequestDataTooBig, a body the API accepts.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = None

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": __import__("datetime").timedelta(
        seconds=env.int("ACCESS_TOKEN_LIFETIME_SECONDS", default=8 * 3600)
    ),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "SIGNING_KEY": SECRET_KEY,
    "UPDATE_LAST_LOGIN": False,
}

SPECTACULAR_SETTINGS = {
    # What the docs say to people is Spanish (crm/schema.py).
    "TITLE": "CRM de la clínica: API",
    "DESCRIPTION": (
        "Oportunidades de venta, su actualización con datos del proceso (cliente, paciente, cita), y su "
        "cierre con comprobantes (facturas) u órdenes de servicio (O.S).\n\n"
        "Las rutas, salvo `/auth/signin`, `/health`, esta documentación y los `downloadUrl`, exigen la cabecera "
        "`Authorization: Bearer <access_token>`. Todo error es JSON `{statusCode, message, error, errors?}` "
        "con el mensaje en español; una respuesta 4xx no modifica nada."
    ),
    "TAGS": [
        {"name": "auth", "description": "Inicio de sesión: token Bearer para el resto de la API"},
        {"name": "health", "description": "Estado del servicio, para balanceadores y monitoreo"},
        {
            "name": "opportunity",
            "description": "Oportunidades, su proceso de venta, citas, historial, "
            "comprobantes y órdenes de servicio (O.S)",
        },
    ],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "crm.schema.spanish_component_descriptions",
        "crm.schema.opportunity_links",
    ],
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Swagger UI's online validator off: nothing is loaded from another host (docs/decisions.md).
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
}

# --- Outside services, downloads, the poller, run records, cron: crm/settings_services.py ----------
from crm.settings_services import *  # noqa: E402, F403

# --- Monitoring (docs/operations.md "Monitoring") ---------------------------------------------
# Request ids: taken from X-Request-ID (when it is a plain id) or generated, returned in the
# response's X-Request-ID, on every log line and sent on every outside call (crm.request_ids).
LOG_REQUEST_ID_HEADER = "HTTP_X_REQUEST_ID"
GENERATE_REQUEST_ID_IF_NOT_IN_HEADER = True
REQUEST_ID_RESPONSE_HEADER = "X-Request-ID"

# /metrics: served with `Authorization: Bearer <METRICS_TOKEN>` or to METRICS_ALLOWED_IPS
# (addresses or networks, as crm.security.client_ip sees the client); a 404 while neither is set.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=[])

# Sentry: unhandled errors, and both commands as cron monitors. Nothing is imported without a DSN.
SENTRY_DSN = env.str("SENTRY_DSN", default="")
SENTRY_CRON_CHECKIN_MARGIN_MINUTES = env.int("SENTRY_CRON_CHECKIN_MARGIN_MINUTES", default=5)
SENTRY_CRON_MAX_RUNTIME_MINUTES = env.int("SENTRY_CRON_MAX_RUNTIME_MINUTES", default=15)
if SENTRY_DSN:
    from crm.monitoring import sentry_init

    sentry_init(
        dsn=SENTRY_DSN,
        environment=env.str("SENTRY_ENVIRONMENT", default=""),
        release=env.str("SENTRY_RELEASE", default=""),
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
    )

# LOG_FORMAT=json: one JSON object per line (time, level, logger, message, request_id and, where
# known, opportunity_id and service_order_id); the default stays human-readable.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain").lower()
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured("LOG_FORMAT must be 'plain' or 'json'")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "log_request_id.filters.RequestIDFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # django-axes announces itself at INFO on every start: keep cron output to the summary line.
    # urllib3 warns on every retry of an outside call; the clients report what failed in the end
    # (on the row, in the summary line), so cron mails carry only that.
    "loggers": {"axes": {"level": "WARNING"}, "urllib3": {"level": "ERROR"}},
}

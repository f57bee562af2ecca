"""The project's own settings: outside services (invoice-mifact, SV), comprobante downloads and
files, the poller, run records and cron (docs/operations.md "Configuration"). `crm/settings.py`
imports them after it has read `.env` into the environment.
"""

from __future__ import annotations

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

# --- Outside services (docs/operations.md "Configuration") ------------------------------------
USERNAME_ADMIN = env.str("USERNAME_ADMIN", default="")
PASSWORD_ADMIN = env.str("PASSWORD_ADMIN", default="")
URL_INVOICE_MIFACT_V3 = env.str("URL_INVOICE_MIFACT_V3", default="").rstrip("/")
INVOICE_MIFACT_USERNAME = env.str("INVOICE_MIFACT_USERNAME", default="") or USERNAME_ADMIN
INVOICE_MIFACT_PASSWORD = env.str("INVOICE_MIFACT_PASSWORD", default="") or PASSWORD_ADMIN
INVOICE_MIFACT_TIMEOUT = env.float("INVOICE_MIFACT_TIMEOUT", default=10.0)
# The checks a PUT makes after its update: a short timeout, at most this many O.S, none started
# after this many seconds (the rest is left to the poller).
INVOICE_MIFACT_INLINE_TIMEOUT = env.float("INVOICE_MIFACT_INLINE_TIMEOUT", default=3.0)
INLINE_CHECK_MAX_ORDERS = env.int("INLINE_CHECK_MAX_ORDERS", default=10)
INLINE_CHECK_BUDGET_SECONDS = env.float("INLINE_CHECK_BUDGET_SECONDS", default=5.0)

INVOICE_DOWNLOAD_ALLOWED_HOSTS = env.list("INVOICE_DOWNLOAD_ALLOWED_HOSTS", default=[])
# Refuse every download host that is not allow-listed (or the invoice-mifact host).
INVOICE_DOWNLOAD_ONLY_ALLOWED_HOSTS = env.bool("INVOICE_DOWNLOAD_ONLY_ALLOWED_HOSTS", default=False)
INVOICE_DOWNLOAD_MAX_BYTES = env.int("INVOICE_DOWNLOAD_MAX_BYTES", default=10 * 1024 * 1024)
INVOICE_DOWNLOAD_TIMEOUT = env.float("INVOICE_DOWNLOAD_TIMEOUT", default=30.0)
# Comprobantes are downloaded here (never to the system's temporary folder; a relative path is
# taken from the project folder) and stored from here; what a killed process leaves is swept by
# poll_invoices and attachments_check.
INVOICE_DOWNLOAD_DIR = (BASE_DIR / env.str("INVOICE_DOWNLOAD_DIR", default="var/downloads")).resolve()
# A stored file that no attachment row points to (a crash before its row committed) is deleted by
# attachments_check once it is older than this.
ATTACHMENT_ORPHAN_GRACE_HOURS = env.int("ATTACHMENT_ORPHAN_GRACE_HOURS", default=24)

URL_SV = env.str("URL_SV", default="").rstrip("/")
SV_USERNAME = env.str("SV_USERNAME", default="") or USERNAME_ADMIN
SV_PASSWORD = env.str("SV_PASSWORD", default="") or PASSWORD_ADMIN
# Seconds the immediate delivery after a PUT may wait for SV, and a sync_sv delivery.
SV_INLINE_TIMEOUT = env.float("SV_INLINE_TIMEOUT", default=3.0)
SV_TIMEOUT = env.float("SV_TIMEOUT", default=10.0)
SV_SYNC_MAX_ATTEMPTS = env.int("SV_SYNC_MAX_ATTEMPTS", default=20)
SV_SYNC_BACKOFF_SECONDS = env.int("SV_SYNC_BACKOFF_SECONDS", default=60)
SV_SYNC_BACKOFF_MAX_SECONDS = env.int("SV_SYNC_BACKOFF_MAX_SECONDS", default=3600)

# Signed events (docs/api.md "Events"): the receiver of WEBHOOK_URL (with WEBHOOK_SECRET, "whsec_..."),
# besides the endpoints staff add in the admin; timeouts of the attempt right after the commit and
# of send_events; retries with doubling delays; delivered events kept this many days.
WEBHOOK_URL = env.str("WEBHOOK_URL", default="")
WEBHOOK_SECRET = env.str("WEBHOOK_SECRET", default="")
WEBHOOK_INLINE_TIMEOUT = env.float("WEBHOOK_INLINE_TIMEOUT", default=3.0)
WEBHOOK_TIMEOUT = env.float("WEBHOOK_TIMEOUT", default=10.0)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=30)
WEBHOOK_BACKOFF_SECONDS = env.int("WEBHOOK_BACKOFF_SECONDS", default=30)
WEBHOOK_BACKOFF_MAX_SECONDS = env.int("WEBHOOK_BACKOFF_MAX_SECONDS", default=3600)
WEBHOOK_EVENTS_KEEP_DAYS = env.int("WEBHOOK_EVENTS_KEEP_DAYS", default=30)
# A process reads the admin's active endpoints at most this often (an endpoint added or switched
# off counts for the changes made from then on, in every process, after at most this delay).
WEBHOOK_ENDPOINTS_CACHE_SECONDS = env.float("WEBHOOK_ENDPOINTS_CACHE_SECONDS", default=10.0)

# Poller (billing.services.poll.service_orders_poll)
POLL_WORKERS = env.int("POLL_WORKERS", default=8)
POLL_BATCH_SIZE = env.int("POLL_BATCH_SIZE", default=100)
POLL_CLAIM_SECONDS = env.int("POLL_CLAIM_SECONDS", default=300)
# Follow-up of invoiced O.S (voided or reissued comprobantes): for this many days after an O.S
# became facturado, poll_invoices asks again at most once per this many minutes. 0 turns it off.
INVOICE_FOLLOW_UP_DAYS = env.int("INVOICE_FOLLOW_UP_DAYS", default=7)
INVOICE_FOLLOW_UP_INTERVAL_MINUTES = env.int("INVOICE_FOLLOW_UP_INTERVAL_MINUTES", default=60)
# The polling schedule by age (billing/schedule.py, docs/operations.md "Polling schedule"): a
# pending O.S is asked in every run while younger than POLL_EVERY_RUN_DAYS, at most hourly until
# POLL_HOURLY_UNTIL_DAYS, at most daily until POLL_DAILY_UNTIL_DAYS, then no more (stopped).
POLL_EVERY_RUN_DAYS = env.float("POLL_EVERY_RUN_DAYS", default=7)
POLL_HOURLY_UNTIL_DAYS = env.float("POLL_HOURLY_UNTIL_DAYS", default=30)
POLL_DAILY_UNTIL_DAYS = env.float("POLL_DAILY_UNTIL_DAYS", default=90)
# An O.S that invoice-mifact answers with a 404 or another 4xx waits base * 2^(errors - 1) minutes
# (with jitter, at most the cap) before the poll asks again (billing/backoff.py).
POLL_ERROR_BACKOFF_MINUTES = env.float("POLL_ERROR_BACKOFF_MINUTES", default=10)
POLL_ERROR_BACKOFF_MAX_MINUTES = env.float("POLL_ERROR_BACKOFF_MAX_MINUTES", default=1440)
# A 429 or 503 with Retry-After pauses every call of the run for that long, at most this many
# seconds per pause (a 429 without Retry-After: the cap); a run that paused this long in all ends
# and leaves the rest to the next run.
POLL_RETRY_AFTER_MAX_SECONDS = env.float("POLL_RETRY_AFTER_MAX_SECONDS", default=120)
POLL_PAUSE_BUDGET_SECONDS = env.float("POLL_PAUSE_BUDGET_SECONDS", default=240)

# /health answers 503 when service orders waited longer than this and no poll_invoices run reached
# invoice-mifact in that time (a dead cron); it is computed at most every HEALTH_CACHE_SECONDS.
HEALTH_POLL_MAX_AGE_MINUTES = env.int("HEALTH_POLL_MAX_AGE_MINUTES", default=15)
HEALTH_CACHE_SECONDS = env.int("HEALTH_CACHE_SECONDS", default=5)

# Run records of poll_invoices and sync_sv older than this many days are pruned by the commands.
COMMAND_RUNS_KEEP_DAYS = env.int("COMMAND_RUNS_KEEP_DAYS", default=30)
# Killed runs and lost connections (docs/operations.md "Monitoring", .env.example says what each is).
COMMAND_RUN_HEARTBEAT_SECONDS = env.float("COMMAND_RUN_HEARTBEAT_SECONDS", default=30.0)
COMMAND_RUN_STALE_SECONDS = env.int("COMMAND_RUN_STALE_SECONDS", default=300)
COMMAND_DB_RETRY_SECONDS = env.float("COMMAND_DB_RETRY_SECONDS", default=10.0)

# Idempotency-Key (crm/idempotency.py): a key's answer is replayed for this many hours; a key left
# in progress longer than IDEMPOTENCY_LOCK_SECONDS (beyond gunicorn's worker timeout, so its
# process is dead) is taken over by the next retry.
IDEMPOTENCY_KEY_HOURS = env.int("IDEMPOTENCY_KEY_HOURS", default=24)
IDEMPOTENCY_LOCK_SECONDS = env.int("IDEMPOTENCY_LOCK_SECONDS", default=180)

# --- Cron (django-crontab) --------------------------------------------------------------------
CRONJOBS = [
    ("*/5 * * * *", "crm.cron.command_for_cron", ["poll_invoices"]),
    ("*/5 * * * *", "crm.cron.command_for_cron", ["sync_sv"]),
    ("* * * * *", "crm.cron.command_for_cron", ["send_events"]),
    ("17 3 * * *", "crm.cron.command_for_cron", ["attachments_check"]),
    ("41 3 * * *", "crm.cron.command_for_cron", ["idempotency_keys_prune"]),
]
CRONTAB_LOCK_JOBS = True

"""The production settings with Django's psycopg connection pool instead of persistent
connections, for `bench/api.py --db-connections pool` only (bench/_db_modes.py)."""

from crm.settings import *  # noqa: F403

DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405  (the pool refuses persistent connections)
# Each connection handed out by the pool is checked first, as persistent ones are per request.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # noqa: F405
DATABASES["default"]["OPTIONS"]["pool"] = True  # noqa: F405  (psycopg_pool's defaults: 4 connections)

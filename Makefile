# Everything a fresh clone needs, with only python3 installed (README "Quick start").
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.requirements-installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
PYTEST_ARGS ?=
# What runs the unit suite: CI measures coverage with PYTEST_RUNNER="coverage run -m pytest" (.ci/run).
PYTEST_RUNNER ?= pytest

.PHONY: bootstrap run sample-day test test-browser e2e faults serve migrate demo bench lint clean

# requirements.txt is compiled from requirements.in with hashes (docs/development.md "Adding a dependency").
$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.txt
	touch $(STAMP)

.env:
	cp .env.example .env
	@echo "Created .env from .env.example (edit it for your setup)."

bootstrap: $(STAMP) .env

migrate: bootstrap
	$(BIN)/python manage.py migrate --noinput

## Serve the API for local development on http://$(HOST):$(PORT) with a demo user.
run: migrate
	$(BIN)/python manage.py create_demo_user
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

## A clinic day of sample data in the development database, and users to look at it (README "Sample data").
sample-day: migrate
	$(BIN)/python manage.py load_sample_day

## The whole test suite (SQLite by default; DATABASE_URL=postgres://... for PostgreSQL).
test: bootstrap
	$(BIN)/python -m $(PYTEST_RUNNER) $(PYTEST_ARGS)

## Black-box suite (e2e/, docs/development.md "Black-box suite"): gunicorn with production settings, the
## invoice-mifact and SV stand-ins and manage.py subprocesses, on a throw-away SQLite database;
## E2E_DATABASE_URL=postgres://user@host:5432/postgres runs it on a fresh database of that server.
## Hermetic (never reads .env). pytest-django and the unit suite's conftest.py stay out of it.
E2E_DATABASE_URL ?=
e2e: $(STAMP)
	E2E_DATABASE_URL="$(E2E_DATABASE_URL)" $(BIN)/python -m pytest e2e -p no:cacheprovider -p no:django \
		--confcutdir=e2e $(PYTEST_ARGS)

## Fault-injection suite (faults/, docs/development.md "Fault-injection suite"): the black-box stack on a
## fresh PostgreSQL database of FAULTS_DATABASE_URL's server; SIGKILL swept across a poll and a PUT,
## pg_terminate_backend, invoice-mifact and SV misbehaving. About 3 minutes; FAULTS_KILLS=N kills per sweep (20).
FAULTS_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres
faults: $(STAMP)
	E2E_DATABASE_URL="$(FAULTS_DATABASE_URL)" $(BIN)/python -m pytest faults -p no:cacheprovider -p no:django \
		--confcutdir=faults $(PYTEST_ARGS)

## Browser tests in headless Chromium (tests_browser/; Debian packages chromium, chromium-driver).
test-browser: bootstrap
	$(BIN)/python -m pytest tests_browser -m browser $(PYTEST_ARGS)

## Production: gunicorn on $(HOST):$(PORT) with settings from the environment or .env (see docs/operations.md
## "Deploying"). Does not create .env from the example (that one has DEBUG=true) and refuses DEBUG.
serve: $(STAMP)
	@$(BIN)/python -c "import os, sys, django; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'crm.settings'); django.setup(); from django.conf import settings; sys.exit('make serve: DEBUG is on; set DEBUG=false and SECRET_KEY in the environment or .env' if settings.DEBUG else 0)"
	$(BIN)/python manage.py check --deploy
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput
	# /metrics sums every worker's figures from files in PROMETHEUS_MULTIPROC_DIR (emptied at start).
	export PROMETHEUS_MULTIPROC_DIR="$${PROMETHEUS_MULTIPROC_DIR:-$${TMPDIR:-/tmp}/crm-metrics-$(PORT)}"; \
	rm -rf "$$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$$PROMETHEUS_MULTIPROC_DIR" && \
	exec $(BIN)/gunicorn crm.wsgi --config python:crm.gunicorn_conf --bind $(HOST):$(PORT) \
		--workers $${WEB_CONCURRENCY:-2} --timeout $${GUNICORN_TIMEOUT:-120} --access-logfile -

## End-to-end demo (README "Example session with curl") against the local invoice-mifact stand-in, on a
## throw-away SQLite database and media folder, free ports; leaves nothing behind. Hermetic: it
## neither reads nor needs .env.
demo: $(STAMP)
	$(BIN)/python scripts/demo.py

## Benchmarks (bench/, docs/development.md "Benchmarks"): poll_invoices against a slow invoice-mifact stand-in,
## and the API under gunicorn, on a throw-away PostgreSQL database on 127.0.0.1:5432. Prints
## figures and PASS/FAIL targets; fails only when a bench breaks. ~8 minutes. Options:
## make bench BENCH_ARGS="--skip-serial --duration 5 --skip-staff" (see bench/run_all.py --help).
BENCH_ARGS ?=
bench: $(STAMP)
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk) \
		|| echo "wrk could not be installed; bench/api.py uses its Python load generator"
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

## Lint, format, types and layers (docs/development.md "Checks"), from their own virtualenv .venv-ci
## (requirements-ci.txt): ruff check, ruff format --check, mypy (django-stubs, DRF stubs), import-linter.
CI_VENV  := .venv-ci
CI_STAMP := $(CI_VENV)/.requirements-installed
$(CI_STAMP): requirements.txt requirements-ci.txt
	test -x $(CI_VENV)/bin/python || $(PYTHON) -m venv $(CI_VENV)
	$(CI_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-ci.txt
	touch $(CI_STAMP)

lint: $(CI_STAMP)
	$(CI_VENV)/bin/ruff check .
	$(CI_VENV)/bin/ruff format --check .
	DEBUG=true ENV_FILE= $(CI_VENV)/bin/mypy
	$(CI_VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) $(CI_VENV) .pytest_cache

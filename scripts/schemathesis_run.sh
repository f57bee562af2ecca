#!/usr/bin/env bash
# Bounded schema-driven API testing: serve the API on a fresh SQLite database with one
# user, then run schemathesis against /api/schema/ with that user's bearer token.
#   checks: no 5xx, responses conform to the schema, status codes and content types documented.
# Phases: examples, coverage, fuzzing and stateful (ST_PHASES changes them): the stateful phase
# follows the schema's OpenAPI links from POST /opportunity's 201 to every operation that takes
# an opportunity id. At the end, the answers each operation got (from a HAR report) and the
# operations that never got a 2xx/3xx answer (without the stateful phase: the 8 that take an
# opportunity id; with it: the 2 that also need a comprobante, which the API cannot create).
# Outgoing traffic is impossible by configuration: no invoice-mifact or SV URL, and comprobante
# downloads restricted to an empty allow-list (refused before any DNS lookup).
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_EXAMPLES="${ST_MAX_EXAMPLES:-30}"
PHASES="${ST_PHASES:-examples,coverage,fuzzing,stateful}"
PY=.venv/bin/python
ST=.venv-ci/bin/schemathesis
if [ ! -x "$ST" ]; then
    python3 -m venv .venv-ci
    .venv-ci/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-ci.txt
fi

WORK="$(mktemp -d)"
PORT="$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export ENV_FILE="" DEBUG=false SECRET_KEY="schemathesis-$(date +%s%N)" ALLOWED_HOSTS=127.0.0.1 \
       SECURE_SSL_REDIRECT=false SECURE_HSTS_SECONDS=0 SESSION_COOKIE_SECURE=false CSRF_COOKIE_SECURE=false \
       DATABASE_URL="sqlite:///${WORK}/st.sqlite3" MEDIA_ROOT="${WORK}/media" \
       URL_INVOICE_MIFACT_V3="" URL_SV="" INVOICE_DOWNLOAD_ALLOWED_HOSTS="" \
       INVOICE_DOWNLOAD_ONLY_ALLOWED_HOSTS=true SIGNIN_THROTTLE_RATE=100000/min LOG_LEVEL=WARNING

SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

$PY manage.py migrate --noinput >/dev/null
DJANGO_SUPERUSER_PASSWORD=st-password-2026 $PY manage.py createsuperuser --noinput \
    --username st --email st@example.com >/dev/null
# The production server (gunicorn, 2 workers), as `make serve` runs it.
.venv/bin/gunicorn crm.wsgi --bind "127.0.0.1:${PORT}" --workers 1 --timeout 60 \
    --access-logfile - >"${WORK}/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 50); do
    curl -fsS "http://127.0.0.1:${PORT}/health" >/dev/null 2>&1 && break
    sleep 0.2
done
TOKEN="$(curl -fsS -X POST "http://127.0.0.1:${PORT}/auth/signin" -H 'Content-Type: application/json' \
    -d '{"username":"st","password":"st-password-2026"}' | $PY -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"
# One opportunity so that the id-taking operations also reach their 200 answers.
OPP_ID="$(curl -fsS -X POST "http://127.0.0.1:${PORT}/opportunity" -H "Authorization: Bearer ${TOKEN}" \
    -H 'Content-Type: application/json' -d '{"name":"schemathesis"}' | $PY -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
curl -fsS "http://127.0.0.1:${PORT}/api/schema/" -H 'Accept: application/vnd.oai.openapi+json' >"${WORK}/st-schema.json"
echo "schemathesis: server on :${PORT}, opportunity ${OPP_ID}, ${MAX_EXAMPLES} examples per operation"

# One schemathesis worker: with two, hypothesis' ast.parse in threads hit a CPython 3.11
# SystemError ("AST constructor recursion depth mismatch") inside the tool itself. Concurrent
# writes are covered by opportunities/tests/test_sqlite_concurrency.py.
status=0
$ST run "http://127.0.0.1:${PORT}/api/schema/" \
    --header "Authorization: Bearer ${TOKEN}" \
    --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
    --max-examples "$MAX_EXAMPLES" --seed "${ST_SEED:-20261129}" --workers 1 \
    --request-timeout 20 --generation-database none --no-color \
    --phases "$PHASES" --report har --report-har-path "${WORK}/run.har" || status=$?
$PY scripts/schemathesis_summary.py "${WORK}/st-schema.json" "${WORK}/run.har" || true
if [ "$status" -ne 0 ]; then
    echo "--- server log (errors)"; grep -v '^127\.0\.0\.1 - ' "${WORK}/server.log" | grep -v "WARNING django.request" | tail -n 80
fi
exit "$status"

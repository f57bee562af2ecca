"""`Idempotency-Key` on the API's writes (docs/api.md "Safe retries"), after the IETF httpapi draft
"The Idempotency-Key HTTP Header Field".

A client that sends a write with `Idempotency-Key: <key>` and retries it with the same key and
the same body gets the first answer (status, body, `ETag`) with `Idempotent-Replayed: true`, and
the work is done once. Keys are per user and kept in the database (`crm.models.IdempotencyKey`),
so they hold across app servers, for `IDEMPOTENCY_KEY_HOURS`.

- The INSERT of the key (state *in progress*, its own short transaction) is the lock: a second
  request with the key while the first is in progress hits the unique constraint and answers
  409 (`Retry-After`), on SQLite and PostgreSQL alike.
- The same key with another method, path or body (SHA-256 of the canonical JSON) answers 422.
- The answer is stored when the work was done (2xx). A refusal (4xx: nothing was changed) or a
  failure (5xx) is not: the key is freed, and a retry, with the same body or a corrected one, is
  handled as a new request.
- With `atomic=True` the answer is stored in the same transaction as the work, so a process
  killed in between leaves neither. Without it (the process update, whose downloads and checks
  at invoice-mifact run outside any transaction) a killed process leaves the key in progress;
  after `IDEMPOTENCY_LOCK_SECONDS` (longer than any request may run) the next retry takes it
  over and does the work again, which the process update allows: it is idempotent by content.
- `manage.py idempotency_keys_prune` (daily, cron) deletes expired keys; an expired key that is
  sent again starts afresh.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.errors import Conflict, InvalidRequest, Unprocessable
from crm.models import IdempotencyKey

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# The answer's headers kept with it and replayed (the version tag of what the write left).
KEPT_HEADERS = ("ETag", "Location")
KEY_MAX_LENGTH = 255
# Visible ASCII (RFC 9110 VCHAR), as a bare token or the draft's quoted sf-string.
_KEY_RE = re.compile(rf'"?([\x21\x23-\x7e]{{1,{KEY_MAX_LENGTH}}})"?')

KEY_INVALID_MESSAGE = (
    f"La cabecera {HEADER} no es válida: use de 1 a {KEY_MAX_LENGTH} caracteres ASCII visibles (p. ej. un UUID)"
)
KEY_IN_PROGRESS_MESSAGE = (
    f"Otra solicitud con la misma {HEADER} se está procesando; reintente en unos segundos para obtener su respuesta"
)
KEY_REUSED_MESSAGE = (
    f"La {HEADER} ya se usó con otra solicitud (otro cuerpo, método o ruta); use una clave nueva para cada solicitud"
)

Handler = TypeVar("Handler", bound=Callable[..., Response])


def idempotency_key_parse(value: str | None) -> str | None:
    """The key of an `Idempotency-Key` header value (quotes of the sf-string form removed), or
    None when the header is absent. Raises `InvalidRequest` (400) for an empty, too long or
    non-printable key."""
    if value is None:
        return None
    match = _KEY_RE.fullmatch(value.strip())
    if match is None or (value.strip().startswith('"') != value.strip().endswith('"')):
        raise InvalidRequest(KEY_INVALID_MESSAGE, errors={HEADER: [KEY_INVALID_MESSAGE]})
    return match.group(1)


def request_fingerprint(*, method: str, path: str, body: bytes) -> str:
    """SHA-256 (hex) of the request: method, path (without a trailing slash, as the API serves
    both) and body, as canonical JSON when it is JSON (key order and spacing do not count),
    else its bytes."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.rstrip("/").encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def idempotency_key_claim(
    *, user_id: int, key: str, method: str, path: str, fingerprint: str
) -> tuple[IdempotencyKey, bool]:
    """Take `key` for this request: `(record, True)` when this request must do the work (a new
    key, an expired one, or one a killed process left in progress), `(record, False)` when the
    key is done and its answer is to be replayed.

    Raises `Unprocessable` (422) when the key named another request, `Conflict` (409) while
    another request with it is in progress.
    """
    path = path.rstrip("/")[: IdempotencyKey._meta.get_field("path").max_length]  # the fingerprint has it whole
    for _ in range(3):
        now = timezone.now()
        try:
            with transaction.atomic():
                record = IdempotencyKey.objects.create(
                    user_id=user_id, key=key, method=method, path=path, fingerprint=fingerprint, locked_at=now
                )
            return record, True
        except IntegrityError:
            pass
        found = IdempotencyKey.objects.filter(user_id=user_id, key=key).first()
        if found is None:  # freed (a 5xx) or pruned meanwhile
            continue
        record = found
        if record.created_at <= now - timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS):
            IdempotencyKey.objects.filter(pk=record.pk, created_at=record.created_at).delete()
            continue
        if (record.method, record.path, record.fingerprint) != (method, path, fingerprint):
            raise Unprocessable(KEY_REUSED_MESSAGE, errors={HEADER: [KEY_REUSED_MESSAGE]})
        if record.state == IdempotencyKey.State.DONE:
            return record, False
        if record.locked_at > now - timedelta(seconds=settings.IDEMPOTENCY_LOCK_SECONDS):
            raise Conflict(KEY_IN_PROGRESS_MESSAGE, headers={"Retry-After": "1"})
        # Left in progress by a process that was killed: one retry takes it over (the
        # conditional UPDATE is the claim) and does the work again.
        taken = IdempotencyKey.objects.filter(
            pk=record.pk, state=IdempotencyKey.State.IN_PROGRESS, locked_at=record.locked_at
        ).update(locked_at=now)
        if taken:
            logger.warning("Idempotency key %s taken over from a request that never finished", record.pk)
            record.locked_at = now
            return record, True
    raise Conflict(KEY_IN_PROGRESS_MESSAGE, headers={"Retry-After": "1"})


def idempotency_key_finish(*, record: IdempotencyKey, response: Response) -> None:
    """Store `response` (status, body, `KEPT_HEADERS`) as the key's answer. Only while this
    request still holds the key (`locked_at`): a request taken over keeps the newer answer."""
    IdempotencyKey.objects.filter(pk=record.pk, locked_at=record.locked_at).update(
        state=IdempotencyKey.State.DONE,
        status_code=response.status_code,
        response_body=response.data,
        response_headers={name: response[name] for name in KEPT_HEADERS if response.has_header(name)},
    )


def idempotency_key_release(*, record: IdempotencyKey) -> None:
    """Free the key after a refusal or a failure, so that a retry is a new request. Best effort: when the database
    itself failed, the key stays in progress and is taken over after `IDEMPOTENCY_LOCK_SECONDS`."""
    try:
        IdempotencyKey.objects.filter(
            pk=record.pk, state=IdempotencyKey.State.IN_PROGRESS, locked_at=record.locked_at
        ).delete()
    except DatabaseError:
        logger.warning("Idempotency key %s could not be freed; it is taken over when its lock expires", record.pk)


def idempotency_replay(record: IdempotencyKey) -> Response:
    """The stored answer of a done key, marked `Idempotent-Replayed: true`."""
    headers = {**record.response_headers, REPLAYED_HEADER: "true"}
    return Response(record.response_body, status=record.status_code, headers=headers)


def idempotency_keys_prune(*, now: Any = None) -> int:
    """Delete the keys older than `IDEMPOTENCY_KEY_HOURS` (done or abandoned); returns how many."""
    cutoff = (now or timezone.now()) - timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lte=cutoff).delete()
    return deleted


def _done(response: Response) -> bool:
    return 200 <= response.status_code < 300


def idempotent(*, atomic: bool) -> Callable[[Handler], Handler]:
    """Decorate an `APIView` write handler with `Idempotency-Key` (module docstring). Without the
    header the handler runs as before. `atomic=True` runs the handler and stores its answer in
    one transaction (for handlers whose work is one short transaction, such as a create)."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def wrapper(view: APIView, request: Request, *args: Any, **kwargs: Any) -> Response:
            key = idempotency_key_parse(request.headers.get(HEADER))
            if key is None:
                return handler(view, request, *args, **kwargs)
            record, owned = idempotency_key_claim(
                user_id=request.user.pk or 0,  # the views need a signed-in user
                key=key,
                method=request.method or "",
                path=request.path,
                fingerprint=request_fingerprint(method=request.method or "", path=request.path, body=request.body),
            )
            if not owned:
                return idempotency_replay(record)
            stored = False
            try:
                if atomic:
                    with transaction.atomic():
                        response = handler(view, request, *args, **kwargs)
                        if _done(response):
                            idempotency_key_finish(record=record, response=response)
                            stored = True
                else:
                    response = handler(view, request, *args, **kwargs)
            except Exception as exc:
                # The API's error answer for it, as the view would give it; the key is freed below.
                try:
                    response = view.handle_exception(exc)
                except BaseException:
                    idempotency_key_release(record=record)
                    raise
            if stored:
                return response
            if _done(response):
                idempotency_key_finish(record=record, response=response)
            else:
                idempotency_key_release(record=record)
            return response

        return wrapper  # type: ignore[return-value]

    return decorate

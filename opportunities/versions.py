"""Versions of an opportunity and their ETags (docs/api.md "Safe retries").

`Opportunity.version` counts the units of work done on the opportunity: every one writes its
history records through `HistoryLog.flush`, which bumps the version in the same transaction
(`UPDATE ... SET version = version + 1 ... RETURNING version`: the row lock that UPDATE takes
orders concurrent writers, so each gets its own number, never a lost increment) and stamps the
records with it. So the version changes with every change of the opportunity's fields, stage,
sub-state, meetings, attachments and service orders, and the records newer than a client's
version say what changed since it read the opportunity.

The ETag is the version as a strong entity tag (`"7"`). `If-Match` (the process update) is
compared strongly under the opportunity's row lock, in the transaction that writes, so a check
and its write cannot be split by another writer; `If-None-Match` (the GET) weakly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from crm.errors import InvalidRequest, PreconditionFailed

from .models import ActionHistory, Opportunity

IF_MATCH_INVALID_MESSAGE = (
    'La cabecera If-Match no es válida: envíe el ETag de la oportunidad tal como lo recibió (p. ej. "7") o *'
)
CHANGED_MESSAGE = (
    "La oportunidad cambió desde la versión que envió en If-Match; vuelva a leerla (GET) y reintente con su ETag actual"
)
# How many history records a 412 names at most (the newest are the ones a client acts on).
CHANGES_LISTED = 50

_ENTITY_TAG = re.compile(r'\s*(W/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*')

# The sections of the opportunity each history action changes (besides the fields an
# `opportunity_updated` record names): the keys of a 412's `errors`.
_ACTION_SECTIONS: dict[str, tuple[str, ...]] = {
    ActionHistory.Action.MEETING_CREATED: ("meetings",),
    ActionHistory.Action.MEETING_UPDATED: ("meetings",),
    ActionHistory.Action.CLOSED_WON: ("stage", "cFacturacionSubEstado", "isPresaved"),
    ActionHistory.Action.INVOICE_ATTACHED: ("attachments",),
    ActionHistory.Action.SERVICE_ORDERS_REGISTERED: ("serviceOrders",),
    ActionHistory.Action.SERVICE_ORDER_INVOICED: (
        "serviceOrders",
        "attachments",
        "cFacturacionSubEstado",
        "isPresaved",
    ),
    ActionHistory.Action.SERVICE_ORDER_INVOICE_REPLACED: ("serviceOrders", "attachments"),
    ActionHistory.Action.SERVICE_ORDER_INVOICE_VOIDED: (
        "serviceOrders",
        "attachments",
        "cFacturacionSubEstado",
        "isPresaved",
    ),
}


def opportunity_version_bump(*, opportunity: Opportunity) -> int:
    """Add one to the opportunity's version (one query; inside the caller's transaction, whose
    end releases the row lock it takes) and return the new one, also set on `opportunity`."""
    table = connection.ops.quote_name(Opportunity._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET version = version + 1 WHERE id = %s RETURNING version", [opportunity.pk])
        (version,) = cursor.fetchone()
    opportunity.version = version
    return int(version)


def opportunity_etag(opportunity: Opportunity) -> str:
    """The opportunity's strong ETag: its version, quoted."""
    return f'"{opportunity.version}"'


@dataclass(frozen=True)
class IfMatch:
    """A parsed `If-Match`: `*`, or the entity tags listed (`strong`: the versions of the strong
    tags of this API's form; `newest`: the highest version named, weak tags included, from which a
    412 tells what changed)."""

    any: bool
    strong: frozenset[int]
    newest: int | None

    def matches(self, version: int) -> bool:
        return self.any or version in self.strong


def _entity_tags(value: str) -> list[tuple[bool, str]] | None:
    tags: list[tuple[bool, str]] = []
    for part in value.split(","):
        match = _ENTITY_TAG.fullmatch(part)
        if match is None:
            return None
        tags.append((match.group(1) is not None, match.group(2)))
    return tags


def if_match_parse(value: str | None) -> IfMatch | None:
    """The `If-Match` header (None when absent). Raises `InvalidRequest` (400) when it is not `*`
    nor a list of entity tags. Tags of another form never match (the opportunity changed, or the
    tag is not one of its ETags)."""
    if value is None:
        return None
    if value.strip() == "*":
        return IfMatch(any=True, strong=frozenset(), newest=None)
    tags = _entity_tags(value)
    if tags is None:
        raise InvalidRequest(IF_MATCH_INVALID_MESSAGE, errors={"If-Match": [IF_MATCH_INVALID_MESSAGE]})
    versions = [(weak, int(tag)) for weak, tag in tags if tag.isdigit() and len(tag) < 10]
    return IfMatch(
        any=False,
        strong=frozenset(version for weak, version in versions if not weak),
        newest=max((version for _, version in versions), default=None),
    )


def if_none_match_matches(value: str | None, opportunity: Opportunity) -> bool:
    """Whether `If-None-Match` names the opportunity's current version (weak comparison; `*`
    matches). A malformed header matches nothing: the client gets the full answer."""
    if value is None:
        return False
    if value.strip() == "*":
        return True
    tags = _entity_tags(value) or []
    return str(opportunity.version) in {tag for _, tag in tags}


def _sections(record: ActionHistory) -> Iterable[str]:
    if record.action == ActionHistory.Action.OPPORTUNITY_UPDATED:
        yield from (record.data or {}).get("changes", {})
    yield from _ACTION_SECTIONS.get(record.action, ())
    if record.action == ActionHistory.Action.CLOSED_WON and (record.data or {}).get("attachmentIds"):
        yield "attachments"


def opportunity_changes_since(*, opportunity: Opportunity, version: int) -> dict[str, list[str]]:
    """What changed after `version`: `{field or section: [who and when, in Spanish]}` from the
    history records of later versions (at most `CHANGES_LISTED`, the newest)."""
    records = ActionHistory.objects.filter(opportunity=opportunity, opportunity_version__gt=version).order_by("-id")
    changes: dict[str, list[str]] = {}
    for record in reversed(records[:CHANGES_LISTED]):
        who = record.user_name or "el proceso de facturación"
        when = timezone.localtime(record.created_at).strftime("%Y-%m-%d %H:%M:%S")
        note = f"cambió en la versión {record.opportunity_version} ({record.get_action_display()}, {who}, {when})"
        for section in dict.fromkeys(_sections(record)):
            changes.setdefault(section, []).append(note)
    return changes


def opportunity_version_require(*, opportunity: Opportunity, if_match: IfMatch | None) -> None:
    """Raise `PreconditionFailed` (412, with the current `ETag` and what changed since the
    client's version) unless `if_match` is absent or matches. Call it with the opportunity's
    row locked, in the transaction that writes."""
    if if_match is None or if_match.matches(opportunity.version):
        return
    changes = {}
    if if_match.newest is not None:
        changes = opportunity_changes_since(opportunity=opportunity, version=if_match.newest)
    message = CHANGED_MESSAGE
    if changes:
        message += f" (cambió: {', '.join(changes)})"
    raise PreconditionFailed(message, errors=changes or None, headers={"ETag": opportunity_etag(opportunity)})

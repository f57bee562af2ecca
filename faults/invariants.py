"""What must hold after any fault (issue 17 B), read from the database and `MEDIA_ROOT` as an
operator would: each check returns the problems it found (empty: it holds). They look at the
opportunities the test created (`created_at >= scene.started_at`)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from faults.support import Scene

_MINE = "o.created_at >= %(since)s"


def _rows(scene: Scene, sql: str) -> list[dict[str, Any]]:
    with scene.stack.db() as conn:
        return conn.execute(sql, {"since": scene.started_at}).fetchall()  # type: ignore[arg-type]


def attachment_files(scene: Scene) -> list[str]:
    """Every attachment row has its file, with the row's size and SHA-256."""
    problems = []
    media: Path = scene.stack.media
    for row in _rows(
        scene,
        "SELECT a.id, a.opportunity_id, a.file, a.size, a.sha256 FROM opportunity_attachment a "
        f"JOIN opportunity o ON o.id = a.opportunity_id WHERE {_MINE} ORDER BY a.id",
    ):
        path = media / row["file"]
        if not path.is_file():
            problems.append(f"attachment {row['id']} ({row['opportunity_id']}): file {row['file']} is missing")
            continue
        data = path.read_bytes()
        if len(data) != row["size"] or hashlib.sha256(data).hexdigest() != row["sha256"]:
            problems.append(
                f"attachment {row['id']} ({row['opportunity_id']}): file {row['file']} has {len(data)} bytes "
                f"and another SHA-256 (row: {row['size']} bytes)"
            )
    return problems


def committed_closes(scene: Scene) -> list[str]:
    """Every close is complete or untouched: an O.S *facturado* has its comprobantes, its history
    record and an opportunity in *Cierre ganado* / factura_directa; a pending one has none of it;
    an opportunity with a direct invoice is closed with it."""
    problems = []
    for row in _rows(
        scene,
        "SELECT s.opportunity_id, s.service_order_id, s.facturado, s.url_soles, s.url_dolares, o.stage, "
        "o.c_facturacion_sub_estado AS sub_state, "
        "(SELECT array_agg(a.kind ORDER BY a.kind) FROM opportunity_attachment a WHERE a.opportunity_id = "
        " s.opportunity_id AND a.service_order_id = s.service_order_id AND a.status = 'vigente') AS kinds, "
        "(SELECT count(*) FROM opportunity_action_history h WHERE h.opportunity_id = s.opportunity_id AND "
        " h.action = 'service_order_invoiced' AND h.data->>'serviceOrderId' = s.service_order_id::text) AS records "
        f"FROM opportunity_service_order s JOIN opportunity o ON o.id = s.opportunity_id WHERE {_MINE}",
    ):
        what = f"O.S {row['service_order_id']} ({row['opportunity_id']})"
        kinds = row["kinds"] or []
        if row["facturado"]:
            wanted = sorted(
                kind
                for kind, url in (("comprobante_dolares", row["url_dolares"]), ("comprobante_soles", row["url_soles"]))
                if url
            )
            if kinds != wanted:
                problems.append(f"{what} is facturado with comprobantes {kinds}, expected {wanted}")
            if row["records"] != 1:
                problems.append(f"{what} is facturado with {row['records']} service_order_invoiced records")
            if (row["stage"], row["sub_state"]) != ("Cierre ganado", "factura_directa"):
                problems.append(f"{what} is facturado but the opportunity is {row['stage']} / {row['sub_state']}")
        elif kinds or row["records"]:
            problems.append(f"{what} is pending but has comprobantes {kinds} and {row['records']} invoiced records")
    for row in _rows(
        scene,
        "SELECT o.id, o.stage, o.c_facturacion_sub_estado AS sub_state, "
        "(SELECT count(*) FROM opportunity_action_history h WHERE h.opportunity_id = o.id "
        " AND h.action = 'closed_won') AS closes FROM opportunity o "
        f"WHERE {_MINE} AND EXISTS (SELECT 1 FROM opportunity_attachment a WHERE a.opportunity_id = o.id "
        " AND a.service_order_id IS NULL)",
    ):
        if (row["stage"], row["sub_state"], row["closes"]) != ("Cierre ganado", "factura_directa", 1):
            problems.append(
                f"{row['id']} has a direct invoice but is {row['stage']} / {row['sub_state']} "
                f"with {row['closes']} closed_won records"
            )
    return problems


def nothing_duplicated(scene: Scene) -> list[str]:
    """No O.S, attachment, history record or SV delivery twice."""
    checks = {
        "O.S": "SELECT s.opportunity_id AS opp, s.service_order_id::text AS key, count(*) AS n "
        "FROM opportunity_service_order s JOIN opportunity o ON o.id = s.opportunity_id "
        f"WHERE {_MINE} GROUP BY 1, 2",
        "valid attachment": "SELECT a.opportunity_id AS opp, concat(a.service_order_id, ' ', a.kind) AS key, "
        "count(*) AS n FROM opportunity_attachment a JOIN opportunity o ON o.id = a.opportunity_id "
        f"WHERE {_MINE} AND a.status = 'vigente' GROUP BY 1, 2",
        "history record": "SELECT h.opportunity_id AS opp, concat(h.action, ' ', coalesce(h.data->>'serviceOrderId', "
        "h.data->>'reservationId')) AS key, count(*) AS n FROM opportunity_action_history h "
        f"JOIN opportunity o ON o.id = h.opportunity_id WHERE {_MINE} AND h.action IN "
        "('closed_won', 'meeting_created', 'service_order_invoiced', 'service_orders_registered') GROUP BY 1, 2",
        "SV delivery": "SELECT d.opportunity_id AS opp, concat(d.reservation_id, ' ', d.clinic_history) AS key, "
        "count(*) AS n FROM opportunity_sv_delivery d JOIN opportunity o ON o.id = d.opportunity_id "
        f"WHERE {_MINE} AND d.status <> 'superseded' GROUP BY 1, 2",
    }
    problems = []
    for what, sql in checks.items():
        for row in _rows(scene, sql):
            if row["n"] > 1:
                problems.append(f"{row['opp']}: {what} {row['key']} {row['n']} times")
    return problems


def no_temporary_files(scene: Scene) -> list[str]:
    """Nothing left in the test's TMPDIR nor in INVOICE_DOWNLOAD_DIR."""
    left = sorted(str(p.relative_to(scene.folder)) for d in (scene.tmp, scene.downloads) for p in d.rglob("*"))
    return [f"{len(left)} files left behind: {', '.join(left[:12])}{' ...' if len(left) > 12 else ''}"] if left else []


def no_stale_runs(scene: Scene) -> list[str]:
    """No run record of a command is left `running` once every process has ended."""
    rows = _rows(
        scene,
        "SELECT command, count(*) AS n FROM crm_commandrun WHERE outcome = 'running' "
        "AND started_at >= %(since)s GROUP BY command",
    )
    return [f"{row['n']} {row['command']} run records still 'running'" for row in rows]


def sv_newest(scene: Scene) -> list[str]:
    """SV holds the newest clinic history of every reservation the test sent."""
    problems = []
    for row in _rows(
        scene,
        "SELECT o.id, o.reservation_id, o.c_clinic_history FROM opportunity o "
        f"WHERE {_MINE} AND o.reservation_id IS NOT NULL AND o.c_clinic_history <> ''",
    ):
        held = scene.stack.sv.applied(row["reservation_id"])
        if held != row["c_clinic_history"]:
            problems.append(
                f"{row['id']}: SV holds {held!r} for reservation {row['reservation_id']}, "
                f"the CRM's newest is {row['c_clinic_history']!r}"
            )
    return problems


def all_problems(scene: Scene, *, sv: bool = False) -> list[str]:
    """Every invariant above (SV's value only with `sv`: after the outbox was drained)."""
    checks = [attachment_files, committed_closes, nothing_duplicated, no_temporary_files, no_stale_runs]
    if sv:
        checks.append(sv_newest)
    return [f"{check.__name__}: {problem}" for check in checks for problem in check(scene)]


def close_state(scene: Scene, opportunity_id: str) -> str:
    """How a kill left one opportunity's close: `untouched`, `complete`, or `missing files` (rows
    committed without their files: defect 1)."""
    rows = scene.stack.query(
        "SELECT a.file, a.sha256 FROM opportunity_attachment a WHERE a.opportunity_id = %s", opportunity_id
    )
    if not rows:
        return "untouched"
    for row in rows:
        path = scene.stack.media / row["file"]
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != row["sha256"]:
            return "missing files"
    return "complete"

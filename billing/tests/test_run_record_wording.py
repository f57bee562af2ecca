"""The run records' counts read in Spanish (jobs/admin.py): every count a command records has a
label, so no English key (`followed_up`, `replaced`, `voided`) reaches staff."""

from __future__ import annotations

from billing.services.poll import PollSummary
from jobs.admin import COUNT_LABELS, counts_text
from opportunities.sv_outbox import SvSyncSummary


def test_every_count_of_every_command_has_a_spanish_label() -> None:
    for summary in (PollSummary, SvSyncSummary):
        assert set(summary.COUNTS) <= set(COUNT_LABELS), summary.command


def test_a_follow_up_run_reads_in_spanish() -> None:
    text = counts_text({"followed_up": 3, "replaced": 1, "voided": 1, "pending": 0})
    assert text == "pendientes 0, facturadas revisadas de nuevo 3, comprobantes reemitidos 1, comprobantes anulados 1"
    assert not any(key in text for key in ("followed_up", "replaced", "voided"))

"""The counts of one poll run (`manage.py poll_invoices`): its run record and its summary line
(docs/api.md "Service orders and the poller")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from jobs.models import CommandRun
from jobs.summary import RunSummary


@dataclass
class PollSummary(RunSummary):
    """Counts of one poll run. `pending`: O.S of the round (pending when the run started, not
    checked since; at most `limit`); `checked`: those invoice-mifact answered about; `invoiced`: completed in this run;
    `errors`: rows that got an error recorded; `left`: O.S of the round this run got no answer
    for (invoice-mifact failed, the run stopped early, or another run or a PUT had them);
    `fatal`: why invoice-mifact could not be used (not configured, credentials refused,
    unreachable) when that left O.S unchecked, or "". Follow-up checks of invoiced O.S, after the
    pending ones: `followed_up` answered, of which `replaced` (reissued) and `voided`. The backoff
    (billing/backoff.py): `deferred` O.S refused with a 4xx in this run (left alone for a while),
    `pauses` made on a 429 or a 503 with Retry-After, and `paused_seconds` (rounded up) in all.
    """

    command: ClassVar[str] = "poll_invoices"
    COUNTS: ClassVar[tuple[str, ...]] = tuple(
        "pending checked invoiced errors left followed_up replaced voided deferred pauses paused_seconds".split()
    )

    pending: int = 0
    checked: int = 0
    invoiced: int = 0
    errors: int = 0
    left: int = 0
    followed_up: int = 0
    replaced: int = 0
    voided: int = 0
    deferred: int = 0
    pauses: int = 0
    paused_seconds: int = 0

    @property
    def outcome(self) -> str:
        """`failed` when O.S were pending and none could be checked, `partial` when some were left
        or got an error, else `ok` (`jobs.models.CommandRun.Outcome`). A run that lost the database
        is `failed` whatever it did before."""
        if self.database_lost or (self.fatal and self.pending and not self.checked):
            return CommandRun.Outcome.FAILED
        if self.left or self.errors:
            return CommandRun.Outcome.PARTIAL
        return CommandRun.Outcome.OK

"""What one run of a periodic command did, in the shape every command reports it: the counts its
run record keeps, one summary line for the cron log, and the run's outcome."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass
class RunSummary:
    """Base of the commands' summaries: a subclass names its `command` and its `COUNTS` (integer
    fields, in the order the line prints them). `fatal`: why the run could not do its work, or "";
    `database_lost`: the database connection was lost, so the run stopped (`fatal` says so)."""

    command: ClassVar[str]
    COUNTS: ClassVar[tuple[str, ...]]

    seconds: float = 0.0
    fatal: str = ""
    database_lost: bool = False

    @property
    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.COUNTS}

    @property
    def outcome(self) -> str:
        """The run's `CommandRun.Outcome`, decided by each command."""
        raise NotImplementedError

    @property
    def line(self) -> str:
        figures = " ".join(f"{name}={value}" for name, value in self.counts.items())
        text = f"{self.command}: {figures} seconds={self.seconds:.2f}"
        return f"{text} fatal={self.fatal!r}" if self.fatal else text

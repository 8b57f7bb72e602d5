"""Every stage attempt gets an outcome, decided by what happened next (DESIGN.md 15).

An attempt of a stage starts with its first model call and ends when:

- the stage spends a retry (`StageLLM.retry`: an invalid answer, failed edits,
  failing tests sent back to build, a blocking review finding, a validation
  failure): the attempt **failed**, with the retry's reason;
- the stage finishes (`done`): the attempt **succeeded** (build and plan: once the
  run ships, since later stages may still send the work back);
- the run stops inside the stage (a failure, a budget stop, Ctrl-C): it failed.

So build's outcome is whether the tests (then validate and review) accepted that
attempt's edits; plan's is the plan validator and the run going on to build;
the structured stages' is a valid answer first time. The row carries what the
attempt cost (the ledger's rows of the stage since the attempt began), so
`policy stats` can price a success including the failures before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from anvil.ledger.db import to_pico, utc_now_iso

if TYPE_CHECKING:
    from anvil.ledger.db import Ledger, Spend


# Their work is accepted only later: build's edits by test, validate and review; the plan by the
# run reaching ship without a re-plan. A retry on the way (a loop back) fails their open attempt.
JUDGED_AT_THE_END = frozenset({"build", "plan"})


@dataclass
class _Open:
    attempt: int
    start: Spend


class OutcomeLog:
    """Opens and closes one run's stage attempts and writes their outcome rows to the ledger."""

    def __init__(self, ledger: Ledger | None, run_id: str, *, repo: str = "", task: str = "",
                 demo: bool = False) -> None:
        self.ledger = ledger
        self.run_id = run_id
        self.repo = repo
        self.task = task
        self.demo = demo
        self._open: dict[str, _Open] = {}

    def begin(self, stage: str) -> None:
        """Before a model call of `stage`: opens an attempt unless one is open."""
        if self.ledger is None or stage in self._open:
            return
        done = self.ledger.conn.execute(
            "SELECT COALESCE(MAX(attempt), 0) FROM outcomes WHERE run_id = ? AND stage = ?",
            (self.run_id, stage)).fetchone()[0]
        self._open[stage] = _Open(int(done) + 1, self.ledger.spend(self.run_id, stage))

    def close(self, stage: str, *, model: str | None, success: bool, reason: str = "") -> None:
        """The open attempt of `stage` ended (no-op when none is open: no call was made)."""
        opened = self._open.pop(stage, None)
        if self.ledger is None or opened is None or not model:
            return
        now = self.ledger.spend(self.run_id, stage)
        pico = to_pico(now.dollars - opened.start.dollars) or 0
        self.ledger.record_outcome((utc_now_iso(), self.run_id, self.repo, stage, opened.attempt, model, int(success),
                                    reason[:500], pico, now.unpriced - opened.start.unpriced,
                                    now.tokens - opened.start.tokens, self.task, int(self.demo)))

    def stage_done(self, stage: str, model: str | None) -> None:
        """A stage finished. Build and plan are judged later: by the stages after them, when the run ends."""
        if stage not in JUDGED_AT_THE_END:
            self.close(stage, model=model, success=True)

    def close_all(self, models: dict[str, str | None], *, success: bool, reason: str = "") -> None:
        """The run ended: every open attempt succeeded (it shipped) or failed (it stopped)."""
        for stage in list(self._open):
            self.close(stage, model=models.get(stage), success=success, reason=reason)

"""The live table on stderr while a bench runs: per policy, tasks done, resolved, dollars; and an ETA.

On a terminal it redraws in place (rich Live); piped, it prints one line per finished task,
so a CI log reads as a record."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TextIO

from anvil.bench.results import ResultRow


class BenchProgress:
    def __init__(self, stream: TextIO, total: int, *, already: list[ResultRow] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.total = total  # pairs to run in this process
        self.clock = clock
        self.start = clock()
        self.rows: list[ResultRow] = list(already or [])
        self.finished = 0
        self.live: Any = None
        if stream.isatty():
            from rich.console import Console
            from rich.live import Live

            self.live = Live(self._table(), console=Console(file=stream), refresh_per_second=2, transient=False)
            self.live.start()

    def eta(self) -> float | None:
        if not self.finished:
            return None
        elapsed = self.clock() - self.start
        return elapsed / self.finished * (self.total - self.finished)

    def _totals(self) -> tuple[int, int, Decimal]:
        done = [r for r in self.rows if r.done]
        return len(done), sum(r.resolved for r in done), sum((Decimal(r.dollars or "0") for r in self.rows),
                                                             Decimal(0))

    def _eta_text(self) -> str:
        eta = self.eta()
        return "?" if eta is None else f"{int(eta // 60)}:{int(eta % 60):02d}"

    def _table(self) -> Any:
        from rich.table import Table

        t = Table(title=f"anvil bench: {self.finished}/{self.total} run, ETA {self._eta_text()}")
        for col in ("policy", "done", "resolved", "errors", "$"):
            t.add_column(col, justify="left" if col == "policy" else "right")
        policies: dict[str, list[ResultRow]] = {}
        for r in self.rows:
            policies.setdefault(r.policy, []).append(r)
        for name, rows in policies.items():
            done = [r for r in rows if r.done]
            dollars = sum((Decimal(r.dollars or "0") for r in rows), Decimal(0))
            t.add_row(name, str(len(done)), str(sum(r.resolved for r in done)),
                      str(len(rows) - len(done)), f"${dollars:.4f}")
        return t

    def update(self, row: ResultRow) -> None:
        self.rows.append(row)
        self.finished += 1
        if self.live is not None:
            self.live.update(self._table())
            return
        done, resolved, dollars = self._totals()
        what = row.status if row.status != "unresolved" else f"unresolved ({row.failure_stage})"
        print(f"[{self.finished}/{self.total}] {row.task} · {row.policy}: {what}, ${Decimal(row.dollars):.4f}, "
              f"{row.wall_s:.1f}s | done {done}, resolved {resolved}, ${dollars:.4f}, ETA {self._eta_text()}",
              file=self.stream, flush=True)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

"""OpenTelemetry GenAI export of runs (DESIGN.md 7, 18): a span per run, stage and model call.

Off unless the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`)
is set and the `otel` extra is installed (`pip install anvil-agent[otel]`).
The runner and the chain-walker talk to a `Telemetry`; without export it is
`NullTelemetry`, so nothing of OpenTelemetry is imported. Export never stops or
slows a run: spans are queued and sent by a background batch processor with a
short timeout, and the final flush is bounded.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from decimal import Decimal

    from anvil.ledger.db import AttemptRow
    from anvil.providers.types import StreamEvent, Usage
    from anvil.run.events import Progress

ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


class Telemetry(Protocol):
    def run_started(self, run_id: str, repo: str, resumed: bool) -> None: ...
    def run_finished(self, run_id: str, status: str) -> None: ...
    def stage_started(self, stage: str, label: str = "") -> None: ...
    def stage_finished(self, stage: str, status: str, summary: str = "") -> None: ...
    def model_call(self, row: AttemptRow, finish_reason: str | None) -> None: ...
    def close(self) -> None: ...


class NullTelemetry:
    """Export off: every hook does nothing."""

    def run_started(self, run_id: str, repo: str, resumed: bool) -> None: ...
    def run_finished(self, run_id: str, status: str) -> None: ...
    def stage_started(self, stage: str, label: str = "") -> None: ...
    def stage_finished(self, stage: str, status: str, summary: str = "") -> None: ...
    def model_call(self, row: AttemptRow, finish_reason: str | None) -> None: ...
    def close(self) -> None: ...


def enabled(env: Mapping[str, str]) -> bool:
    """The standard switches: an OTLP endpoint set, the SDK not disabled, the traces exporter not `none`."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() in ("none", ""):
        return False
    return any(env.get(v, "").strip() for v in ENDPOINT_VARS)


def from_env(env: Mapping[str, str] | None = None) -> Telemetry:
    """OTLP/HTTP export when configured (and installed), else `NullTelemetry`."""
    env = os.environ if env is None else env
    if not enabled(env):
        return NullTelemetry()
    try:
        from anvil.telemetry.otel import OtelTelemetry
    except ImportError:
        print("anvil: note: OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed; "
              "no spans are exported (pip install 'anvil-agent[otel]')", file=sys.stderr)
        return NullTelemetry()
    return OtelTelemetry.from_env()


class StageTee:
    """A run's `Progress` display that also tells telemetry where each stage starts and ends;
    every other call goes to the display unchanged."""

    def __init__(self, progress: Progress, telemetry: Telemetry) -> None:
        self._progress = progress
        self._telemetry = telemetry

    def stage_started(self, stage: str, label: str = "") -> None:
        self._telemetry.stage_started(stage, label)
        self._progress.stage_started(stage, label)

    def stage_finished(self, stage: str, status: str, summary: str = "") -> None:
        self._progress.stage_finished(stage, status, summary)
        self._telemetry.stage_finished(stage, status, summary)

    def call_started(self, stage: str, model: str, chain: list[str]) -> None:
        self._progress.call_started(stage, model, chain)

    def call_finished(self, stage: str, model: str, usage: Usage, dollars: Decimal | None) -> None:
        self._progress.call_finished(stage, model, usage, dollars)

    def stream(self, stage: str, event: StreamEvent) -> None:
        self._progress.stream(stage, event)

    def note(self, stage: str, text: str) -> None:
        self._progress.note(stage, text)

    def spend(self, total: Decimal | None) -> None:
        self._progress.spend(total)

    def prompt(self, question: str) -> str:
        return self._progress.prompt(question)

    def close(self) -> None:
        self._progress.close()

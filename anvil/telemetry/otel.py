"""`Telemetry` over the OpenTelemetry SDK: GenAI spans sent over OTLP/HTTP (imported only when enabled).

Spans are parented explicitly (run -> stage -> model call), not through the
ambient context, so a call made on another thread still lands under its stage.
A model call's span is written from its ledger row, so the two always agree:
its start is the row's time, its length the call's latency.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, set_span_in_context

from anvil import __version__
from anvil.ledger.db import AttemptRow, dec_text

EXPORT_TIMEOUT_S = 2.0  # one POST to the collector
FLUSH_BUDGET_S = 1.5  # what the end of a run may wait for the last spans
# gen_ai.system values of the semantic conventions, by provider kind
SYSTEMS = {"anthropic": "anthropic", "openai": "openai", "gemini": "gcp.gemini", "ollama": "ollama",
           "openrouter": "openrouter", "openai_compatible": "openai", "llamacpp": "llama.cpp",
           "bundled": "llama.cpp", "claude_cli": "anthropic", "codex_cli": "openai", "gemini_cli": "gcp.gemini"}


def _ns(ts: str) -> int:
    dt = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return int(dt.timestamp() * 1_000_000_000)


@dataclass
class _Open:
    span: Span
    dollars: Decimal = Decimal(0)
    unpriced: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    def add(self, row: AttemptRow) -> None:
        if row.dollars is not None:
            self.dollars += row.dollars
        elif row.cost_source == "unpriced":
            self.unpriced += 1
        self.input_tokens += row.input_tokens
        self.output_tokens += row.output_tokens

    def end(self, status: str) -> None:
        s = self.span
        s.set_attribute("anvil.status", status)
        s.set_attribute("anvil.cost.usd", float(self.dollars))
        s.set_attribute("anvil.cost.usd_exact", dec_text(self.dollars))
        s.set_attribute("anvil.cost.unpriced_calls", self.unpriced)
        s.set_attribute("gen_ai.usage.input_tokens", self.input_tokens)
        s.set_attribute("gen_ai.usage.output_tokens", self.output_tokens)
        if status in ("failed", "interrupted", "budget_stopped"):
            s.set_status(Status(StatusCode.ERROR, status))
        s.end()


@dataclass
class OtelTelemetry:
    provider: TracerProvider
    _run: _Open | None = None
    _run_id: str = ""
    _stages: dict[str, _Open] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_env(cls) -> OtelTelemetry:
        # endpoint, headers and certificates come from the standard OTEL_EXPORTER_OTLP_* variables
        return cls.with_exporter(OTLPSpanExporter(timeout=EXPORT_TIMEOUT_S))

    @classmethod
    def with_exporter(cls, exporter: SpanExporter) -> OtelTelemetry:
        # the exporter logs each failed POST; a collector being down is not the user's problem mid-run
        logging.getLogger("opentelemetry").setLevel(logging.CRITICAL)
        provider = TracerProvider(resource=Resource.create({"service.name": "anvil",
                                                            "service.version": __version__}),
                                  shutdown_on_exit=False)
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000,
                                                       export_timeout_millis=int(EXPORT_TIMEOUT_S * 1000),
                                                       max_queue_size=4096))
        return cls(provider)

    @property
    def _tracer(self) -> Any:
        return self.provider.get_tracer("anvil", __version__)

    # ------------------------------------------------------------ run

    def run_started(self, run_id: str, repo: str, resumed: bool) -> None:
        with self._lock:
            span = self._tracer.start_span("anvil run", kind=SpanKind.INTERNAL, attributes={
                "anvil.run.id": run_id, "anvil.repo": repo, "anvil.run.resumed": resumed})
            self._run, self._run_id, self._stages = _Open(span), run_id, {}

    def run_finished(self, run_id: str, status: str) -> None:
        with self._lock:
            for name, st in list(self._stages.items()):  # a stage cut short by the stop
                st.end("failed")
                del self._stages[name]
            if self._run is not None:
                self._run.end(status)
                self._run = None

    # ------------------------------------------------------------ stages (the progress hooks' shape)

    def stage_started(self, stage: str, label: str = "") -> None:
        with self._lock:
            ctx = set_span_in_context(self._run.span) if self._run is not None else None
            span = self._tracer.start_span(f"stage {stage}", context=ctx, kind=SpanKind.INTERNAL, attributes={
                "anvil.run.id": self._run_id, "anvil.stage": stage, **({"anvil.stage.label": label} if label else {})})
            self._stages[stage] = _Open(span)

    def stage_finished(self, stage: str, status: str, summary: str = "") -> None:
        with self._lock:
            st = self._stages.pop(stage, None)
            if st is not None:
                st.end(status)

    # ------------------------------------------------------------ model calls

    def model_call(self, row: AttemptRow, finish_reason: str | None) -> None:
        with self._lock:
            parent = self._stages.get(row.stage) or self._run
            for holder in {id(h): h for h in (self._stages.get(row.stage), self._run) if h is not None}.values():
                holder.add(row)
            start = _ns(row.ts)
            end = start + int((row.latency_s or 0.0) * 1_000_000_000)
            attrs: dict[str, Any] = {
                "gen_ai.operation.name": "chat",
                "gen_ai.system": SYSTEMS.get(row.provider_kind, row.provider_kind),
                "gen_ai.provider.name": SYSTEMS.get(row.provider_kind, row.provider_kind),
                "gen_ai.request.model": row.requested_model,
                "gen_ai.response.model": row.served_model or row.requested_model,
                "gen_ai.usage.input_tokens": row.input_tokens,
                "gen_ai.usage.output_tokens": row.output_tokens,
                "anvil.usage.cache_read_tokens": row.cache_read_tokens,
                "anvil.usage.cache_write_tokens": row.cache_write_tokens,
                "anvil.usage.reasoning_tokens": row.reasoning_tokens,
                "anvil.run.id": row.run_id, "anvil.stage": row.stage, "anvil.attempt": row.attempt,
                "anvil.chain_pos": row.chain_pos, "anvil.model": row.model, "anvil.provider": row.provider,
                "anvil.cost.source": row.cost_source,
            }
            if row.dollars is not None:
                attrs["anvil.cost.usd"] = float(row.dollars)
                attrs["anvil.cost.usd_exact"] = dec_text(row.dollars)
            if finish_reason:
                attrs["gen_ai.response.finish_reasons"] = [finish_reason]
            if row.request_id:
                attrs["gen_ai.response.id"] = row.request_id
            if row.outcome != "ok":
                attrs["error.type"] = row.error_kind or "error"
                if row.http_status:
                    attrs["http.response.status_code"] = row.http_status
            span = self._tracer.start_span(f"chat {row.requested_model}", kind=SpanKind.CLIENT, start_time=start,
                                           context=set_span_in_context(parent.span) if parent else None,
                                           attributes=attrs)
            if row.outcome != "ok":
                span.set_status(Status(StatusCode.ERROR, (row.error_message or row.error_kind or "")[:200]))
            span.end(end_time=max(end, start))

    # ------------------------------------------------------------ end

    def close(self) -> None:
        """Send what is queued, waiting at most FLUSH_BUDGET_S: a dead collector costs a run no more."""
        done = threading.Thread(target=self.provider.shutdown, name="anvil-otel-flush", daemon=True)
        done.start()
        done.join(FLUSH_BUDGET_S)

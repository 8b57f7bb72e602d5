"""OpenTelemetry GenAI export: a real `anvil run` (scripted vendor server) exporting over OTLP/HTTP to a
loopback receiver written here, which decodes the protobuf with opentelemetry-proto."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from anvil.demo.scripted_run import ScriptedPipeline, example_answers
from anvil.telemetry import NullTelemetry, enabled, from_env
from tests.e2e_helpers import start

pytest.importorskip("opentelemetry.sdk")
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

STAGES = ("clarify", "plan", "build", "test", "validate", "review", "ship")


class Receiver:
    """A minimal OTLP/HTTP traces endpoint on 127.0.0.1: POST /v1/traces, protobuf in and out."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                req = ExportTraceServiceRequest()
                req.ParseFromString(body)
                outer.paths.append(self.path)
                for rs in req.resource_spans:
                    service = {a.key: a.value.string_value for a in rs.resource.attributes}.get("service.name")
                    for ss in rs.scope_spans:
                        for span in ss.spans:
                            outer.spans.append((service, span))
                out = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def attrs(span: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in span.attributes:
        v = a.value
        kind = v.WhichOneof("value")
        out[a.key] = [x.string_value for x in v.array_value.values] if kind == "array_value" else getattr(v, kind)
    return out


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_export_is_off_unless_an_endpoint_is_configured() -> None:
    assert not enabled({})
    assert enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert enabled({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"})
    assert not enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "true"})
    assert not enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_TRACES_EXPORTER": "none"})
    assert isinstance(from_env({}), NullTelemetry)


@pytest.mark.e2e
def test_a_run_exports_run_stage_and_model_call_spans(tmp_path, receiver: Receiver) -> None:
    env = start(tmp_path, ScriptedPipeline(example_answers(failing_first_build=True)))
    try:
        env.env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.url
        env.init()
        run_id = env.run_ok()["run_id"]
        rows = env.ledger_rows(run_id)
    finally:
        env.server.stop()
    assert set(receiver.paths) == {"/v1/traces"}
    assert {svc for svc, _ in receiver.spans} == {"anvil"}
    spans = [s for _, s in receiver.spans]
    runs = [s for s in spans if s.name == "anvil run"]
    stages = [s for s in spans if s.name.startswith("stage ")]
    calls = [s for s in spans if s.name.startswith("chat ")]
    assert len(runs) == 1 and len(spans) == 1 + len(stages) + len(calls)
    run = runs[0]
    assert attrs(run)["anvil.run.id"] == run_id and attrs(run)["anvil.status"] == "done"
    assert {s.trace_id for s in spans} == {run.trace_id}
    # every stage ran (build and test twice: the first build fails its tests), each under the run
    assert {attrs(s)["anvil.stage"] for s in stages} == set(STAGES)
    assert all(s.parent_span_id == run.span_id for s in stages)
    # one span per ledger row, under the stage span it belongs to, with the same numbers
    assert len(calls) == len(rows)
    by_id = {s.span_id: s for s in stages}
    total = Decimal(0)
    for span, row in zip(sorted(calls, key=lambda s: s.start_time_unix_nano), rows, strict=True):
        a = attrs(span)
        assert attrs(by_id[span.parent_span_id])["anvil.stage"] == row["stage"] == a["anvil.stage"]
        assert a["gen_ai.operation.name"] == "chat"
        assert a["gen_ai.system"] == {"anthropic": "anthropic", "openai": "openai"}[row["provider_kind"]]
        assert a["gen_ai.request.model"] == row["requested_model"]
        assert a["gen_ai.response.model"] == (row["served_model"] or row["requested_model"])
        assert a["gen_ai.usage.input_tokens"] == row["input_tokens"] > 0
        assert a["gen_ai.usage.output_tokens"] == row["output_tokens"] > 0
        assert a["gen_ai.response.finish_reasons"] == ["stop"]
        assert Decimal(a["anvil.cost.usd_exact"]) == Decimal(row["dollars"])
        assert a["anvil.cost.usd"] == pytest.approx(float(row["dollars"]))
        assert span.end_time_unix_nano >= span.start_time_unix_nano
        total += Decimal(row["dollars"])
    assert Decimal(attrs(run)["anvil.cost.usd_exact"]) == total > 0


def _black_hole() -> socket.socket:
    """A port that accepts connections (into the backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


def test_a_collector_that_never_answers_costs_at_most_the_flush_budget(monkeypatch) -> None:
    from anvil.ledger.db import AttemptRow
    from anvil.telemetry.otel import EXPORT_TIMEOUT_S, FLUSH_BUDGET_S

    hole = _black_hole()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{hole.getsockname()[1]}")
        t = from_env()
        t.run_started("r1", "/repo", False)
        t.stage_started("plan")
        row = AttemptRow("2026-12-01T10:00:00.000000Z", "r1", "/repo", "plan", 1, 0, "p", "openai", "m", "m", None,
                         "ok", None, None, None, 10, 0, 0, 5, 0, 0.5, 0.1, Decimal("0.001"), "table", None, None)
        t0 = time.monotonic()
        for _ in range(50):
            t.model_call(row, "stop")
        t.stage_finished("plan", "done")
        t.run_finished("r1", "done")
        queued = time.monotonic() - t0
        t.close()
        closed = time.monotonic() - t0 - queued
    finally:
        hole.close()
    # spans are queued, never sent inline: one inline POST to this collector would wait out the
    # whole export timeout (bounds generous for a loaded machine)
    assert queued < EXPORT_TIMEOUT_S
    assert closed < FLUSH_BUDGET_S + 1.0


@pytest.mark.e2e
def test_a_run_with_a_dead_collector_still_succeeds(tmp_path) -> None:
    hole = _black_hole()
    env = start(tmp_path, ScriptedPipeline(example_answers()))
    try:
        env.env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{hole.getsockname()[1]}"
        env.init()
        t0 = time.monotonic()
        r = env.anvil("run", "add a search command", "--yes", "--json")
        elapsed = time.monotonic() - t0
    finally:
        env.server.stop()
        hole.close()
    assert r.code == 0, r.stderr
    assert "Traceback" not in r.stderr and "opentelemetry" not in r.stderr.lower()
    assert r.json()["status"] == "done"
    assert elapsed < 60

"""Adapter overhead for Gemini (SSE), Ollama (NDJSON) and the subscription CLIs.

    python benchmarks/providers_gemini_ollama_cli.py [--pieces 5000] [--runs 5] [--cli-runs 10]

- Gemini / Ollama: the real adapter against the scripted server over loopback, one
  answer streamed as PIECES deltas; prints the median wall time per call and the
  deltas per second the adapter folds (parsing + event callbacks + HTTP).
- CLI: `claude_cli` against a fake `claude` (a tiny Python script that prints the real
  result JSON); prints the median time per call, i.e. what anvil adds on top of the
  CLI's own run time (spawn, pipes, process group, JSON parsing) plus one Python start.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from anvil.providers import make_provider
from anvil.providers.scripted.model import ScriptedAnswer, ScriptedModel
from anvil.providers.scripted.server import Match, ScriptedServer
from anvil.providers.types import ChatRequest, Message, ProviderSettings

REQUEST = ChatRequest(model="bench-model", messages=(Message("user", "Say a lot."),), timeout=60)


def bench_http(kind: str, pieces: int, runs: int) -> tuple[float, float]:
    text = "word " * pieces  # text_pieces() turns this into `pieces` deltas
    with ScriptedServer() as srv:
        srv.add_responder(ScriptedModel([ScriptedAnswer(text=text, input_tokens=100, output_tokens=pieces)]),
                          match=Match())
        adapter = make_provider(ProviderSettings(name=kind, kind=kind, base_url=srv.url, api_key="k"))
        count = 0

        def on_event(_: object) -> None:
            nonlocal count
            count += 1

        times = []
        for _ in range(runs):
            start = time.perf_counter()
            result = adapter.chat(REQUEST, on_event)
            times.append(time.perf_counter() - start)
            assert result.text == text, "the answer did not round-trip"
    median = statistics.median(times)
    return median, pieces / median


def bench_cli(runs: int) -> float:
    payload = {"type": "result", "subtype": "success", "is_error": False, "result": "ok",
               "total_cost_usd": 0.001, "usage": {"input_tokens": 5, "output_tokens": 1}}
    with tempfile.TemporaryDirectory() as d:
        script = Path(d) / "claude"
        script.write_text(
            f"#!{sys.executable} -S\nimport sys\nsys.stdin.read()\nprint({json.dumps(json.dumps(payload))})\n"
        )
        script.chmod(0o755)
        adapter = make_provider(ProviderSettings(name="claude", kind="claude_cli", options={"binary": str(script)}))
        adapter.chat(REQUEST)  # warm the file cache
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            adapter.chat(REQUEST)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pieces", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cli-runs", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("ANVIL_HOME", tempfile.mkdtemp(prefix="anvil-bench-"))
    for kind in ("gemini", "ollama"):
        median, rate = bench_http(kind, args.pieces, args.runs)
        print(f"{kind:7s} stream of {args.pieces} deltas: median {median * 1000:.1f} ms/call, "
              f"{rate:,.0f} deltas/s")
    print(f"claude_cli (fake binary): median {bench_cli(args.cli_runs) * 1000:.1f} ms/call")


if __name__ == "__main__":
    main()

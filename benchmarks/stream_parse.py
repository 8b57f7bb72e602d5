"""How fast do the adapters eat a stream? 100,000 token deltas, OpenAI-style and Anthropic-style.

Builds a recorded SSE body of N one-token deltas per protocol (the real event shapes of
wire.md 2.4 / 3.4), then measures, in-process from bytes:

  parser   `iter_sse` alone over 64 KiB chunks;
  adapter  the whole adapter `chat()` (httpx MockTransport in-process: response framing, the
           SSE parser, JSON decoding, delta assembly, usage) with an `on_event` callback.

Prints wall and CPU milliseconds for the N tokens (best of --repeat runs), and MB/s and
tokens/s from the CPU time (steadier than wall time on a machine shared with other work).

    /work/venv/bin/python benchmarks/stream_parse.py [--tokens 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterator

import httpx

from anvil.providers import make_provider
from anvil.providers.sse import iter_sse
from anvil.providers.types import ChatRequest, Message, ProviderSettings

WORDS = ["the", " quick", " brown", " fox", " jumps", " over", " lazy", " dog", ",", " ☃", "\n"]
CHUNK = 65536


def openai_body(n: int) -> bytes:
    head = '{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1761000000,"model":"gpt-5","service_tier":"default","system_fingerprint":null,"choices":[{"index":0,"delta":{"content":'  # noqa: E501
    tail = '},"logprobs":null,"finish_reason":null}],"usage":null}'
    parts = [f"data: {head}\"\"{tail}\n\n"]
    for i in range(n):
        parts.append(f"data: {head}{json.dumps(WORDS[i % len(WORDS)])}{tail}\n\n")
    parts.append(
        'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1761000000,"model":"gpt-5","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}\n\n'  # noqa: E501
    )
    parts.append(
        f'data: {{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1761000000,"model":"gpt-5","choices":[],"usage":{{"prompt_tokens":100,"completion_tokens":{n},"total_tokens":{n + 100}}}}}\n\n'  # noqa: E501
    )
    parts.append("data: [DONE]\n\n")
    return "".join(parts).encode()


def anthropic_body(n: int) -> bytes:
    parts = [
        'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_bench","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":100,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}\n\n',  # noqa: E501
        'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n',  # noqa: E501
    ]
    for i in range(n):
        text = json.dumps(WORDS[i % len(WORDS)])
        parts.append('event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
                     f'"delta":{{"type":"text_delta","text":{text}}}}}\n\n')
    parts.append('event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n')
    parts.append(
        'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
        f'"usage":{{"output_tokens":{n}}}}}\n\n'
    )
    parts.append('event: message_stop\ndata: {"type":"message_stop"}\n\n')
    return "".join(parts).encode()


def chunks(body: bytes) -> Iterator[bytes]:
    for i in range(0, len(body), CHUNK):
        yield body[i : i + CHUNK]


def best(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(best wall seconds, best CPU seconds): CPU time is steadier on a shared machine."""
    wall, cpu = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu)


def run_adapter(kind: str, base: str, body: bytes, n: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=chunks(body))

    provider = make_provider(ProviderSettings("bench", kind, base_url=base, api_key="k"),
                             transport=httpx.MockTransport(handler))
    events = 0

    def count(_event: object) -> None:
        nonlocal events
        events += 1

    result = provider.chat(ChatRequest("m", (Message("user", "go"),)), on_event=count)
    assert result.usage.output_tokens == n, result.usage
    assert len(result.text) == sum(len(WORDS[i % len(WORDS)]) for i in range(n))
    assert events >= len(body) // CHUNK, events  # deltas that arrive together go out as one event


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n = args.tokens
    print(f"{n:,} one-token deltas, best of {args.repeat} runs, 64 KiB chunks")
    print(f"{'stream':<10} {'stage':<8} {'MB':>6} {'wall ms':>8} {'cpu ms':>8} {'MB/s':>8} {'tokens/s':>12}")
    for name, body, kind, base in (("openai", openai_body(n), "openai", "http://bench/v1"),
                                   ("anthropic", anthropic_body(n), "anthropic", "http://bench")):
        mb = len(body) / 1e6
        parse_s = best(lambda body=body: sum(1 for _ in iter_sse(chunks(body))), args.repeat)
        adapter_s = best(lambda kind=kind, base=base, body=body: run_adapter(kind, base, body, n), args.repeat)
        for stage, (wall, cpu) in (("parser", parse_s), ("adapter", adapter_s)):
            print(
                f"{name:<10} {stage:<8} {mb:>6.1f} {wall * 1e3:>8.1f} {cpu * 1e3:>8.1f} {mb / cpu:>8.1f} {n / cpu:>12,.0f}"  # noqa: E501
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

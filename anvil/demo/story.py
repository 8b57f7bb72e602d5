"""What `anvil demo` scripts: the catalogue, the stage policy and what each model says.

The model server is scripted (`anvil.providers.scripted`), everything else is
real: the adapters speak each vendor's wire protocol over loopback sockets,
the chain-walker, the ledger, git and the test command all run for real. The
scripted providers stand for real models and serve their real ids, so every
dollar is priced from the genai-prices table exactly as for a real run.

The story, on the bundled `examples/python-cli` repository:

- clarify goes to the cheapest model, `gpt-5.4-nano`, which answers 429 with
  a retry-after far over the walker's wait cap: the model is burned for the
  run and the walker falls through to `gpt-5.4-mini`;
- plan and review go to the premium model (`claude-opus-5-5`, Anthropic
  protocol); build, test, validate and ship to the free local one (Ollama
  protocol);
- the first build has a bug (the match is case-sensitive), the real test
  command fails, build's `on_retry` moves the retry to `gpt-5.4-mini`, whose
  fix passes;
- the review has a minor finding, and one whose evidence is not in the diff
  (anvil drops it);
- ship commits to an `anvil/...` branch.
"""

from __future__ import annotations

import json
from typing import Any

from anvil.demo import scripted_run as sr
from anvil.providers.scripted.model import ScriptedFailure

REQUEST = sr.REQUEST
EXAMPLE = sr.EXAMPLE
KEY_ENV = "ANVIL_DEMO_KEY"  # set in-process to a dummy value: the scripted server wants *a* key
DUMMY_KEY = "demo-key-not-a-real-key"

LOCAL = "ollama/qwen3-coder-30b"
NANO = "gpt-5.4-nano"
MINI = "gpt-5.4-mini"
PREMIUM = "claude-opus-5-5"
BASELINE = PREMIUM
MODELS = (LOCAL, NANO, MINI, PREMIUM)
RATE_LIMITED = NANO
RETRY_AFTER = 3600.0  # seconds: far over the walker's wait cap, so the model is burned

# The explicit chains (no `prefer:`): the demo can only ever reach the scripted models.
CHAINS: dict[str, list[str]] = {
    "clarify": [NANO, MINI, PREMIUM],
    "plan": [PREMIUM],
    "build": [LOCAL, MINI, PREMIUM],
    "test": [LOCAL, MINI],
    "validate": [LOCAL, NANO, MINI],
    "review": [PREMIUM],
    "ship": [LOCAL, NANO, MINI],
}


def models_yaml(url: str) -> str:
    """The demo catalogue: three providers, all of them the scripted server at `url`."""
    caps = "[reasoning, code, tools, structured, long_context]"
    return f"""# Written by `anvil demo`. Every provider below is anvil's SCRIPTED model server at
# {url}: it answers in each vendor's wire protocol, but no real model is called.
# The model ids are the real ones, so the ledger prices them from the genai-prices table.
providers:
  demo-ollama: {{kind: ollama, base_url: "{url}"}}
  demo-openai: {{kind: openai, base_url: "{url}/v1", api_key_env: {KEY_ENV}, price_list: openai}}
  demo-anthropic: {{kind: anthropic, base_url: "{url}", api_key_env: {KEY_ENV}, price_list: anthropic,
                   options: {{api_version: "2023-06-01"}}}}
models:
  - {{id: {LOCAL}, name: "qwen3-coder:30b", provider: demo-ollama, tier: local, capabilities: {caps},
     complexity_max: M, context_window: 65536, max_output_tokens: 8192, price: {{free: true}}}}
  - {{id: {NANO}, provider: demo-openai, tier: cheap, capabilities: {caps}, complexity_max: M,
     context_window: 400000, max_output_tokens: 16000}}
  - {{id: {MINI}, provider: demo-openai, tier: cheap, capabilities: {caps}, complexity_max: M,
     context_window: 400000, max_output_tokens: 16000}}
  - {{id: {PREMIUM}, provider: demo-anthropic, tier: premium, capabilities: {caps}, complexity_max: L,
     context_window: 200000, max_output_tokens: 32000}}
"""


def stage_policy_yaml() -> str:
    lines = ["# Written by `anvil demo`: explicit chains that name only the demo's scripted models.",
             "budget: {max_dollars: 1.00, max_tokens: 500000}",
             "stages:"]
    for stage, chain in CHAINS.items():
        extra = ""
        if stage == "build":  # a failed build is retried on the cheap model
            extra = f", on_retry: {{escalate_tier: false, model: {MINI}}}"
        lines.append(f"  {stage}: {{chain: [{', '.join(chain)}]{extra}}}")
    return "\n".join(lines) + "\n"


# The review: a minor finding on a line of the diff, a nit, and one the reviewer cannot
# point at in the diff (anvil drops it: evidence must be quoted from the change).
REVIEW = {
    "summary": "A small, tested change that does what the spec asks.",
    "findings": [
        {"severity": "minor", "file": "src/tasklist/store.py", "line": 71,
         "evidence": "needle = word.casefold()",
         "message": "an empty word matches every task; say so in the help or refuse it"},
        *sr.REVIEW_OK["findings"],
    ],
}


def answers() -> dict[str, list[str]]:
    """P2's answers for the example request (first build buggy), with the demo's review."""
    out = sr.example_answers(failing_first_build=True)
    out["review"] = [json.dumps(REVIEW)]
    return out


def failures() -> dict[str, list[Any]]:
    return {RATE_LIMITED: [ScriptedFailure(
        "rate_limit", retry_after=RETRY_AFTER,
        message=f"Rate limit reached for {RATE_LIMITED} on requests per day (RPD): limit 10000, used 10000. "
                "Please try again in 1h.")]}


def pipeline() -> Any:
    return sr.ScriptedPipeline(answers(), failures=failures())

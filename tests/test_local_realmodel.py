"""The real-model lane: SmolLM2-135M on the embedded llama.cpp server, through anvil's own code.

One thread, a small context; asserts on structure (text present, usage counted, JSON
matches the schema), never on wording. The server must be gone afterwards.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from anvil.providers.types import ChatRequest, Message, TextDelta, UsageUpdate

from .local_helpers import needs_smollm2, patience, port_free, process_gone, write_local_catalogue

pytestmark = [pytest.mark.realmodel, needs_smollm2]

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
                   "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3}},
    "required": ["name", "age", "tags"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def lane(tmp_path_factory):
    """One embedded server for the module, through load_config + build_provider."""
    from anvil.config.loader import load_config
    from anvil.local.llamacpp import LocalServerManager
    from anvil.routing.factory import build_provider

    home = tmp_path_factory.mktemp("anvil-home-local")
    write_local_catalogue(home, threads=1, ctx_size=1024)
    old = os.environ.get("ANVIL_HOME")
    os.environ["ANVIL_HOME"] = str(home)
    try:
        config = load_config(None)
        model = config.catalogue.model("local/smollm2-135m")
        with LocalServerManager() as manager:
            provider = build_provider(config, model.provider)
            yield {"provider": provider, "model": model, "manager": manager}
            servers = manager.servers
        for server in servers:
            assert server.proc is None  # stopped by the manager
    finally:
        if old is None:
            os.environ.pop("ANVIL_HOME", None)
        else:
            os.environ["ANVIL_HOME"] = old


def _request(model, text: str, **kw) -> ChatRequest:
    return ChatRequest(model=model.wire_name, messages=(Message("system", "You are terse."), Message("user", text)),
                       context_window=model.context_window, timeout=patience(60), **kw)


def test_streamed_answer_with_usage(lane):
    model, events = lane["model"], []
    result = lane["provider"].chat(_request(model, "Name a colour.", max_output_tokens=24), events.append)
    assert result.text.strip()
    assert result.finish_reason in ("stop", "length")
    assert result.usage.input_tokens > 5 and 0 < result.usage.output_tokens <= 24
    assert result.served_model == "smollm2-135m"
    assert result.ttft_s is not None and result.latency_s >= result.ttft_s
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 1 and "".join(deltas) == result.text  # really streamed, nothing lost
    assert any(isinstance(e, UsageUpdate) and e.usage.output_tokens == result.usage.output_tokens for e in events)
    assert len(lane["manager"].servers) == 1


def test_schema_constrained_answer_parses_and_matches(lane):
    model = lane["model"]
    result = lane["provider"].chat(_request(model, "Describe a person as JSON.", max_output_tokens=120,
                                            json_schema=PERSON, schema_name="person", temperature=0.0))
    assert result.finish_reason == "stop", result.text  # the grammar closed the object
    data = json.loads(result.text)
    assert set(data) == {"name", "age", "tags"}
    assert isinstance(data["name"], str) and isinstance(data["age"], int)
    assert isinstance(data["tags"], list) and len(data["tags"]) <= 3 and all(isinstance(t, str) for t in data["tags"])


def test_every_call_of_the_run_shares_one_server(lane):
    model = lane["model"]
    before = [s.pid for s in lane["manager"].servers]
    lane["provider"].chat(_request(model, "Say ok.", max_output_tokens=4))
    assert [s.pid for s in lane["manager"].servers] == before


def test_context_overflow_is_classified(lane):
    from anvil.providers.types import UpstreamError

    model = lane["model"]
    with pytest.raises(UpstreamError) as info:
        lane["provider"].chat(_request(model, "word " * 1500, max_output_tokens=8))
    assert info.value.kind == "context_overflow"


def test_server_is_gone_after_the_run(tmp_path, monkeypatch):
    from anvil.config.loader import load_config
    from anvil.local.llamacpp import LocalServerManager
    from anvil.routing.factory import build_provider

    home = Path(os.environ["ANVIL_HOME"])
    write_local_catalogue(home, threads=1, ctx_size=512)
    config = load_config(None)
    model = config.catalogue.model("local/smollm2-135m")
    with LocalServerManager() as manager:
        assert manager.servers == []  # lazy: building the provider starts nothing
        provider = build_provider(config, model.provider)
        assert manager.servers == []
        provider.chat(_request(model, "Hi.", max_output_tokens=4))
        [server] = manager.servers
        pid, port = server.pid, server.port
    assert process_gone(pid) and port_free(port)


def test_back_to_back_streamed_calls_with_different_prompts(lane):
    """llama.cpp's server may drop a kept-alive connection after a stream: no call may fail for it."""
    model = lane["model"]
    for i in range(4):
        result = lane["provider"].chat(_request(model, f"Name {i + 2} colours.", max_output_tokens=6, temperature=0.0))
        assert result.usage.output_tokens > 0


def test_walker_and_ledger_record_local_calls_as_free(tmp_path):
    """resolver -> chain-walker -> embedded server -> one ledger row per attempt, priced `free`."""
    from decimal import Decimal

    from anvil.config.loader import load_config
    from anvil.ledger.db import Ledger
    from anvil.local.llamacpp import LocalServerManager
    from anvil.routing.availability import check_providers
    from anvil.routing.resolver import resolve_stage
    from anvil.routing.walker import CallSite, Walker

    write_local_catalogue(Path(os.environ["ANVIL_HOME"]), threads=1, ctx_size=512)
    config = load_config(None)
    avail = check_providers(config, probe=False)
    chain = resolve_stage("ship", config, avail, pinned_model="local/smollm2-135m").chain
    assert [m.id for m in chain] == ["local/smollm2-135m"]
    with LocalServerManager() as manager, Ledger(tmp_path / "ledger.db") as ledger:
        walker = Walker(config.catalogue.walker, ledger=ledger, config=config)
        site = CallSite(run_id="run-local-1", stage="ship")
        walked = walker.call(chain, ChatRequest(model="", messages=(Message("user", "Write a commit title."),),
                                                max_output_tokens=12), site)
        assert walked.result.text.strip() and walked.cost_source == "free" and walked.dollars == Decimal(0)
        [row] = ledger.attempts("run-local-1")
        pid, port = manager.servers[0].pid, manager.servers[0].port
    assert row["outcome"] == "ok" and row["cost_source"] == "free" and row["provider_kind"] == "llamacpp"
    assert row["model"] == "local/smollm2-135m" and row["served_model"] == "smollm2-135m"
    assert row["input_tokens"] > 0 and 0 < row["output_tokens"] <= 12
    assert process_gone(pid) and port_free(port)


def test_connecting_to_a_running_llamacpp_server_by_base_url(lane):
    """The other llamacpp mode: anvil does not start the server, it connects to one (base_url)."""
    from anvil.providers import make_provider
    from anvil.providers.types import ProviderSettings

    [server] = lane["manager"].servers  # stands in for a llama-server the user runs themselves
    provider = make_provider(ProviderSettings(name="mine", kind="llamacpp", base_url=server.base_url,
                                              api_key=server.api_key))
    assert type(provider).__name__ == "OpenAIChat"  # the OpenAI-compatible adapter, llamacpp preset
    for i in range(4):  # back to back: llama.cpp drops some kept-alive connections after a stream
        events = []
        result = provider.chat(_request(lane["model"], f"Name {i + 2} animals.", max_output_tokens=6,
                                        temperature=0.0), events.append)
        assert result.text and result.usage.output_tokens > 0 and events
    assert len(lane["manager"].servers) == 1


def test_the_server_accepts_every_stage_schema(lane):
    """Structured stages send their pydantic schema as response_format json_schema; llama.cpp
    (llguidance in this build) must accept each one and start a JSON object."""
    from anvil.stages import schemas

    names = [n for n in ("Spec", "Plan", "Review", "CommitText", "CriteriaVerdict") if hasattr(schemas, n)]
    assert names
    for name in names:
        result = lane["provider"].chat(_request(lane["model"], "Answer in JSON.", max_output_tokens=6,
                                                json_schema=schemas.schema_for(getattr(schemas, name)),
                                                schema_name=name.lower(), temperature=0.0))
        assert result.text.lstrip().startswith("{"), (name, result.text)

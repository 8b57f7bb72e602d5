"""The HTTP surface: starlette routes over the gateway.

    POST /v1/chat/completions       OpenAI Chat Completions (stream or not)
    POST /v1/responses              OpenAI Responses (stream or not; the Codex CLI's protocol)
    POST /v1/messages               Anthropic Messages (stream or not)
    POST /v1/messages/count_tokens  Anthropic token count (an estimate: no model is asked)
    GET  /v1/models                 the presets and catalogue ids, in the caller's shape

Every route wants the server's token (`auth`); a missing or wrong one is a 401 in the
protocol of the route (for /v1/models: Anthropic's when the request carries
`anthropic-version`, else OpenAI's).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from anvil.serve.anthropic_dialect import ANTHROPIC
from anvil.serve.auth import authorized
from anvil.serve.dialect import ServeError, bad_request, estimate_tokens
from anvil.serve.gateway import Answer
from anvil.serve.openai_dialect import OPENAI
from anvil.serve.responses_dialect import RESPONSES

if TYPE_CHECKING:
    from anvil.serve.dialect import Dialect
    from anvil.serve.gateway import Gateway


def _error(dialect: Dialect, err: ServeError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(dialect.error_body(err), status_code=dialect.error_status(err), headers=dict(headers or {}))


def _denied(dialect: Dialect, request: Request) -> JSONResponse:
    what = "no API key" if not (request.headers.get("x-api-key") or request.headers.get("authorization")) \
        else "a wrong API key"
    return _error(dialect, ServeError("auth", f"anvil serve: {what}; send the token `anvil serve` printed "
                                              "(or ANVIL_SERVE_TOKEN) as the API key"))


async def _body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise bad_request("the request body is not JSON") from None


def build_app(gateway: Gateway, token: str) -> Starlette:
    async def answer(request: Request, dialect: Dialect) -> Response:
        if not authorized(request.headers, token):
            return _denied(dialect, request)
        try:
            creq = dialect.parse(await _body(request))
        except ServeError as err:
            return _error(dialect, err)
        out = await (gateway.stream if creq.stream else gateway.complete)(dialect, creq, request.headers)
        if isinstance(out, Answer):
            return JSONResponse(out.body, status_code=out.status, headers=out.headers)
        return StreamingResponse(out.chunks, media_type="text/event-stream",
                                 headers={"cache-control": "no-cache", **out.headers})

    async def chat_completions(request: Request) -> Response:
        return await answer(request, OPENAI)

    async def responses(request: Request) -> Response:
        return await answer(request, RESPONSES)

    async def messages(request: Request) -> Response:
        return await answer(request, ANTHROPIC)

    async def count_tokens(request: Request) -> Response:
        if not authorized(request.headers, token):
            return _denied(ANTHROPIC, request)
        try:
            creq = ANTHROPIC.parse({"max_tokens": 1, **(await _body(request))})
        except ServeError as err:
            return _error(ANTHROPIC, err)
        chat = creq.chat
        text = "".join(m.content + "".join(json.dumps(c.arguments) for c in m.tool_calls) for m in chat.messages)
        text += "".join(t.name + t.description + json.dumps(t.parameters) for t in chat.tools)
        return JSONResponse({"input_tokens": estimate_tokens(text)})

    async def models(request: Request) -> Response:
        dialect: Dialect = ANTHROPIC if request.headers.get("anthropic-version") else OPENAI
        if not authorized(request.headers, token):
            return _denied(dialect, request)
        return JSONResponse(dialect.model_list(gateway.presets.names()))

    routes = [Route("/v1/chat/completions", chat_completions, methods=["POST"]),
              Route("/v1/responses", responses, methods=["POST"]),
              Route("/v1/messages", messages, methods=["POST"]),
              Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
              Route("/v1/models", models, methods=["GET"])]
    return Starlette(routes=routes)

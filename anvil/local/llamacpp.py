"""The embedded llama.cpp server: start it for a GGUF file, reuse it, never leave it behind.

A `llamacpp` provider either names a running server (`base_url`) or, with
`options.gguf: PATH`, gets one started by anvil (the `xllamacpp` wheel, extra
`anvil[local]`): on 127.0.0.1, on a port the kernel picks, lazily on the first call of
the run, health-checked, shared by every stage, stopped when the run ends.

The server lives in a child process (`llamacpp_child.py`) that exits as soon as anvil
closes its stdin pipe or dies, so even `kill -9 anvil` leaves no server running.

Provider options (models.yaml `providers.<name>.options`):
  gguf: path to the model file (`~` expanded)
  threads: CPU threads (default: all cores but one)
  ctx_size: the server's context, in tokens (default: the model entry's context_window)
  start_timeout: seconds to wait for the model to load (default 120)
  verbosity: llama.cpp log level for the log file (default 1)

Use: `with LocalServerManager() as servers: ...` around a run; `build_provider` hands
out `EmbeddedLlamaProvider`s that start their server through the innermost active
manager (or a process-wide one stopped at exit) on their first `chat()`.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from anvil.local.bundled import embedded_server_available, embedded_status  # noqa: F401  (re-exported)
from anvil.local.llamacpp_server import (  # noqa: F401  (re-exported: callers need one module)
    DEFAULT_CTX,
    EmbeddedServer,
    LocalServerError,
    ServerSpec,
    default_threads,
    spec_for,
)
from anvil.providers.openai_compatible import create
from anvil.providers.types import ChatRequest, ChatResult, OnEvent, ProviderSettings, UpstreamError

if TYPE_CHECKING:
    from httpx import BaseTransport

    from anvil.config.schema import ModelEntry, ProviderEntry
    from anvil.providers.types import Provider

# --------------------------------------------------------------------- manager

_active: list[LocalServerManager] = []
_active_lock = threading.Lock()
_default: LocalServerManager | None = None


class LocalServerManager:
    """The embedded servers of one run: started on demand, shared, all stopped on exit."""

    def __init__(self, *, server_factory: Callable[[ServerSpec], EmbeddedServer] = EmbeddedServer) -> None:
        self._factory = server_factory
        self._servers: list[EmbeddedServer] = []
        self._lock = threading.Lock()

    def __enter__(self) -> LocalServerManager:
        with _active_lock:
            _active.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        with _active_lock:
            if self in _active:
                _active.remove(self)
        self.stop_all()

    @property
    def servers(self) -> list[EmbeddedServer]:
        return list(self._servers)

    def server_for(self, spec: ServerSpec) -> EmbeddedServer:
        """A healthy server for `spec` (its `base_url`, `api_key`), starting one if none fits."""
        with self._lock:
            for server in list(self._servers):
                if not server.alive():
                    server.stop()
                    self._servers.remove(server)
                elif server.spec.fits(spec):
                    return server
            server = self._factory(spec).start()
            self._servers.append(server)
            return server

    def ensure_spec(self, spec: ServerSpec) -> str:
        """The base URL of a healthy server for `spec` (send `server_for(spec).api_key`)."""
        return self.server_for(spec).base_url

    def ensure(self, model_entry: ModelEntry, provider: ProviderEntry) -> str:
        """`ensure_spec` for a catalogue model (`ModelEntry`) of a provider with `options.gguf`."""
        spec = spec_for(dict(provider.options), model_name=model_entry.wire_name,
                        context_window=model_entry.context_window)
        return self.ensure_spec(spec)

    def stop_all(self) -> None:
        with self._lock:
            servers, self._servers = self._servers, []
        for server in servers:
            server.stop()


def active_manager() -> LocalServerManager:
    """The innermost entered manager; else one for the whole process, stopped at exit."""
    global _default
    with _active_lock:
        if _active:
            return _active[-1]
        if _default is None:
            _default = LocalServerManager()
            atexit.register(_default.stop_all)
        return _default


# -------------------------------------------------------------------- provider


class EmbeddedLlamaProvider:
    """A `Provider` for a `llamacpp` entry with `options.gguf`.

    Nothing starts until the first `chat()`; then the server comes from the active
    manager and the OpenAI-compatible adapter (llamacpp preset) does the talking.
    A server that cannot start is an `UpstreamError("model_not_found")`: a retry will
    not fix a missing file or a broken GGUF, so the walker burns the model and moves on.
    """

    def __init__(self, settings: ProviderSettings, *, transport: BaseTransport | None = None,
                 manager: LocalServerManager | None = None, clock: Callable[[], float] | None = None) -> None:
        self.settings = settings
        self._transport = transport
        self._manager = manager
        self._clock = clock
        self._adapters: dict[str, Any] = {}

    def _adapter_for(self, request: ChatRequest) -> Provider:
        manager = self._manager or active_manager()
        try:
            spec = spec_for(self.settings.options, model_name=request.model,
                            context_window=request.context_window)
            server = manager.server_for(spec)
        except (LocalServerError, ValueError) as exc:
            raise UpstreamError("model_not_found", str(exc), provider=self.settings.name,
                                model=request.model) from None
        base_url = server.base_url
        adapter = self._adapters.get(base_url)
        if adapter is None:
            settings = ProviderSettings(name=self.settings.name, kind="llamacpp", base_url=base_url,
                                        api_key=server.api_key, options=self._adapter_options())
            # No keep-alive: the llamacpp preset's default (see providers/openai_compatible.py).
            kwargs: dict[str, Any] = {"transport": self._transport} if self._transport is not None else {}
            if self._clock is not None:
                kwargs["clock"] = self._clock
            adapter = self._adapters[base_url] = create(settings, **kwargs)
        return adapter

    def _adapter_options(self) -> dict[str, Any]:
        mine = {"gguf", "threads", "ctx_size", "start_timeout", "verbosity"}
        return {k: v for k, v in self.settings.options.items() if k not in mine}

    def chat(self, request: ChatRequest, on_event: OnEvent | None = None) -> ChatResult:
        return self._adapter_for(request).chat(request, on_event)

    def close(self) -> None:
        for adapter in self._adapters.values():
            close = getattr(adapter, "close", None)
            if close:
                close()
        self._adapters.clear()


def create_embedded_provider(settings: ProviderSettings, *, transport: BaseTransport | None = None,
                             manager: LocalServerManager | None = None) -> EmbeddedLlamaProvider:
    """What `anvil.routing.factory.build_provider` returns for a llamacpp provider with `gguf`."""
    return EmbeddedLlamaProvider(settings, transport=transport, manager=manager)


def is_embedded(settings_or_entry: ProviderSettings | ProviderEntry) -> bool:
    """True for a llamacpp provider that anvil starts itself (it has `options.gguf`)."""
    return getattr(settings_or_entry, "kind", None) == "llamacpp" and bool(
        (getattr(settings_or_entry, "options", None) or {}).get("gguf"))

"""`anvil serve`: the OpenAI- and Anthropic-compatible gateway (anvil.serve) on 127.0.0.1.

Start-up: the layered configuration (plus `--policy FILE`), one availability probe, the
presets' chains, one chain-walker and one ledger connection for the server's lifetime, a
token; then the base URLs on stdout (or one JSON line with `--json`) and uvicorn until
Ctrl-C. starlette and uvicorn are imported here only, so other commands never pay for them.
"""

from __future__ import annotations

import os
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path

from anvil.errors import UserError


def _load(policy: str | None):  # -> Config
    from anvil.config.loader import load_config
    from anvil.paths import find_repo_root

    policy_file = None
    if policy is not None:
        policy_file = Path(policy).expanduser()
        if not policy_file.is_file():
            raise UserError(f"--policy {policy}: no such file", hint="give a stage-policy.yaml to layer on top")
    return load_config(find_repo_root(), policy_file=policy_file)


def run(port: int = 8765, host: str = "127.0.0.1", policy: str | None = None, commit_window: int = 2048,
        commit_seconds: float = 4.0, session_ttl: float = 3600.0, json_output: bool = False) -> int:
    from anvil.serve.listen import bind, check_host, serve_forever

    check_host(host)  # before anything slow: a refused bind is answered at once
    from anvil.ledger.db import Ledger, repo_key
    from anvil.routing.availability import check_providers
    from anvil.routing.walker import Walker
    from anvil.serve.app import build_app
    from anvil.serve.auth import TOKEN_ENV, new_token, token_from_env
    from anvil.serve.gateway import Gateway, WindowSettings
    from anvil.serve.presets import Presets
    from anvil.serve.sessions import SessionTable

    if commit_window < 0 or commit_seconds < 0:
        raise UserError("--commit-window and --commit-seconds cannot be negative")
    config = _load(policy)
    presets = Presets(config, check_providers(config))
    env_token = token_from_env(os.environ)
    token = env_token or new_token()
    run_id = "serve-" + datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
    sock = bind(port)
    url = "http://{}:{}".format(*sock.getsockname()[:2])
    names = [n for n, _ in presets.names()]
    for name, about in presets.names():
        if about.endswith("no usable model") and name.startswith("anvil/"):
            print(f"anvil serve: warning: {name} has no usable model (see `anvil policy explain`)", file=sys.stderr)
    if json_output:
        import json

        print(json.dumps({"url": url, "openai_base_url": url + "/v1", "anthropic_base_url": url,
                          "token": None if env_token else token, "run_id": run_id, "models": names}), flush=True)
    else:
        shown = f"(from {TOKEN_ENV})" if env_token else token
        print(f"anvil serve on {url} (ledger run {run_id}; Ctrl-C stops it)\n"
              f"  OpenAI base URL     {url}/v1\n"
              f"  Anthropic base URL  {url}\n"
              f"  API key             {shown}\n"
              f"  models              {', '.join(n for n in names if n.startswith('anvil/'))}"
              f" (and every catalogue id)", flush=True)
    root = config.repo_root
    with Ledger() as ledger:
        walker = Walker(config.catalogue.walker, ledger=ledger, config=config)
        gateway = Gateway(presets, walker, SessionTable(ttl=session_ttl), run_id=run_id,
                          repo=repo_key(root) if root is not None else "",
                          window=WindowSettings(commit_window, commit_seconds))
        try:
            serve_forever(build_app(gateway, token), sock)
        finally:
            gateway.close()
            sock.close()
    return 0

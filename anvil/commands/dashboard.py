"""`anvil dashboard`: serve the read-only dashboard on 127.0.0.1 with a per-process token."""

from __future__ import annotations

import secrets
import socket
import sys
from typing import Any

from anvil.errors import UserError


def _baseline(model_id: str | None) -> Any:
    """The model the charts price the same tokens on; None if it cannot be priced here."""
    from anvil.commands.cost import _baseline as resolve

    if not model_id:
        return None
    try:
        return resolve(model_id)
    except UserError as exc:
        print(f"anvil: note: no baseline saving shown ({exc.message})", file=sys.stderr)
        return None


def _bind(port: int) -> socket.socket:
    if not 0 <= port <= 65535:
        raise UserError(f"--port {port}: not a port number", hint="use 1-65535, or 0 for any free port")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))  # loopback only: the dashboard is for this machine's user
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot listen on 127.0.0.1:{port} ({exc.strerror})",
                        hint="pick another --port, or 0 for any free one") from None
    sock.listen(64)
    return sock


def run(port: int = 8766, open_browser: bool = False, baseline: str | None = None) -> int:
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise UserError("the dashboard needs starlette and uvicorn",
                        hint="pip install 'anvil-agent' again (they are its dependencies)") from None
    from anvil.dashboard.app import create_app
    from anvil.dashboard.data import Dashboard, LedgerSource
    from anvil.demo.story import BASELINE
    from anvil.paths import find_repo_root

    sock = _bind(port)
    token = secrets.token_urlsafe(24)
    dash = Dashboard(LedgerSource(), find_repo_root(), _baseline(baseline or BASELINE))
    app = create_app(dash, token)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/?token={token}"
    print(url, flush=True)
    print("anvil dashboard: read-only; Ctrl-C stops it", file=sys.stderr, flush=True)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0

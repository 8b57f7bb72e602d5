"""Listening: a socket on 127.0.0.1 only, handed to uvicorn.

The socket is bound here, before uvicorn starts, so `--port 0` knows its port in time to
print the base URLs, and so no configuration of uvicorn's can widen the bind: uvicorn is
given the socket, never a host.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

from anvil.errors import UserError

HOST = "127.0.0.1"
_LOOPBACK_NAMES = ("127.0.0.1", "localhost")


def check_host(host: str) -> str:
    if host not in _LOOPBACK_NAMES:
        raise UserError(f"--host {host}: anvil serve listens on 127.0.0.1 only",
                        hint="the gateway spends your provider keys for whoever reaches it; to share it, put an "
                             "authenticating reverse proxy in front (or an SSH tunnel to this port)")
    return HOST


def bind(port: int) -> socket.socket:
    if not 0 <= port <= 65535:
        raise UserError(f"--port {port}: not a TCP port (0 picks a free one)")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} on {HOST} is in use", hint="--port 0 picks a free one") from None
        raise UserError(f"cannot listen on {HOST}:{port}: {exc.strerror}") from None
    sock.listen(1024)
    return sock


def serve_forever(app: Any, sock: socket.socket) -> None:
    """Run uvicorn on `sock` until SIGINT / SIGTERM."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", server_header=False,
                            timeout_graceful_shutdown=3)
    uvicorn.Server(config).run(sockets=[sock])

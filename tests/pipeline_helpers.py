"""Shared fixtures for the pipeline-mechanics tests: tmp git repos and a loopback GitHub API."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def sh(args: list[str], cwd: Path, **kw: Any) -> str:
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True, **kw).stdout


def make_repo(path: Path, files: dict[str, str] | None = None, branch: str = "main") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    sh(["git", "init", "-q", "-b", branch], path)
    for rel, text in (files or {"README.md": "# demo\n", "src/app.py": "def f():\n    return 1\n"}).items():
        p = path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    sh(["git", "add", "-A"], path)
    sh(["git", "commit", "-q", "-m", "init"], path)
    return path


def copy_example(name: str, dest: Path) -> Path:
    """A committed copy of `examples/<name>` (build artefacts left out)."""
    shutil.copytree(EXAMPLES / name, dest, ignore=shutil.ignore_patterns(
        "__pycache__", "*.egg-info", ".pytest_cache", "build", ".venv"))
    sh(["git", "init", "-q", "-b", "main"], dest)
    sh(["git", "add", "-A"], dest)
    sh(["git", "commit", "-q", "-m", "init"], dest)
    return dest


class FakeGitHub:
    """A loopback HTTP server that records POST /repos/{owner}/{repo}/pulls."""

    def __init__(self, status: int = 201, existing: list[dict] | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = status
        self.existing = existing or []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:  # quiet
                pass

            def _send(self, code: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                outer.requests.append({"method": "POST", "path": self.path, "headers": dict(self.headers),
                                       "json": body})
                if outer.status == 201:
                    self._send(201, {"number": 7, "html_url": f"https://github.example{self.path[6:-6]}/pull/7"})
                elif outer.status == 422:
                    self._send(422, {"message": "Validation Failed",
                                     "errors": [{"message": f"A pull request already exists for {body.get('head')}."}]})
                else:
                    self._send(outer.status, {"message": "Bad credentials"})

            def do_GET(self) -> None:
                outer.requests.append({"method": "GET", "path": self.path, "headers": dict(self.headers)})
                self._send(200, outer.existing)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeGitHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

"""`anvil context` end to end: the real CLI in a small generated git repo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.retrieval_helpers import sample_repo


def anvil(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "anvil", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_context_json_shape(tmp_path: Path) -> None:
    root = sample_repo(tmp_path / "repo")
    (root / "sub").mkdir()
    proc = anvil(root / "sub", "context", "Config.from_file should accept a binary mode", "--budget", "600", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)  # stdout is only the JSON document
    assert set(data) >= {"request", "budget_tokens", "tokens_used", "files", "chunks", "stats"}
    assert data["budget_tokens"] == 600 and 0 < data["tokens_used"] <= 600
    top = data["files"][0]
    assert top == {"rank": 1, "path": "config.py", "score": top["score"], "reasons": top["reasons"],
                   "symbols": ["Config(from_file, from_mapping)", "parse_http_response"], "in_pack": True}
    assert isinstance(top["score"], float) and top["score"] > 0
    chunk = data["chunks"][0]
    assert set(chunk) == {"path", "start_line", "end_line", "symbol", "kind", "tokens", "score", "truncated", "text"}
    assert sum(c["tokens"] for c in data["chunks"]) <= data["tokens_used"]
    assert any(c["symbol"] == "Config.from_file" and "def from_file" in c["text"] for c in data["chunks"])
    assert data["stats"]["index"]["files"] == 5
    assert "index: 5 files" in proc.stderr  # diagnostics on stderr

    again = anvil(root, "context", "Config.from_file should accept a binary mode", "--budget", "600", "--json")
    assert "(reused)" in again.stderr
    assert json.loads(again.stdout)["files"] == data["files"]


def test_context_human_output(tmp_path: Path) -> None:
    root = sample_repo(tmp_path / "repo")
    proc = anvil(root, "context", "make_app builds the config", "--budget", "2000")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Ranked files" in out and "app.py" in out and "Tokens used:" in out and "of 2000" in out
    assert "make_app" in out


def test_context_outside_a_git_repo_is_a_clear_error(tmp_path: Path) -> None:
    proc = anvil(tmp_path, "context", "anything")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("anvil: error: `anvil context` must be run inside a git work tree")
    assert "Traceback" not in proc.stderr


def test_context_rejects_a_bad_budget(tmp_path: Path) -> None:
    root = sample_repo(tmp_path / "repo")
    proc = anvil(root, "context", "anything", "--budget", "0")
    assert proc.returncode == 2 and "--budget" in proc.stderr and "Traceback" not in proc.stderr


def test_context_on_a_mixed_language_repo(tmp_path: Path) -> None:
    from tests.retrieval_helpers import make_repo

    root = make_repo(
        tmp_path / "mixed",
        {
            "server/main.go": "package main\n\n// startServer opens the listening socket.\nfunc startServer(port int) error {\n\treturn nil\n}\n",  # noqa: E501
            "web/router.js": "exports.route = function route(path) {\n  return decodeURIComponent(path);\n};\n",
            "core/src/lib.rs": "/// Parses a frame header.\npub fn parse_header(buf: &[u8]) -> usize { buf.len() }\n",
            "native/codec.c": "int decode_frame(const char *buf) { return buf[0]; }\n",
            "notes.txt": "release notes: nothing about sockets\n",
            "assets/logo.png": b"\x89PNG\r\n\x1a\n\0\0binary",
        },
    )
    for request, expected, symbol in (
        ("the listening socket is never opened by startServer", "server/main.go", "startServer"),
        ("route does not decode the path", "web/router.js", "route"),
        ("parse_header reads past the frame header", "core/src/lib.rs", "parse_header"),
        ("decode_frame crashes on an empty buffer", "native/codec.c", "decode_frame"),
    ):
        proc = anvil(root, "context", request, "--json")
        assert proc.returncode == 0, proc.stderr
        data = json.loads(proc.stdout)
        assert data["files"][0]["path"] == expected, (request, data["files"][:3])
        assert any(c["path"] == expected and c["symbol"] == symbol for c in data["chunks"])
        assert all(not f["path"].endswith(".png") for f in data["files"])

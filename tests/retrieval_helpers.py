"""Small real git repositories for the retrieval tests."""

from __future__ import annotations

import subprocess
from pathlib import Path


def make_repo(root: Path, files: dict[str, str | bytes], commit: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
    if commit:
        subprocess.run(["git", "add", "-A"], cwd=root, check=True)
        subprocess.run(["git", "commit", "-q", "-m", "init"], cwd=root, check=True)
    return root


SAMPLE_PY = '''"""Configuration loading."""
import json


class Config(dict):
    """A dict with loaders."""

    def from_file(self, filename, load, text=True):
        """Load a file with the given loader."""
        mode = "r" if text else "rb"
        with open(filename, mode) as fh:
            return self.update(load(fh))

    def from_mapping(self, mapping):
        return self.update(mapping)


def parse_http_response(raw):
    return raw.split("\\r\\n")
'''

SAMPLE_APP_PY = '''from config import Config


def make_app():
    cfg = Config()
    cfg.from_mapping({"debug": True})
    return cfg
'''

SAMPLE_TEST_PY = '''from config import Config


def test_from_file(tmp_path):
    Config().from_file(tmp_path / "x.json", json.load)
'''


def sample_repo(root: Path) -> Path:
    return make_repo(root, {
        "config.py": SAMPLE_PY,
        "app.py": SAMPLE_APP_PY,
        "tests/test_config.py": SAMPLE_TEST_PY,
        "README.md": "# Sample\n\nA sample project that loads configuration files.\n",
        ".gitignore": "ignored_dir/\n*.log\n",
    })

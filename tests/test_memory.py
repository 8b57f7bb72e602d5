"""anvil.memory: facts anchored to a symbol's source go stale when it changes (real SQLite, real git)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from anvil.memory.anchors import anchor_hash
from anvil.memory.store import BLOCK_TITLE, MemoryStore, store_path
from tests.pipeline_helpers import make_repo, sh

SRC = ('"""App."""\n\n\ndef total(xs):\n    return sum(xs)\n\n\n'
       'class Cart:\n    def add(self, x):\n        return x\n\n    def drop(self, x):\n        return None\n')


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"src/app.py": SRC, "README.md": "# r\n"})


def _store(repo: Path, home: Path) -> MemoryStore:
    return MemoryStore.for_repo(repo, home=home)


def test_a_fact_anchored_to_a_function_goes_stale_when_the_function_changes(repo, tmp_path):
    store = _store(repo, tmp_path / "home")
    fact = store.add("total() must stay O(n)", "user", root=repo, anchors=[("src/app.py", "total")])
    other = store.add("Cart.add returns its argument", "user", root=repo, anchors=[("src/app.py", "Cart.add")])
    assert fact.anchors[0].sha256 and fact.live
    # unchanged: live and in the block
    assert store.check_drift(repo) == []
    block = store.block()
    assert block.startswith(BLOCK_TITLE) and "total() must stay O(n)" in block
    # another function changes: the fact about `total` stays live; the one about Cart.drop's neighbour too
    (repo / "src/app.py").write_text(SRC.replace("return None", "return x"))
    assert store.check_drift(repo) == []
    # `total` itself changes: stale, and no longer injected
    (repo / "src/app.py").write_text(SRC.replace("return sum(xs)", "return sum(xs) + 0"))
    stale = store.check_drift(repo)
    assert [f.id for f in stale] == [fact.id] and stale[0].status == "stale"
    block = store.block()
    assert "total() must stay O(n)" not in block and "Cart.add returns its argument" in block
    assert [f.id for f in store.stale()] == [fact.id] and store.get(other.id).live
    # confirming re-hashes the anchor as it reads now
    confirmed = store.confirm(fact.id, repo)
    assert confirmed is not None and confirmed.live
    assert "total() must stay O(n)" in store.block() and store.check_drift(repo) == []
    store.close()


def test_a_class_anchor_covers_its_methods_and_a_removed_symbol_is_stale(repo, tmp_path):
    store = _store(repo, tmp_path / "home")
    cart = store.add("Cart is immutable", "user", root=repo, anchors=[("src/app.py", "Cart")])
    whole = store.add("README is short", "user", root=repo, anchors=[("README.md", "")])
    (repo / "src/app.py").write_text(SRC.replace("return None", "return 1"))
    assert [f.id for f in store.check_drift(repo)] == [cart.id]
    (repo / "README.md").unlink()
    assert [f.id for f in store.check_drift(repo)] == [whole.id]
    assert anchor_hash(repo, "src/app.py", "nope") == "" and anchor_hash(repo, "../etc/passwd") == ""
    store.close()


def test_adding_again_confirms_forget_ends_validity_and_secrets_are_redacted(repo, tmp_path):
    store = _store(repo, tmp_path / "home")
    a = store.add("tests need FOO=1", "user", root=repo, anchors=[("src/app.py", "total")])
    (repo / "src/app.py").write_text(SRC.replace("sum(xs)", "sum(list(xs))"))
    store.check_drift(repo)
    again = store.add("tests need FOO=1", "user", root=repo, anchors=[("src/app.py", "total")])
    assert again.id == a.id and again.live and len(store.facts()) == 1
    assert store.forget(a.id) and not store.forget(a.id)
    assert store.facts() == [] and store.get(a.id).status == "forgotten" and store.block() == ""
    s = store.add("the key is sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789", "user", root=repo)
    assert "abcdefghijklmnop" not in s.text and "abcdefghijklmnop" not in store.block()
    store.close()


def test_the_store_lives_in_the_home_one_per_repo_shared_by_its_worktrees(repo, tmp_path):
    home = tmp_path / "home"
    wt = tmp_path / "wt"
    sh(["git", "worktree", "add", "-q", str(wt), "-b", "side"], repo)
    assert MemoryStore.for_repo(wt, home=home).path == MemoryStore.for_repo(repo, home=home).path
    assert MemoryStore.for_repo(repo, home=home).path.parent == home / "memory"
    assert not (repo / ".anvil").exists()
    other = make_repo(tmp_path / "other")
    assert store_path(str(other), home) != MemoryStore.for_repo(repo, home=home).path


ANVIL = str(Path(sys.executable).with_name("anvil"))


def _anvil(repo: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "ANVIL_HOME": str(home)}
    return subprocess.run([ANVIL, "memory", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.e2e
def test_cli_add_list_show_stale_confirm_forget(repo, tmp_path):
    home = tmp_path / "home"
    r = _anvil(repo, home, "add", "total is hot", "--file", "src/app.py", "--symbol", "total", "--json")
    assert r.returncode == 0, r.stderr
    fid = json.loads(r.stdout)["id"]
    r = _anvil(repo, home, "list", "--json")
    assert [f["text"] for f in json.loads(r.stdout)] == ["total is hot"]
    assert json.loads(r.stdout)[0]["anchors"][0]["symbol"] == "total"
    assert "total is hot" in _anvil(repo, home, "show", str(fid)).stdout
    assert json.loads(_anvil(repo, home, "stale", "--json").stdout) == []
    (repo / "src/app.py").write_text(SRC.replace("sum(xs)", "sum(xs) * 1"))
    stale = json.loads(_anvil(repo, home, "stale", "--json").stdout)
    assert [f["id"] for f in stale] == [fid] and stale[0]["status"] == "stale"
    assert "stale" in _anvil(repo, home, "list").stdout
    assert _anvil(repo, home, "confirm", str(fid)).returncode == 0
    assert json.loads(_anvil(repo, home, "stale", "--json").stdout) == []
    assert _anvil(repo, home, "forget", str(fid)).returncode == 0
    assert json.loads(_anvil(repo, home, "list", "--json").stdout) == []
    assert "forgotten" in _anvil(repo, home, "list", "--all").stdout
    # user mistakes: clear errors, no traceback
    for args, needle in ((["show", "99"], "no remembered fact"), (["forget", str(fid)], "already forgotten"),
                         (["add", "x", "--file", "nope.py"], "no such readable file"),
                         (["add", "x", "--file", "src/app.py", "--symbol", "missing"], "defines no symbol"),
                         (["add", "x", "--symbol", "total"], "--symbol needs --file")):
        r = _anvil(repo, home, *args)
        assert r.returncode != 0 and needle in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
    r = _anvil(tmp_path, home, "list")
    assert r.returncode != 0 and "git work tree" in r.stderr

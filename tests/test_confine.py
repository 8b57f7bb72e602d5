"""Path confinement: model-chosen paths never escape the repository or reach .git/."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from anvil.workspace.confine import EditRefused, confined_path, normalize_rel
from anvil.workspace.edits import EditBlock, apply_edits


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "src").mkdir()
    (root / "src" / "a.py").write_text("x = 1\n")
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    d = tmp_path / "outside"
    d.mkdir()
    (d / "secret.txt").write_text("untouched\n")
    return d


@pytest.mark.parametrize("rel", ["src/a.py", "./src/a.py", "src//a.py", "src/../src/a.py", "new/dir/file.py"])
def test_ordinary_paths_are_allowed(repo: Path, rel: str) -> None:
    p = confined_path(repo, rel)
    assert str(p).startswith(os.path.realpath(repo))


@pytest.mark.parametrize("rel", [
    "../outside/secret.txt", "src/../../outside", "/etc/passwd", "~/x", "C:/Windows/x", "..\\outside\\x",
    ".git/config", ".git/hooks/pre-commit", "src/../.git/HEAD", ".GIT/config", "sub/.git/config",
    ".anvil/config.yaml", "./.anvil/runs/x/state.json",
    "", "   ", ".", "a\x00b",
])
def test_hostile_paths_are_refused(repo: Path, rel: str) -> None:
    with pytest.raises(EditRefused):
        confined_path(repo, rel)


def test_normalize(repo: Path) -> None:
    assert normalize_rel("./src//x/../a.py") == "src/a.py"
    assert normalize_rel("src\\a.py") == "src/a.py"


def test_symlinked_dir_leaving_the_tree_is_refused(repo: Path, outside: Path) -> None:
    (repo / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(EditRefused, match="symlink"):
        confined_path(repo, "link/secret.txt")
    with pytest.raises(EditRefused, match="symlink"):
        confined_path(repo, "link/new.txt")


def test_symlinked_file_leaving_the_tree_is_refused(repo: Path, outside: Path) -> None:
    (repo / "src" / "evil.py").symlink_to(outside / "secret.txt")
    with pytest.raises(EditRefused):
        confined_path(repo, "src/evil.py")


def test_symlink_into_git_is_refused(repo: Path) -> None:
    (repo / "hooks").symlink_to(repo / ".git" / "hooks", target_is_directory=True)
    with pytest.raises(EditRefused, match=".git"):
        confined_path(repo, "hooks/pre-commit")


def test_symlink_inside_the_tree_resolves_to_its_target(repo: Path) -> None:
    (repo / "alias").symlink_to(repo / "src", target_is_directory=True)
    assert confined_path(repo, "alias/a.py") == Path(os.path.realpath(repo / "src" / "a.py"))


def test_edits_through_hostile_paths_write_nothing_outside(repo: Path, outside: Path) -> None:
    (repo / "link").symlink_to(outside, target_is_directory=True)
    (repo / "src" / "evil.py").symlink_to(outside / "secret.txt")
    before_git = (repo / ".git" / "config").read_text()
    blocks = [
        EditBlock("link/secret.txt", "untouched", "pwned", 1),
        EditBlock("link/new.txt", "", "pwned", 2),
        EditBlock("src/evil.py", "untouched", "pwned", 3),
        EditBlock("../outside/secret.txt", "untouched", "pwned", 4),
        EditBlock(str(outside / "secret.txt"), "untouched", "pwned", 5),
        EditBlock(".git/config", "", "[core]\n\tfsmonitor = evil\n", 6),
        EditBlock(".git/hooks/x", "", "#!/bin/sh\nrm -rf /\n", 7),
        EditBlock("src/a.py", "x = 1", "x = 2", 8),  # the one legitimate edit still applies
    ]
    report = apply_edits(repo, blocks)
    assert [r.block.index for r in report.refused] == [1, 2, 3, 4, 5, 6, 7]
    assert report.changed_files == ["src/a.py"]
    assert (repo / "src" / "a.py").read_text() == "x = 2\n"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "untouched\n"
    assert (repo / ".git" / "config").read_text() == before_git
    assert not (repo / ".git" / "hooks" / "x").exists()
    assert "REFUSED" in report.feedback()


def test_hardlinked_file_is_replaced_not_written_through(repo: Path, outside: Path) -> None:
    """An atomic replace swaps the directory entry: the outside inode keeps its content."""
    os.link(outside / "secret.txt", repo / "src" / "hard.txt")
    report = apply_edits(repo, [EditBlock("src/hard.txt", "untouched", "changed", 1)])
    assert report.ok
    assert (repo / "src" / "hard.txt").read_text() == "changed\n"
    assert (outside / "secret.txt").read_text() == "untouched\n"

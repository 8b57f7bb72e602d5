"""Packaging: stages/, providers/, policies/ install as anvil.*, never as top-level packages."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAPPED = {"anvil": "anvil", "anvil.stages": "stages", "anvil.providers": "providers", "anvil.policies": "policies"}


def _package_dirs() -> set[str]:
    found = set()
    for top_pkg, folder in MAPPED.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            found.add(".".join([top_pkg, *rel.parts]) if rel.parts else top_pkg)
    return found


def test_every_package_folder_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    missing = _package_dirs() - listed
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"


def test_editable_install_gives_anvil_providers_and_no_top_level_providers(tmp_path: Path) -> None:
    code = "import anvil.providers, anvil.stages, anvil.policies\ntry:\n import providers\nexcept ImportError:\n print('ok')"  # noqa: E501
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


@pytest.mark.e2e
def test_wheel_install_layout(tmp_path: Path) -> None:
    target = tmp_path / "site"
    res = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-q",
                          "--target", str(target), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    top = {p.name for p in target.iterdir()}
    assert "anvil" in top
    assert not {"providers", "stages", "policies"} & top
    assert (target / "anvil/providers/types.py").is_file()
    assert (target / "anvil/policies/stage-policy.yaml").is_file()
    assert (target / "anvil/stages/prompts/build.md").is_file()  # stage prompts load via importlib.resources
    assert (target / "anvil/examples/js-textstats/package.json").is_file()  # `anvil demo` copies these
    for asset in ("live.js", "dashboard.css"):  # the dashboard serves them from the package, no CDN
        assert (target / "anvil/dashboard/static" / asset).is_file()

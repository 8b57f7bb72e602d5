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


@pytest.mark.e2e
@pytest.mark.timeout(900)  # a pip install of every dependency (from the cache when warm) and a whole demo
def test_built_wheel_installs_into_a_fresh_venv_and_runs_the_demo(tmp_path: Path) -> None:
    """What `pipx install` / `uv tool install` do: a built wheel, an isolated environment of its own, the
    dependencies from the package index (the pip cache keeps it quick), then `anvil demo` from there."""
    import json
    import os

    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(dist), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    [wheel] = list(dist.glob("anvil_agent-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    install = subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True,
                             timeout=1200)
    assert install.returncode == 0, install.stderr[-3000:]
    anvil = venv / "bin" / "anvil"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANVIL_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(ANVIL_HOME=str(tmp_path / "home"), PATH=f"{venv / 'bin'}:/usr/bin:/bin", NO_COLOR="1")
    # --no-tests: the fresh environment has no pytest, as a user's pipx environment would not
    demo = subprocess.run([str(anvil), "demo", "--no-tests", "--dir", str(tmp_path / "demo"), "--json"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert demo.returncode == 0, demo.stderr[-3000:]
    result = json.loads(demo.stdout)
    assert result["status"] == "done" and result["demo"] is True
    where = subprocess.run([str(py), "-c", "import anvil; print(anvil.__file__)"], capture_output=True, text=True,
                           cwd=tmp_path, env=env)
    assert where.stdout.startswith(str(venv))  # the installed copy ran, not this checkout

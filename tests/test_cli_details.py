"""Issue 17, the CLI details a daily user hits, through the real `anvil` binary (no scripted run needed):
help text, bare groups, exit codes, --json error objects, keys, completion, logs, doctor's codes."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path

from anvil.errors import EXIT_CODES
from anvil.providers.scripted.server import Match, Reply, ScriptedServer
from tests.e2e_helpers import ANVIL
from tests.foundation_helpers import git_repo, write

README = Path(__file__).resolve().parent.parent / "README.md"


def anvil(cwd: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None,
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ANVIL, *args], cwd=cwd, capture_output=True, text=True, timeout=120, input=stdin,
                          env={**os.environ, **(env or {})})


def test_bare_anvil_and_bare_groups_show_help_and_exit_0(tmp_path: Path) -> None:
    for args in ((), ("policy",), ("cost",), ("keys",)):
        p = anvil(tmp_path, *args)
        assert p.returncode == 0, (args, p.stderr)
        assert p.stdout.startswith("Usage: anvil") and "Commands:" in p.stdout, args


def test_help_names_values_not_types_and_summaries_are_whole(tmp_path: Path) -> None:
    run_help = anvil(tmp_path, "run", "--help").stdout
    assert "REQUEST" in run_help and "--budget DOLLARS" in run_help and "--base BRANCH" in run_help
    assert "--by GROUP" in anvil(tmp_path, "cost", "report", "--help").stdout
    everything = run_help + anvil(tmp_path, "--help").stdout + anvil(tmp_path, "cost", "report", "--help").stdout
    for raw in ("<float>", "{request}", "<list[str]>", "<text>", "TEXT", "FLOAT"):
        assert raw not in everything, raw
    top = anvil(tmp_path, "--help").stdout
    assert "..." not in top.split("Commands:")[1]  # click cuts long docstrings with "..."; summaries are whole


def test_every_exit_code_is_in_the_readme() -> None:
    text = README.read_text()
    section = text[text.index("## Exit codes"):]
    for code in EXIT_CODES:
        assert re.search(rf"^\| *{code} *\|", section, re.M), code


def test_json_errors_are_objects_on_stdout_for_every_command(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "r")
    cases = [("show", "nosuchrun", "--json"), ("runs", "rm", "nosuchrun", "--json"),
             ("cost", "report", "--by", "colour", "--json"), ("cost", "report", "--bogus", "--json"),
             ("policy", "explain", "--stage", "nope", "--json"), ("ask", "hi", "--model", "nope", "--json")]
    for args in cases:
        p = anvil(repo, *args)
        assert p.returncode == 2, (args, p.stderr)
        data = json.loads(p.stdout)
        assert set(data) == {"error", "exit_code", "hint"} and data["exit_code"] == 2, args
        assert data["error"] in p.stderr and "Traceback" not in p.stderr, args
    outside = anvil(tmp_path, "runs", "--json")  # not a git repo
    assert outside.returncode == 2 and "git work tree" in json.loads(outside.stdout)["error"]


def test_keys_set_list_path(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"ANVIL_HOME": str(home)}
    env_clean = {k: "" for k in os.environ if k.endswith("_API_KEY")}
    p = anvil(tmp_path, "keys", "set", "OPENAI_API_KEY", env={**env, **env_clean}, stdin="sk-secret-123\n")
    assert p.returncode == 0, p.stderr
    key_file = home / "keys.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert json.loads(key_file.read_text()) == {"OPENAI_API_KEY": "sk-secret-123"}
    listed = anvil(tmp_path, "keys", "list", env={**env, **env_clean})
    assert listed.returncode == 0 and listed.stdout.split() == ["OPENAI_API_KEY"]
    assert "sk-secret" not in listed.stdout + listed.stderr
    assert re.search(r"openai\s+OPENAI_API_KEY\s+key file", listed.stderr)
    as_json = json.loads(anvil(tmp_path, "keys", "list", "--json", env={**env, **env_clean}).stdout)
    assert as_json["stored"] == ["OPENAI_API_KEY"] and "sk-secret" not in json.dumps(as_json)
    assert anvil(tmp_path, "keys", "path", env=env).stdout.strip() == str(key_file)
    # the stored key is what a provider then uses
    models = json.loads(anvil(tmp_path, "models", "--json", "--offline", env={**env, **env_clean}).stdout)["models"]
    assert any(m["provider"] == "openai" and m["available"] for m in models)
    empty = anvil(tmp_path, "keys", "set", "OPENAI_API_KEY", env=env, stdin="\n")
    assert empty.returncode == 2 and "nothing stored" in empty.stderr


def test_completion_scripts_complete_commands(tmp_path: Path) -> None:
    for shell, marker in (("bash", "complete -o nosort -F"), ("zsh", "#compdef anvil"), ("fish", "complete")):
        p = anvil(tmp_path, "completion", shell)
        assert p.returncode == 0 and marker in p.stdout and "_ANVIL_COMPLETE" in p.stdout, shell
    # what the bash script asks the binary: the commands starting with "co"
    p = anvil(tmp_path, env={"_ANVIL_COMPLETE": "bash_complete", "COMP_WORDS": "anvil co", "COMP_CWORD": "1"})
    assert {"cost", "context", "completion"} <= {line.split(",")[1] for line in p.stdout.splitlines()}
    assert anvil(tmp_path, "completion", "tcsh").returncode == 2


def test_logs_says_where_the_logs_are(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "r")
    home = tmp_path / "home"
    p = anvil(repo, "logs", env={"ANVIL_HOME": str(home)})
    assert p.returncode == 0, p.stderr
    assert f"{home / 'ledger.db'}" in p.stdout and f"{home / 'logs' / 'llamacpp.log'}" in p.stdout
    assert str(repo / ".anvil" / "runs") in p.stdout
    data = json.loads(anvil(repo, "logs", "--json", env={"ANVIL_HOME": str(home)}).stdout)
    assert {e["what"] for e in data["logs"]} >= {"ledger", "llama.cpp server", "runs"}
    assert anvil(repo, "logs", "nosuchrun").returncode == 2


def _doctor_models(srv: ScriptedServer) -> str:
    return f"""
        providers:
          only: {{kind: openai, base_url: "{srv.url}/v1", api_key_env: ONLY_KEY}}
        models:
          - {{id: only-model, provider: only, tier: cheap, context_window: 100000, price: {{input: 1, output: 1}}}}
    """


def test_doctor_rejected_key_and_exit_codes(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "r")
    home = tmp_path / "home"
    with ScriptedServer() as srv:
        srv.add(Reply.json({"error": {"message": "bad key"}}, status=401), Match(method="GET", path="/v1/models"),
                times=None)
        write(repo / ".anvil/models.yaml", _doctor_models(srv))
        env = {"ANVIL_HOME": str(home), "ONLY_KEY": "sk-wrong"}
        p = anvil(repo, "doctor", "--json", "--trust-repo", env=env)  # the repo layer is the test's own
    data = json.loads(p.stdout)
    only = next(c for c in data["providers"] if c["provider"] == "only")
    assert only["key"].startswith("rejected (HTTP 401)") and "ONLY_KEY" in only["key"] and not only["ok"]
    usable = [c["provider"] for c in data["providers"] if c["ok"]]
    # exit 0 only when some provider is usable, else 3 (no usable model), never another code
    assert p.returncode == (0 if usable else 3), (p.returncode, usable)
    assert data["exit_code"] == p.returncode
    assert p.returncode in EXIT_CODES


def test_no_usable_model_lists_the_stages_tiers_in_its_order(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "r")
    write(repo / ".anvil/stage-policy.yaml", """
        stages:
          clarify: {prefer: [cheap, premium]}
    """)
    write(repo / ".anvil/models.yaml", """
        providers:
          p1: {kind: openai, base_url: "http://127.0.0.1:9/v1", api_key_env: NOPE_KEY_1}
        models:
          - {id: aa-premium, provider: p1, tier: premium, context_window: 100000, price: {input: 9, output: 9}}
          - {id: zz-cheap, provider: p1, tier: cheap, context_window: 100000, price: {input: 1, output: 1}}
    """)
    env = {k: "" for k in os.environ if k.endswith("_API_KEY")}
    env["ANVIL_HOME"] = str(tmp_path / "home")
    p = anvil(repo, "ask", "hi", "--stage", "clarify", "--trust-repo", env=env)
    assert p.returncode == 3, p.stderr  # the same code as `anvil run` for the same condition
    line = p.stderr.splitlines()[0]
    assert "prefer cheap > premium" in line and "model(s) left out" in line
    # tier by tier, as the stage prefers them (cheap first), with the count of each
    assert 0 < line.index("cheap [") < line.index("premium [") and "aa-premium" not in line.split("premium [")[0]
    assert re.search(r"cheap \[\d+\]: ", line) and re.search(r"premium \[\d+\]: ", line), line
    assert "policy explain --stage clarify" in p.stderr


def test_unknown_keys_get_a_did_you_mean(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "r")
    write(repo / ".anvil/stage-policy.yaml", """
        stages:
          review:
            timout: 30
    """)
    write(repo / ".anvil/models.yaml", """
        providers:
          anthropic: {base_ur: "http://127.0.0.1:9"}
    """)
    p = anvil(repo, "policy", "check", env={"ANVIL_HOME": str(tmp_path / "home")})
    assert p.returncode == 2
    assert ".anvil/stage-policy.yaml:3 stages.review.timout: unknown key 'timout'; did you mean 'timeout'?" \
        in p.stderr
    assert "providers.anthropic.base_ur: unknown key 'base_ur'; did you mean 'base_url'?" in p.stderr
    assert "allowed here: api_key_env, base_url, kind, options, price_list" in p.stderr


def test_the_readme_reference_names_every_key() -> None:
    from anvil.config import schema

    text = README.read_text()
    ref = text[text.index("### Configuration reference"):text.index("## How routing and fallback decide")]
    for cls in (schema.StagePolicyFile, schema.Budget, schema.StagePolicy, schema.OnRetry, schema.ModelsFile,
                schema.ProviderEntry, schema.ModelEntry, schema.PriceOverride, schema.WalkerSettings,
                schema.RepoConfig):
        for name in cls.model_fields:
            assert f"`{name}`" in ref or f"`{name}," in ref or f", {name}" in ref or f"{{{name}" in ref, \
                (cls.__name__, name)


def test_narrow_tables_keep_model_names_and_costs_whole(tmp_path: Path) -> None:
    from rich.cells import cell_len

    from anvil.ledger import Ledger
    from tests.test_cost_report import row

    home = tmp_path / "home"
    home.mkdir()
    names = ["openrouter/kimi-k2.7-code", "ollama/qwen3-coder-30b-a3b-instruct", "claude-opus-5-5"]
    with Ledger(home / "ledger.db") as led:
        led.record_many([row("/r", model=m, stage=s, dollars=d, inp=123_456, out=7_890)
                         for m, s, d in zip(names, ("plan", "build", "review"), ("1.2345", "0.0012", "12.5"),
                                            strict=True)])
    for width in (60, 80):
        env = {"ANVIL_HOME": str(home), "COLUMNS": str(width)}
        p = anvil(tmp_path, "cost", "report", "--all", "--by", "stage,model", env=env)
        assert p.returncode == 0, p.stderr
        for name in names:
            assert name in p.stdout, (width, name, p.stdout)
        for cost in ("$1.2345", "$0.0012", "$12.5000", "$13.7357"):
            assert cost in p.stdout, (width, cost, p.stdout)
        assert max(cell_len(line) for line in p.stdout.splitlines()) <= width
        models = anvil(tmp_path, "models", "--offline", env=env)
        assert models.returncode == 0
        listed = json.loads(anvil(tmp_path, "models", "--offline", "--json", env=env).stdout)["models"]
        for m in listed:
            assert m["id"] in models.stdout, (width, m["id"])
        assert max(cell_len(line) for line in models.stdout.splitlines()) <= width


def test_the_readme_picture_shows_no_temporary_path() -> None:
    svg = (README.parent / "docs" / "demo.svg").read_text()
    assert "/tmp" not in svg and "anvil-demo-" not in svg and "cd&#160;anvil-demo&#160;" in svg

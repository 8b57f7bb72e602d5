"""`anvil bench TASKS`, `anvil bench report DIR`, `anvil bench merge DIR... --out DIR`."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from anvil.errors import UserError

MODELS = ("scripted", "oracle", "noisy")
VERIFY = ("tests", "diff")


def _anvil_binary() -> str:
    here = Path(sys.executable).with_name("anvil")
    found = str(here) if here.is_file() else shutil.which("anvil")
    if not found:
        raise UserError("cannot find the `anvil` console script next to this Python or on PATH")
    return found


def run(tasks: str, policy: list[str] | None = None, workers: int = 1, limit: int | None = None,
        only: str | None = None, out: str | None = None, resume: bool = False, shard: str | None = None,
        model: str | None = None, verify: str = "tests", repos: str | None = None, config: str | None = None,
        noise: float = 0.25, seed: int = 0, timeout: float = 1800.0, json_output: bool = False) -> int:
    from anvil.bench.envs import Environments, load_config
    from anvil.bench.policies import load_policies
    from anvil.bench.report import report_json, report_text, write_svg
    from anvil.bench.runner import check_tasks, run_bench, write_manifest
    from anvil.bench.stats import pairs, summarise
    from anvil.bench.task import load_tasks, parse_shard, select
    from anvil.bench.taskrun import BenchSetup

    if model is not None and model not in MODELS:
        raise UserError(f"--model {model}: unknown", hint=f"use one of {', '.join(MODELS)} (or leave it out: "
                                                          "your configured models)")
    if verify not in VERIFY:
        raise UserError(f"--verify {verify}: unknown", hint="use tests or diff")
    if workers < 1:
        raise UserError("--workers must be at least 1")
    if not 0 <= noise <= 1:
        raise UserError("--noise is a rate between 0 and 1")
    shard_t = parse_shard(shard)
    task_path = Path(tasks).expanduser()
    all_tasks = load_tasks(task_path, Path(repos).expanduser() if repos else None)
    chosen = select(all_tasks, only=[i.strip() for i in only.split(",") if i.strip()] if only else None,
                    limit=limit, shard=shard_t)
    policies = load_policies(list(policy or []))
    out_dir = Path(out or "bench-out").expanduser().resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    bench_config = load_config(Path(config).expanduser() if config else None)
    base_env = dict(os.environ)
    setup = BenchSetup(out=out_dir, anvil=_anvil_binary(), model=model, verify=verify,  # type: ignore[arg-type]
                       envs=Environments(bench_config, base_env), noise=noise, seed=seed, timeout=timeout,
                       shard=shard or "", base_env=base_env)
    check_tasks(chosen, setup)
    write_manifest(out_dir, {"tasks": str(task_path.resolve()), "policies": [p.name for p in policies],
                             "model": model or "configured", "verify": verify, "shard": shard or "",
                             "selected": [t.id for t in chosen]}, resume)
    print(f"anvil bench: {len(chosen)} task(s) x {len(policies)} polic{'y' if len(policies) == 1 else 'ies'} "
          f"({', '.join(p.name for p in policies)}), model {model or 'configured'}, verify {verify}, "
          f"results in {out_dir}", file=sys.stderr)
    server = None
    if model is not None:
        from anvil.bench.server import BenchServer
        from anvil.demo.scripted_run import scripted_models_yaml

        server = BenchServer().start()
        setup.server, setup.home = server, out_dir / "home"
        setup.home.mkdir(exist_ok=True)
        (setup.home / "models.yaml").write_text(scripted_models_yaml(server.url), encoding="utf-8")
        from anvil.ledger.db import Ledger

        # created (and migrated) here, once: runs starting together must not race to create it
        Ledger(setup.home / "ledger.db").close()
    try:
        outcome = run_bench(chosen, policies, setup, workers=workers, resume=resume)
    finally:
        if server is not None:
            server.stop()
    chosen_ids = {t.id for t in chosen}
    rows = [r for r in outcome.rows if r.task in chosen_ids]
    order = [p.name for p in policies]
    svg = write_svg(out_dir, outcome.rows, order)
    if json_output:
        from anvil.ui.output import print_json

        print_json(report_json(rows, svg, order))
    else:
        print(report_text(summarise(rows, order), pairs(rows, order), svg), end="")
    errors = [r for r in rows if not r.done]
    for r in errors:
        print(f"anvil bench: {r.task} · {r.policy}: could not {'verify' if r.failure_stage == 'verify' else 'run'}: "
              f"{r.failure_reason}", file=sys.stderr)
    return 1 if errors else 0


def report(directory: str, json_output: bool = False, csv_output: bool = False) -> int:
    from anvil.bench.report import policy_order, report_csv, report_json, report_text, write_svg
    from anvil.bench.results import RESULTS, read_rows
    from anvil.bench.stats import pairs, summarise

    folder = Path(directory).expanduser()
    if not (folder / RESULTS).is_file():
        raise UserError(f"{folder}: no {RESULTS} here", hint="give the --out folder of an `anvil bench` run")
    rows = read_rows(folder / RESULTS)
    order = policy_order(folder)
    svg = write_svg(folder, rows, order)
    if json_output:
        from anvil.ui.output import print_json

        print_json(report_json(rows, svg, order))
    elif csv_output:
        print(report_csv(rows, order), end="")
    else:
        print(report_text(summarise(rows, order), pairs(rows, order), svg), end="")
    return 0


def merge(directories: list[str], out: str, json_output: bool = False) -> int:
    from anvil.bench.merge import merge as merge_folders

    folders = [Path(d).expanduser() for d in directories]
    rows, attempts = merge_folders(folders, Path(out).expanduser())
    if json_output:
        from anvil.ui.output import print_json

        print_json({"out": out, "rows": rows, "ledger_attempts": attempts, "from": [str(f) for f in folders]})
    else:
        print(f"merged {len(folders)} folder(s) into {out}: {rows} result row(s), {attempts} ledger attempt(s)")
        print(f"report: anvil bench report {out}")
    return 0



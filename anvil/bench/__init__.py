"""`anvil bench`: run anvil on a task set, verify each result, compare policies (DESIGN.md 15, 18).

    task.py       the Task every format loads into; load_tasks dispatches by format
    swebench.py   SWE-bench JSONL          polyglot.py   aider's polyglot (exercism) layout
    owntasks.py   a team's own YAML tasks  repos.py      mirrors and isolated clones at a base commit
    envs.py       the bench config file and the per-repository environments (venvs, cached)
    patches.py    unified diffs: files, hunks, whitespace-insensitive comparison
    wire.py       what a model request showed (prompt and tool-result text), tool calls per protocol
    oracle.py     the oracle model: knows the gold patch, may only quote what anvil showed it
    noisy.py      the noisy model: the oracle with injected failures
    server.py     the model server of a bench (one loopback server, one responder per run)
    taskrun.py    one task under one policy: clone, `anvil run`, verify, one result row
    verify.py     verification: tests (test_patch, FAIL_TO_PASS / PASS_TO_PASS) or the gold diff
    results.py    result rows (JSONL), resume        runner.py     tasks x policies, workers, shards
    progress.py   the live table on stderr           stats.py      Wilson intervals, summaries, pairs
    report.py     `bench report` text / JSON / CSV   svg.py        resolved % against $ per task
    merge.py      `bench merge`: shard folders (results and ledger rows) into one
"""

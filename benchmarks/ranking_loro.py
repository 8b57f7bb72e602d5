"""Does anvil's file ranking generalize? Leave-one-repository-out, an untouched part, plain chunk BM25 beside it.

    python benchmarks/ranking_loro.py /work/.mirror --workdir DIR [--untouched] [--tune-defaults]
                                      [--weights name=value,...] [--passes N] [--misses]

The tasks are real bug fixes (a problem statement, the files its fix changed):
the retrieval dev set (flask, requests, pytest) plus SWE-bench Lite's own dev
split (``swebench-lite-devsplit.jsonl``). The split below is fixed up front,
before any tuning, and written here so it cannot drift:

- tuning part: flask, requests, pytest (the dev set) and pvlib, astroid;
- untouched part: marshmallow, pydicom, sqlfluff (12 tasks). Nothing here tunes
  on it; ``--untouched`` evaluates it once, with the shipped ``RankWeights()``.
- pyvista's one task is skipped (no mirror).

It prints, per repository and overall, acc@1 and acc@5 of anvil's ranking and
of plain BM25 over the same tree-sitter chunks (file = its best chunk, query =
the raw request), computed in this one process on the same index:

1. ``RankWeights()`` (the shipped defaults) on the tuning part, in sample;
2. leave-one-repository-out: for each tuning repository, the weights are tuned
   (coordinate search over a small grid of ``RankWeights`` fields, from the
   grid's middle, ``START``) on the other tuning repositories and evaluated on
   the held-out one; then each signal is switched off in those weights, to
   show what it earns on the held-out repositories;
3. with ``--untouched``: the shipped defaults on the untouched part.

``--tune-defaults`` tunes on the whole tuning part (from ``START``, the same
search) and prints the weights: the ones ``RankWeights`` ships. The tuning objective is the mean over repositories
(each repository counts the same, whatever its number of tasks) of acc@5 +
0.5 acc@1 + 0.25 MRR.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from retrieval import checkout, find_mirror, parse_weights  # noqa: E402

from anvil.retrieval.index import SearchIndex, open_index  # noqa: E402
from anvil.retrieval.ranking import ChunkReader, Ranker, RankWeights  # noqa: E402
from anvil.retrieval.tokens import term_counts  # noqa: E402

BENCH = Path("/work/shared/bench")
DEV = BENCH / "retrieval-dev.jsonl"
DEVSPLIT = BENCH / "swebench-lite-devsplit.jsonl"
UNTOUCHED = ("marshmallow-code/marshmallow", "pydicom/pydicom", "sqlfluff/sqlfluff")
SKIPPED = ("pyvista/pyvista",)  # no mirror

# The coordinate search: each field tried at these values, the others held.
GRID: dict[str, tuple[float, ...]] = {
    "second_chunks": (0.0, 0.25, 0.5, 0.75),
    "query_tf": (0.0, 0.25, 0.5, 1.0),
    "fenced_weight": (0.25, 0.5, 0.75, 1.0),
    "fenced_mention": (0.15, 0.3, 0.6, 1.0),
    "test_prior": (0.3, 0.45, 0.6, 0.8),
    "doc_prior": (0.25, 0.4, 0.6, 0.8),
    "config_prior": (0.3, 0.5, 0.7, 1.0),
    "path_mention": (0.0, 0.3, 0.6, 1.0),
    "traceback": (0.0, 0.15, 0.3, 0.5),
    "deepest_frame": (0.0, 0.15, 0.3, 0.5),
    "module_mention": (0.0, 0.2, 0.4, 0.8),
    "identifier": (0.0, 0.2, 0.45, 0.7),
    "graph": (0.0, 0.05, 0.1, 0.2),
    "quoted_code": (0.0, 0.3, 0.6, 1.0),
    "coverage": (0.0, 0.1, 0.2, 0.4),
    "chunk_symbol_boost": (0.0, 0.25, 0.5, 1.0),
    "bm25_seat": (0, 1, 2),
}


# Where every tuning starts: the middle of each field's grid, chosen before any data was seen (the fields
# outside the grid keep their RankWeights value), so no held-out repository leaks in through the start.
START = replace(RankWeights(), **{name: values[len(values) // 2] for name, values in GRID.items()})

# Each signal, switched off (a prior of 1.0 is no prior): does it earn its place on held-out repositories?
SIGNALS: dict[str, dict[str, float]] = {
    "next chunks": {"second_chunks": 0.0},
    "query shaping": {"query_tf": 0.0, "fenced_weight": 1.0},
    "test prior": {"test_prior": 1.0},
    "doc/config/example priors": {"doc_prior": 1.0, "config_prior": 1.0, "example_prior": 1.0, "vendored_prior": 1.0},
    "path mentions": {"path_mention": 0.0},
    "tracebacks": {"traceback": 0.0, "deepest_frame": 0.0},
    "module mentions": {"module_mention": 0.0},
    "identifiers, flags": {"identifier": 0.0},
    "quoted code": {"quoted_code": 0.0},
    "coverage": {"coverage": 0.0},
    "repository map": {"graph": 0.0},
    "chunk symbol boost": {"chunk_symbol_boost": 0.0},
    "BM25 seat (the floor)": {"bm25_seat": 0},
}


@dataclass
class Task:
    instance_id: str
    repo: str
    gold: list[str]
    request: str
    index: SearchIndex
    reader: ChunkReader
    bm25_ranked: list[str]


def load_rows(include_untouched: bool) -> list[dict]:
    rows = [json.loads(line) for line in DEV.read_text().splitlines() if line.strip()]
    rows += [json.loads(line) for line in DEVSPLIT.read_text().splitlines() if line.strip()]
    out, seen = [], set()
    for r in rows:
        if r["instance_id"] in seen or r["repo"] in SKIPPED:
            continue
        if (r["repo"] in UNTOUCHED) != include_untouched:
            continue
        seen.add(r["instance_id"])
        out.append(r)
    return out


def bm25_chunk(index: SearchIndex, request: str) -> list[str]:
    """Plain BM25 over the chunks: the raw request's terms, each file scored by its best chunk."""
    cs = index.bm25.scores(list(term_counts(request)))
    best = np.zeros(len(index.paths), dtype=np.float32)
    np.maximum.at(best, index.chunk_file, cs)
    return [index.paths[int(i)] for i in np.argsort(-best, kind="stable") if best[i] > 0]


def load_tasks(mirrors: Path, work: Path, rows: list[dict]) -> list[Task]:
    tasks = []
    for n, r in enumerate(rows, 1):
        root = checkout(find_mirror(mirrors, r["repo"]), r["base_commit"],
                        work / r["repo"].replace("/", "+") / r["base_commit"][:12])
        t = time.process_time()
        index, _ = open_index(root)
        print(f"[{n}/{len(rows)}] {r['instance_id']}: {len(index.paths)} files, {index.n_chunks} chunks, "
              f"{time.process_time() - t:.2f} s CPU", file=sys.stderr)
        tasks.append(Task(r["instance_id"], r["repo"], list(r["changed_files"]), r["problem_statement"], index,
                          ChunkReader(root, index), bm25_chunk(index, r["problem_statement"])))
    return tasks


def scores(ranked: list[str], gold: list[str]) -> tuple[float, float, float]:
    """(acc@1, acc@5, MRR): acc@k = every changed file in the top k."""
    pos = {p: i for i, p in enumerate(ranked)}
    ranks = [pos.get(g) for g in gold]
    acc = [float(all(r is not None and r < k for r in ranks)) for k in (1, 5)]
    first = min((r for r in ranks if r is not None), default=None)
    return acc[0], acc[1], 0.0 if first is None else 1.0 / (first + 1)


def anvil_ranked(task: Task, weights: RankWeights) -> list[str]:
    ranking = Ranker(task.index, weights).rank(task.request, task.reader)
    return [task.index.paths[i] for i in ranking.order]


class Evaluator:
    """Scores of each task under a weight setting, memoised (the search revisits settings)."""

    def __init__(self, tasks: list[Task]):
        self.tasks = tasks
        self.memo: dict[tuple[str, RankWeights], tuple[float, float, float]] = {}

    def task(self, t: Task, w: RankWeights) -> tuple[float, float, float]:
        key = (t.instance_id, w)
        got = self.memo.get(key)
        if got is None:
            got = self.memo[key] = scores(anvil_ranked(t, w), t.gold)
        return got

    def objective(self, repos: list[str], w: RankWeights) -> float:
        per_repo = []
        for repo in repos:
            s = [self.task(t, w) for t in self.tasks if t.repo == repo]
            per_repo.append(statistics.mean(a5 + 0.5 * a1 + 0.25 * mrr for a1, a5, mrr in s))
        return statistics.mean(per_repo)

    def tune(self, repos: list[str], start: RankWeights, passes: int, label: str) -> RankWeights:
        best, best_obj = start, self.objective(repos, start)
        for p in range(passes):
            moved = False
            for name, values in GRID.items():
                for v in values:
                    cand = replace(best, **{name: v})
                    if cand == best:
                        continue
                    obj = self.objective(repos, cand)
                    if obj > best_obj + 1e-9:
                        best, best_obj, moved = cand, obj, True
            print(f"  tune {label} pass {p + 1}: objective {best_obj:.4f}", file=sys.stderr)
            if not moved:
                break
        return best


def changed(w: RankWeights) -> str:
    base = RankWeights()
    diff = [f"{f.name}={getattr(w, f.name)}" for f in fields(w) if getattr(w, f.name) != getattr(base, f.name)]
    return ",".join(diff) or "(the defaults)"


def table(title: str, rows: list[tuple[str, list[tuple[float, float, float]], list[tuple[float, float, float]]]]
          ) -> list[str]:
    lines = [title, f"  {'repository':<30}{'tasks':>6}{'anvil acc@1':>13}{'bm25 acc@1':>12}"
                    f"{'anvil acc@5':>13}{'bm25 acc@5':>12}  floor"]
    all_a: list[tuple[float, float, float]] = []
    all_b: list[tuple[float, float, float]] = []
    for repo, a, b in rows:
        all_a += a
        all_b += b
        a1, a5 = statistics.mean(x[0] for x in a), statistics.mean(x[1] for x in a)
        b1, b5 = statistics.mean(x[0] for x in b), statistics.mean(x[1] for x in b)
        lines.append(f"  {repo:<30}{len(a):>6}{a1:>13.3f}{b1:>12.3f}{a5:>13.3f}{b5:>12.3f}  "
                     f"{'ok' if a5 >= b5 else 'BELOW'}")
    if all_a:
        a1, a5 = statistics.mean(x[0] for x in all_a), statistics.mean(x[1] for x in all_a)
        b1, b5 = statistics.mean(x[0] for x in all_b), statistics.mean(x[1] for x in all_b)
        lines.append(f"  {'overall':<30}{len(all_a):>6}{a1:>13.3f}{b1:>12.3f}{a5:>13.3f}{b5:>12.3f}")
    return lines


def _ablation_row(name: str, got: dict[str, list[tuple[float, float, float]]],
                  full: dict[str, list[tuple[float, float, float]]]) -> str:
    flat = [x for v in got.values() for x in v]
    means = [statistics.mean(x[i] for x in flat) for i in range(3)]
    worse = [r.split("/")[1] for r in got if sum(x[1] for x in got[r]) < sum(x[1] for x in full[r])]
    better = [r.split("/")[1] for r in got if sum(x[1] for x in got[r]) > sum(x[1] for x in full[r])]
    return (f"  {name:<28}{means[0]:>8.3f}{means[1]:>8.3f}{means[2]:>8.3f}   "
            f"{', '.join(worse) or '-'} / {', '.join(better) or '-'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mirrors", type=Path)
    ap.add_argument("--workdir", type=Path, default=None, help="keep checkouts (and their index caches) here")
    ap.add_argument("--weights", default=None, help="RankWeights overrides for the in-sample and untouched rows")
    ap.add_argument("--passes", type=int, default=3, help="coordinate-search passes per tuning")
    ap.add_argument("--no-loro", action="store_true", help="skip the leave-one-repository-out tuning")
    ap.add_argument("--tune-defaults", action="store_true", help="tune on the whole tuning part, print the weights")
    ap.add_argument("--untouched", action="store_true", help="also evaluate the untouched part (report once)")
    ap.add_argument("--misses", action="store_true", help="list tuning tasks anvil misses at top 5")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="anvil-loro-"))
    weights = parse_weights(args.weights)
    tasks = load_tasks(args.mirrors, work, load_rows(include_untouched=False))
    repos = sorted({t.repo for t in tasks})
    ev = Evaluator(tasks)
    cpu = time.process_time()
    out: list[str] = [f"weights: {changed(weights)}", ""]

    def block(title: str, w_of: dict[str, RankWeights], ts: list[Task], rs: list[str]) -> list[str]:
        rows = []
        for repo in rs:
            mine = [t for t in ts if t.repo == repo]
            rows.append((repo, [ev.task(t, w_of[repo]) for t in mine], [scores(t.bm25_ranked, t.gold) for t in mine]))
        return table(title, rows)

    out += block("In sample: the given weights on the tuning part", {r: weights for r in repos}, tasks, repos)
    if args.misses:
        out.append("  missed at top 5:")
        for t in tasks:
            ranked = anvil_ranked(t, weights)
            if not set(t.gold) <= set(ranked[:5]):
                out.append(f"    {t.instance_id}: gold {t.gold}\n      anvil {ranked[:5]}\n"
                           f"      bm25  {t.bm25_ranked[:5]}")
    if not args.no_loro:
        loro: dict[str, RankWeights] = {}
        for held in repos:
            loro[held] = ev.tune([r for r in repos if r != held], START, args.passes, f"without {held}")
        out += ["", *block("Leave one repository out: tuned on the other tuning repositories, scored on this one",
                           loro, tasks, repos)]
        out += ["  weights per held-out repository:"] + [f"    {r}: {changed(w)}" for r, w in loro.items()]
        out += ["", "Each signal switched off in the held-out repository's weights (leave one repository out):",
                f"  {'signal':<28}{'acc@1':>8}{'acc@5':>8}{'MRR':>8}   repositories worse / better at acc@5"]
        full = {r: [ev.task(t, loro[r]) for t in tasks if t.repo == r] for r in repos}
        out.append(_ablation_row("(all on)", full, full))
        for name, off in SIGNALS.items():
            got = {r: [ev.task(t, replace(loro[r], **off)) for t in tasks if t.repo == r] for r in repos}
            out.append(_ablation_row(name, got, full))
    if args.tune_defaults:
        tuned = ev.tune(repos, START, args.passes, "on the whole tuning part")
        out += ["", f"Tuned on the whole tuning part: {changed(tuned)}"]
    if args.untouched:
        held_tasks = load_tasks(args.mirrors, work, load_rows(include_untouched=True))
        held_repos = sorted({t.repo for t in held_tasks})
        ev.tasks = tasks + held_tasks
        out += ["", *block("Untouched part (never tuned on): the given weights", {r: weights for r in held_repos},
                           held_tasks, held_repos)]
    out.append(f"\nsearch CPU {time.process_time() - cpu:.1f} s, {len(ev.memo)} rankings")
    print("\n".join(out))


if __name__ == "__main__":
    main()

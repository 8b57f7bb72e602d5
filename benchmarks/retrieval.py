"""Retrieval benchmark on real bug fixes (SWE-bench Lite/Verified instances).

    python benchmarks/retrieval.py MIRRORS_DIR [--data retrieval-dev.jsonl] [--split all|A|B]
                                   [--limit N] [--weights name=value,...] [--workdir DIR]

MIRRORS_DIR holds bare git mirrors of the instances' repositories, found as
``<owner>+<name>/repo``, ``<owner>+<name>``, ``<name>.git`` or ``<name>``
(the layout of anvil's `fetch` tool is the first). Each base commit is
checked out into WORKDIR (default: a temp dir) as a throw-away repository
that borrows the mirror's objects (git alternates), so nothing is written
into a mirror. For each problem statement it runs three methods in this one
process and prints, per method: file-level recall@1/3/5/10, accuracy@1/@5
(all changed files in the top k), MRR, the share of instances whose changed
files all land in an 8k / 13k / 27k token context pack, and timings (cold
index, warm index, query).

Methods:
- ``anvil``: anvil.retrieval as shipped (chunks, BM25, mentions, repository map);
- ``bm25-file``: plain BM25 over whole files, the pack filled with whole files;
- ``bm25-chunk``: plain BM25 over the same tree-sitter chunks, each file scored
  by its best chunk, the pack filled with chunks by score.

``--split A`` / ``B`` keeps a deterministic half of the instances (by a hash of
the id), so weights chosen on one half can be checked on the other.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from anvil.retrieval.bm25 import Bm25
from anvil.retrieval.index import cache_dir, open_index
from anvil.retrieval.ranking import RankWeights
from anvil.retrieval.retriever import Retriever
from anvil.retrieval.tokens import estimate_tokens, term_counts

BUDGETS = (8000, 13000, 27000)
KS = (1, 3, 5, 10)
DEFAULT_DATA = Path("/work/shared/bench/retrieval-dev.jsonl")


def find_mirror(mirrors: Path, repo: str) -> Path:
    owner, name = repo.split("/")
    for cand in (mirrors / f"{owner}+{name}" / "repo", mirrors / f"{owner}+{name}", mirrors / f"{name}.git",
                 mirrors / name, mirrors / owner / name):
        if (cand / "objects").is_dir() or (cand / ".git").is_dir():
            return cand if (cand / "objects").is_dir() else cand / ".git"
    sys.exit(f"error: no git mirror of {repo} under {mirrors}")


def checkout(mirror: Path, commit: str, dest: Path) -> Path:
    """A fresh repository at ``dest`` with ``commit`` checked out, borrowing the mirror's objects."""
    if (dest / ".anvil-bench-ok").exists():
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    run = lambda *a: subprocess.run(["git", *a], cwd=dest, check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    (dest / ".git" / "objects" / "info" / "alternates").write_text(str(mirror.resolve() / "objects") + "\n")
    run("read-tree", commit)
    # A mirror may lack its largest blobs (data files): check out everything else.
    done = subprocess.run(["git", "checkout-index", "-a", "-f"], cwd=dest, capture_output=True, text=True)
    if done.returncode and "unable to read sha1 file" not in done.stderr:
        raise subprocess.CalledProcessError(done.returncode, done.args, done.stdout, done.stderr)
    (dest / ".git" / "info" / "exclude").write_text(".anvil-bench-ok\n.anvil/\n")
    (dest / ".anvil-bench-ok").write_text(commit)
    return dest


def split_of(instance_id: str) -> str:
    return "A" if hashlib.sha1(instance_id.encode()).digest()[0] % 2 == 0 else "B"


class Metrics:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, ranked: list[str], gold: list[str], packed: dict[int, set[str]], query_s: float) -> None:
        gold_set = set(gold)
        pos = {p: i for i, p in enumerate(ranked)}
        ranks = [pos.get(g) for g in gold]
        row: dict = {"query_s": query_s}
        for k in KS:
            row[f"recall@{k}"] = sum(1 for r in ranks if r is not None and r < k) / len(gold)
            row[f"acc@{k}"] = float(all(r is not None and r < k for r in ranks))
        first = min((r for r in ranks if r is not None), default=None)
        row["mrr"] = 0.0 if first is None else 1.0 / (first + 1)
        for b in BUDGETS:
            row[f"pack{b // 1000}k"] = float(gold_set <= packed[b])
        self.rows.append(row)

    def summary(self) -> dict[str, float]:
        keys = [f"recall@{k}" for k in KS] + ["acc@1", "acc@5", "mrr"] + [f"pack{b // 1000}k" for b in BUDGETS]
        out = {k: statistics.mean(r[k] for r in self.rows) for k in keys}
        out["query_ms"] = 1000 * statistics.median(r["query_s"] for r in self.rows)
        return out


def greedy_pack(items: list[tuple[str, int]], budget: int) -> set[str]:
    """Paths of (path, tokens) items that fit, taken in order, skipping what does not fit."""
    used, got = 0, set()
    for path, tok in items:
        if used + tok <= budget:
            used += tok
            got.add(path)
    return got


def run_baselines(root: Path, retr: Retriever, request: str, file_bm25: tuple[Bm25, list[str], list[int]],
                  m_file: Metrics, m_chunk: Metrics, gold: list[str]) -> None:
    idx = retr.index
    q = list(term_counts(request))
    # Whole files.
    t = time.perf_counter()
    bm, paths, toks = file_bm25
    s = bm.scores(q)
    order = [int(i) for i in np.argsort(-s, kind="stable") if s[i] > 0]
    ranked = [paths[i] for i in order]
    packs = {b: greedy_pack([(paths[i], toks[i] + 20) for i in order], b) for b in BUDGETS}
    m_file.add(ranked, gold, packs, time.perf_counter() - t)
    # Chunks, file = best chunk.
    t = time.perf_counter()
    cs = idx.bm25.scores(q)
    best = np.zeros(len(idx.paths), dtype=np.float32)
    np.maximum.at(best, idx.chunk_file, cs)
    order = [int(i) for i in np.argsort(-best, kind="stable") if best[i] > 0]
    ranked = [idx.paths[i] for i in order]
    corder = [int(i) for i in np.argsort(-cs, kind="stable") if cs[i] > 0]
    items = [(idx.paths[idx.chunk_file[c]], int(idx.chunk_tokens[c]) + 20) for c in corder]
    packs = {b: greedy_pack(items, b) for b in BUDGETS}
    m_chunk.add(ranked, gold, packs, time.perf_counter() - t)


def build_file_bm25(root: Path, paths: list[str]) -> tuple[Bm25, list[str], list[int]]:
    docs, toks = [], []
    for p in paths:
        text = (root / p).read_bytes().decode("utf-8", errors="replace")
        docs.append(term_counts(p + "\n" + text))
        toks.append(estimate_tokens(text))
    return Bm25.build(docs), paths, toks


def engine_comparison(root: Path, retr: Retriever, request: str) -> list[str]:
    """Build and query times of the BM25 engines on one repository's chunks."""
    from anvil.retrieval.ranking import ChunkReader
    from anvil.retrieval.tokens import tokenize

    idx = retr.index
    reader = ChunkReader(root, idx)
    docs = [tokenize(idx.paths[idx.chunk_file[c]] + "\n" + reader(c)) for c in range(idx.n_chunks)]
    counts = [term_counts(idx.paths[idx.chunk_file[c]] + "\n" + reader(c)) for c in range(idx.n_chunks)]
    query = tokenize(request)
    lines = [f"BM25 engines on {idx.n_chunks} chunks of {root.name}, one {len(query)}-term query:"]
    t = time.perf_counter()
    ours = Bm25.build(counts)
    build = time.perf_counter() - t
    t = time.perf_counter()
    ours.scores(query)
    lines.append(
        f"  anvil Bm25 (numpy CSC)   build {build * 1000:8.1f} ms   query {(time.perf_counter() - t) * 1000:7.2f} ms"
    )
    try:
        from rank_bm25 import BM25Okapi

        t = time.perf_counter()
        rb = BM25Okapi(docs)
        build = time.perf_counter() - t
        t = time.perf_counter()
        rb.get_scores(query)
        lines.append(
            f"  rank-bm25 BM25Okapi      build {build * 1000:8.1f} ms"
            f"   query {(time.perf_counter() - t) * 1000:7.2f} ms"
        )
    except ImportError:
        lines.append("  rank-bm25: not installed")
    try:
        import bm25s

        t = time.perf_counter()
        model = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
        model.index(docs, show_progress=False)
        build = time.perf_counter() - t
        t = time.perf_counter()
        model.get_scores(query)
        lines.append(
            f"  bm25s (lucene)           build {build * 1000:8.1f} ms"
            f"   query {(time.perf_counter() - t) * 1000:7.2f} ms"
        )
    except ImportError:
        lines.append("  bm25s: not installed")
    return lines


def parse_weights(spec: str | None) -> RankWeights:
    w = RankWeights()
    if not spec:
        return w
    types = {f.name: f.type for f in fields(RankWeights)}
    changes = {}
    for item in spec.split(","):
        k, v = item.split("=")
        changes[k] = int(v) if types[k] in ("int", int) else float(v)
    return replace(w, **changes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mirrors", type=Path)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--split", choices=["all", "A", "B"], default="all")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--weights", default=None, help="RankWeights overrides, e.g. graph=0.3,test_prior=0.5")
    ap.add_argument("--workdir", type=Path, default=None, help="keep checkouts here between runs")
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--misses", action="store_true", help="print instances anvil misses at top 5")
    args = ap.parse_args()
    rows = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()]
    if args.split != "all":
        rows = [r for r in rows if split_of(r["instance_id"]) == args.split]
    if args.limit:
        rows = rows[: args.limit]
    weights = parse_weights(args.weights)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="anvil-bench-"))
    metrics = {"anvil": Metrics(), "bm25-file": Metrics(), "bm25-chunk": Metrics()}
    per_group: dict[str, Metrics] = {}  # anvil, by repository and by split
    timings: dict[str, dict[str, list[float]]] = {}
    misses = []
    engines: list[str] = []
    for n, row in enumerate(rows, 1):
        mirror = find_mirror(args.mirrors, row["repo"])
        root = checkout(mirror, row["base_commit"], work / row["repo"].replace("/", "+") / row["base_commit"][:12])
        shutil.rmtree(cache_dir(root), ignore_errors=True)
        t, c = time.perf_counter(), time.process_time()
        open_index(root)
        cold, cold_cpu = time.perf_counter() - t, time.process_time() - c
        t, c = time.perf_counter(), time.process_time()
        retr = Retriever.open(root, weights=weights)
        warm, warm_cpu = time.perf_counter() - t, time.process_time() - c
        tm = timings.setdefault(row["repo"], {"cold": [], "warm": [], "cold_cpu": [], "warm_cpu": [], "files": [],
                                              "chunks": []})
        tm["cold"].append(cold)
        tm["warm"].append(warm)
        tm["cold_cpu"].append(cold_cpu)
        tm["warm_cpu"].append(warm_cpu)
        tm["files"].append(len(retr.index.paths))
        tm["chunks"].append(retr.index.n_chunks)
        gold = row["changed_files"]
        request = row["problem_statement"]
        t = time.perf_counter()
        ranking, _reader = retr.rank(request)
        ranked = [retr.index.paths[i] for i in ranking.order]
        packs = {}
        q_s = time.perf_counter() - t
        for b in BUDGETS:
            t = time.perf_counter()
            packs[b] = set(retr.query(request, b).packed_paths())
            if b == BUDGETS[0]:
                q_s = time.perf_counter() - t  # a full query: rank + pack at 8k
        metrics["anvil"].add(ranked, gold, packs, q_s)
        for group in (row["repo"], f"split {split_of(row['instance_id'])}"):
            per_group.setdefault(group, Metrics()).add(ranked, gold, packs, q_s)
        top5 = ranked[:5]
        if not set(gold) <= set(top5):
            misses.append((row["instance_id"], gold, top5))
        if not args.no_baselines:
            fb = build_file_bm25(root, retr.index.paths)
            run_baselines(root, retr, request, fb, metrics["bm25-file"], metrics["bm25-chunk"], gold)
        if not args.no_baselines and not engines and row["repo"] == "pytest-dev/pytest":
            engines = engine_comparison(root, retr, request)
        print(f"[{n}/{len(rows)}] {row['instance_id']} cold {cold:.2f}s warm {warm:.3f}s", file=sys.stderr)
    print(f"\n{len(rows)} instances (split {args.split}); weights: {weights}\n")
    cols = [f"recall@{k}" for k in KS] + ["acc@1", "acc@5", "mrr", "pack8k", "pack13k", "pack27k", "query_ms"]
    print(f"{'method':<12}" + "".join(f"{c:>10}" for c in cols))
    for name, m in metrics.items():
        if not m.rows:
            continue
        s = m.summary()
        print(f"{name:<12}" + "".join(f"{s[c]:>10.3f}" if c != "query_ms" else f"{s[c]:>10.1f}" for c in cols))
    if len(per_group) > 2:
        print("\nanvil by repository and by split:")
        for name, m in sorted(per_group.items()):
            s = m.summary()
            print(f"  {name:<20}{len(m.rows):>4}" + "".join(
                f"{s[c]:>10.3f}" if c != "query_ms" else f"{s[c]:>10.1f}" for c in cols))
    # Wall time depends on what else the machine runs; CPU time (this process) much less.
    print(f"\n{'repository':<20}{'files':>7}{'chunks':>8}{'cold s median/max':>20}{'cold cpu s':>12}"
          f"{'warm s median/max':>20}{'warm cpu s':>12}")
    for repo, tm in timings.items():
        print(f"{repo:<20}{int(statistics.median(tm['files'])):>7}{int(statistics.median(tm['chunks'])):>8}"
              f"{statistics.median(tm['cold']):>13.3f}/{max(tm['cold']):.3f}{statistics.median(tm['cold_cpu']):>12.3f}"
              f"{statistics.median(tm['warm']):>13.3f}/{max(tm['warm']):.3f}{statistics.median(tm['warm_cpu']):>12.3f}")
    if engines:
        print("\n" + "\n".join(engines))
    if args.misses:
        print("\nmissed at top 5 (anvil):")
        for iid, gold, top5 in misses:
            print(f"  {iid}: gold {gold}\n      top5 {top5}")


if __name__ == "__main__":
    main()

"""The noisy model: the oracle with the failures real models make, injected at a set rate.

It measures recovery: does anvil still land the task when a model answers with broken JSON,
a SEARCH block that almost matches, an edit to a file nobody planned, or a rate limit? Each
request draws once from a random source seeded per task, so a run is reproducible; what was
injected is kept in `injected` for the result row.
"""

from __future__ import annotations

import random
import threading
from dataclasses import replace

from anvil.bench.oracle import Oracle
from anvil.demo.scripted_run import stage_of
from anvil.providers.scripted.model import ScriptedAnswer, ScriptedFailure
from anvil.providers.scripted.reply import RecordedRequest

STRUCTURED = frozenset({"clarify", "plan", "validate", "review", "ship"})
KINDS = ("malformed_json", "near_miss_search", "unplanned_file", "rate_limit")


def _near_miss(text: str) -> str | None:
    """The first SEARCH block with one character of one line changed (a model misremembering)."""
    at = text.find("<<<<<<< SEARCH\n")
    if at < 0:
        return None
    start = at + len("<<<<<<< SEARCH\n")
    end = text.find("=======\n", start)
    lines = text[start:end].splitlines(keepends=True)
    for i, line in enumerate(lines):
        body = line.rstrip("\n")
        for j, ch in enumerate(body):
            if ch.isalpha():
                lines[i] = body[:j] + ("x" if ch != "x" else "y") + body[j + 1:] + line[len(body):]
                return text[:start] + "".join(lines) + text[end:]
    return None


class NoisyOracle:
    """`answer(req) -> ScriptedAnswer | ScriptedFailure`: the oracle's answer, sometimes spoilt."""

    def __init__(self, oracle: Oracle, rate: float, seed: int) -> None:
        self.oracle = oracle
        self.rate = rate
        self.rng = random.Random(seed)
        self.injected: list[str] = []
        self._lock = threading.Lock()

    @property
    def notes(self) -> list[str]:
        return self.oracle.notes

    def answer(self, req: RecordedRequest) -> ScriptedAnswer | ScriptedFailure:
        stage = stage_of(req) or ""
        with self._lock:
            hit = self.rng.random() < self.rate
            kinds = [k for k in KINDS if (k == "malformed_json") == (stage in STRUCTURED) or k == "rate_limit"]
            kind = self.rng.choice(kinds) if hit else None
        if kind == "rate_limit":
            self._record(stage, kind)
            return ScriptedFailure("rate_limit", retry_after=1)
        got = self.oracle.answer(req)
        if kind == "malformed_json" and got.text:
            self._record(stage, kind)
            return replace(got, text=got.text[: max(1, len(got.text) // 2)])
        if kind == "near_miss_search" and (spoilt := _near_miss(got.text)) is not None:
            self._record(stage, kind)
            return replace(got, text=spoilt)
        if kind == "unplanned_file" and "<<<<<<< SEARCH" in got.text:
            self._record(stage, kind)
            extra = "NOTES.md\n```\n<<<<<<< SEARCH\n=======\nWork notes for this change.\n>>>>>>> REPLACE\n```\n"
            return replace(got, text=got.text + "\n" + extra)
        return got

    def _record(self, stage: str, kind: str) -> None:
        with self._lock:
            self.injected.append(f"{stage}:{kind}")


def describe(injected: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in injected:
        kind = item.split(":", 1)[1]
        out[kind] = out.get(kind, 0) + 1
    return out

"""Turn a request (often a pasted bug report) into weighted BM25 query terms.

Bug reports carry a lot of text that matches everything and points nowhere:
issue-template comments (``<!-- Thanks for submitting an issue -->``),
checklists, ``pip list`` dumps, version tables. That text is dropped. Text in
fenced blocks (the reporter's own code, logs) counts less than prose, and
the first line (the title, for an issue) can count more. Identifiers and
paths inside fences still reach the ranker through ``mentions.py``, which
reads the raw request.
"""

from __future__ import annotations

import math
import re

from anvil.retrieval.tokens import term_counts

_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n.*?(?:^[ \t]*\1[ \t]*$|\Z)", re.DOTALL | re.MULTILINE)
_NOISE_LINE = re.compile(
    r"^\s*(?:"
    r"- \[[ xX]\].*"  # template checklists
    r"|[\w.\-\[\]]+\s+v?\d+(?:\.\w+)+\S*(?:\s+\S+)?"  # pip list / version table rows
    r"|[-=_*#~ ]{3,}"  # rules and separators
    r"|\"[\w.\-]+\":\s*(?:\{|\"?v?\d[\w.\-]*\"?,?|null,?|true,?|false,?)"  # JSON version dumps
    r")\s*$",
    re.MULTILINE,
)
# Command-line flags are whole terms too ("--collect-only"), in requests and in code.
# The lookbehind comes after the literal "--" so the engine can search for the literal (5x faster on
# numpydoc's "-------" underlines); it still asks that no word character or dash comes before the dashes.
FLAG = re.compile(r"--(?<![\w-]--)[A-Za-z][\w-]*[A-Za-z0-9]")


def clean(request: str) -> str:
    text = _HTML_COMMENT.sub(" ", request)
    return _NOISE_LINE.sub("", text)


def split_fenced(text: str, keep_short: int = 0) -> tuple[str, str]:
    """(prose, fenced blocks) of a markdown-ish text.

    Blocks of at most ``keep_short`` lines (a short reproducer naming the API
    at fault) stay with the prose; longer ones (logs, dumps, whole test files)
    are split off.
    """
    fenced: list[str] = []

    def take(m: re.Match[str]) -> str:
        block = m.group(0)
        if block.count("\n") <= keep_short + 1:
            return block
        fenced.append(block)
        return "\n"

    prose = _FENCE.sub(take, text)
    return prose, "\n".join(fenced)


def flag_terms(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in FLAG.findall(text):
        out[f.lower()] = out.get(f.lower(), 0) + 1
    return out


SHORT_SNIPPET_LINES = 12


def query_terms(request: str, query_tf: float = 0.5, fenced_weight: float = 0.5,
                title_boost: float = 0.0, keep_short: int = 0) -> dict[str, float]:
    """{term: weight}: a damped count, fenced text discounted, the title optionally boosted."""
    text = clean(request)
    prose, fenced = split_fenced(text, keep_short)
    counts: dict[str, float] = {}
    for part, factor in ((prose, 1.0), (fenced, fenced_weight)):
        for t, n in term_counts(part).items():
            counts[t] = counts.get(t, 0.0) + n * factor
        for t, n in flag_terms(part).items():
            counts[t] = counts.get(t, 0.0) + n * factor
    title = term_counts(request.strip().split("\n", 1)[0]) if title_boost else {}
    out: dict[str, float] = {}
    for t, c in counts.items():
        base = min(c, 1.0)  # a term seen only in fences starts lower
        out[t] = base * (1.0 + query_tf * math.log(max(c, 1.0))) + (title_boost if t in title else 0.0)
    return out

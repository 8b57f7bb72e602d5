"""What a request names explicitly: file paths, modules, identifiers.

Bug reports carry strong, generic hints that plain BM25 dilutes: traceback
frames (``File ".../_pytest/python.py", line 12, in collect``), paths
(``src/flask/cli.py``), dotted module or attribute paths
(``flask.Config.from_file``, ``_pytest.logging``) and code identifiers
(``raise_for_status``, ``LogCaptureFixture``). This module finds them and
maps them onto the index's files; the ranker turns them into boosts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from anvil.retrieval.query import SHORT_SNIPPET_LINES, clean, split_fenced
from anvil.retrieval.tokens import STOP_WORDS

_TRACE_FRAME = re.compile(r'File "([^"]+)", line \d+(?:, in ([A-Za-z_<][\w<>]*))?')
# pytest's own traceback style: "src/pkg/mod.py:42: in func" / "src/pkg/mod.py:42: ValueError".
_PYTEST_FRAME = re.compile(r"^[ \t]*([\w./\\-]+\.py):\d+: (?:in ([A-Za-z_]\w*)|[A-Z]\w*)", re.MULTILINE)
_TRACE_HEADER = re.compile(r"Traceback \(most recent call last\)|^_{5,} .* _{5,}$", re.MULTILINE)
_PATHLIKE = re.compile(r"(?<![\w.])((?:[\w.\-]+[/\\])*[\w\-]+\.[A-Za-z][A-Za-z0-9+]{0,5})(?::\d+)?\b")
_DOTTED = re.compile(r"(?<![\w.])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BACKTICK = re.compile(r"`([^`\n]{1,200})`")
_CALL = re.compile(r"([A-Za-z_]\w*)\s*\(")
_CODE_EXTS = frozenset(
    "py pyi js jsx mjs cjs ts tsx go rs java c h cc cpp cxx hpp hh kt scala rb php cs swift m mm "
    "sh toml cfg ini yaml yml json md rst txt html css scss vue sql".split()
)


# Names so common in code that "defines list" or "defines get" says nothing.
GENERIC_NAMES = frozenset(
    """list dict str int float bool bytes len print repr type object set tuple range open super self
    this cls isinstance getattr setattr hasattr format join append get items keys values update split
    strip replace lower upper name value main test run init new data result args kwargs path file
    error exception string number true false none null undefined function class return import from
    default key index count size length next iter close read write call apply copy clear pop add
    remove start stop send text code line lines mode""".split()
)


def _plain(word: str) -> bool:
    """An all-lowercase word: as likely English as code."""
    return word.isalpha() and word.islower()


_CODE_PUNCT = re.compile(r"[()=\[\].:]")
_SPACES = re.compile(r"\s+")


def quoted_code(request: str) -> list[str]:
    """Inline `code spans` that look like a line of source (a call, an assignment, an
    expression), whitespace-normalised: candidates for a verbatim search in the code."""
    out: list[str] = []
    for bm in _BACKTICK.finditer(request):
        span = _SPACES.sub(" ", bm.group(1).strip())
        if len(span) >= 10 and _CODE_PUNCT.search(span) and len(_WORD.findall(span)) >= 2:
            out.append(span)
    return list(dict.fromkeys(out))


@dataclass
class Mentions:
    paths: dict[int, float] = field(default_factory=dict)  # file index -> strength (0..1)
    traceback_files: set[int] = field(default_factory=set)
    deepest_frames: set[int] = field(default_factory=set)  # the last in-repo frame of each traceback
    identifiers: dict[str, float] = field(default_factory=dict)  # name -> how code-like (0..1)
    modules: dict[int, float] = field(default_factory=dict)  # file index -> strength


def _suffix_parts(path: str) -> list[str]:
    return [p for p in path.replace("\\", "/").split("/") if p and p != "."]


class PathMatcher:
    """Maps mentioned paths and dotted module names to indexed files, by trailing components."""

    def __init__(self, paths: list[str]):
        self.by_name: dict[str, list[int]] = {}
        self.by_module: dict[str, list[int]] = {}
        self.parts = [p.split("/") for p in paths]
        for i, parts in enumerate(self.parts):
            self.by_name.setdefault(parts[-1], []).append(i)
            stem = parts[-1].rsplit(".", 1)[0]
            mod = parts[:-1] + ([] if stem == "__init__" else [stem])
            # "src/_pytest/python.py" -> "_pytest.python", "src._pytest.python" (two or more parts:
            # a bare "python" is too ambiguous to count as a module mention).
            for k in range(2, len(mod) + 1):
                self.by_module.setdefault(".".join(mod[-k:]), []).append(i)

    def match_path(self, mention: str) -> dict[int, float]:
        parts = _suffix_parts(mention)
        if not parts:
            return {}
        cands = self.by_name.get(parts[-1], [])
        if not cands:
            return {}
        best: dict[int, int] = {}
        for i in cands:
            fp = self.parts[i]
            n = 0
            while n < min(len(fp), len(parts)) and fp[-1 - n] == parts[-1 - n]:
                n += 1
            best[i] = n
        top = max(best.values())
        winners = [i for i, n in best.items() if n == top]
        # A unique match on directories too is near certain; a bare file name matching one
        # file is good evidence (it may be the reporter's own file of that name); a name
        # shared by several files is weak.
        # A path whose folders do not match (".../pmxbot/logging.py" vs "src/_pytest/logging.py")
        # names the reporter's file that shares a name, not this one.
        if len(winners) == 1 and top >= 2:
            strength = 1.0
        elif top == 1 and len(parts) > 1:
            strength = 0.15
        elif len(winners) == 1 and len(cands) == 1:
            strength = 0.6
        else:
            strength = 1.0 / (1 + len(winners))
        return {i: strength for i in winners}

    def match_module(self, dotted: str) -> dict[int, float]:
        parts = dotted.split(".")
        for k in range(len(parts), 1, -1):  # longest prefix that names a module
            key = ".".join(parts[:k])
            hits = self.by_module.get(key)
            if hits:
                return {i: 1.0 / len(hits) for i in hits}
        return {}


def find_mentions(request: str, matcher: PathMatcher, defined: Mapping[str, list[int]],
                  fenced_factor: float = 0.5) -> Mentions:
    """Paths, modules and defined identifiers that ``request`` names.

    A name that appears only inside fenced blocks (pasted code, logs) is
    incidental more often than one the reporter wrote in prose: it counts
    ``fenced_factor`` as much.
    """
    prose_words = set(_WORD.findall(split_fenced(clean(request), SHORT_SNIPPET_LINES)[0]))
    m = Mentions()
    code_like: dict[str, float] = {}

    def add(target: dict[int, float], hits: dict[int, float]) -> None:
        for i, s in hits.items():
            target[i] = max(target.get(i, 0.0), s)

    # Each traceback runs from its header to the next; its last frame inside the
    # repository is where the error surfaced, often where the fix goes.
    starts = [h.start() for h in _TRACE_HEADER.finditer(request)]
    frames = sorted(
        list(_TRACE_FRAME.finditer(request)) + list(_PYTEST_FRAME.finditer(request)), key=lambda f: f.start()
    )
    deepest: dict[int, int] = {}  # traceback number -> file index
    for frame in frames:
        hits = matcher.match_path(frame.group(1))
        add(m.paths, hits)
        sure = [i for i, s in hits.items() if s >= 0.5]
        m.traceback_files.update(sure)
        if len(sure) == 1:
            block = sum(1 for st in starts if st <= frame.start())
            deepest[block] = sure[0]
        if frame.group(2):
            code_like[frame.group(2)] = max(code_like.get(frame.group(2), 0.0), 0.5)
    m.deepest_frames.update(deepest.values())
    for pm in _PATHLIKE.finditer(request):
        cand = pm.group(1)
        ext = cand.rsplit(".", 1)[-1].lower()
        if ext in _CODE_EXTS or "/" in cand:
            add(m.paths, matcher.match_path(cand))
    for dm in _DOTTED.finditer(request):
        dotted = dm.group(1)
        add(m.modules, matcher.match_module(dotted))
        for part in dotted.split(".")[1:]:
            code_like[part] = max(code_like.get(part, 0.0), 0.8)
    for bm in _BACKTICK.finditer(request):
        for w in _WORD.findall(bm.group(1)):
            code_like[w] = 1.0
    for cm in _CALL.finditer(request):
        code_like[cm.group(1)] = max(code_like.get(cm.group(1), 0.0), 0.9)
    for w in set(_WORD.findall(request)):
        inner_cap = any(c.isupper() for c in w[1:]) and any(c.islower() for c in w)
        if "_" in w.strip("_") or inner_cap:
            code_like[w] = 1.0
        elif w not in code_like and w[0].isupper() and len(w) > 2 and w.lower() not in STOP_WORDS:
            code_like[w] = 0.4  # Capitalised: a class name, or just the start of a sentence
    for w, s in code_like.items():
        if w in defined and len(w) > 2 and w.lower() not in STOP_WORDS and w not in GENERIC_NAMES:
            if _plain(w):
                s = min(s, 0.3)
            if w not in prose_words:
                s *= fenced_factor
            m.identifiers[w] = max(m.identifiers.get(w, 0.0), s)
    return m

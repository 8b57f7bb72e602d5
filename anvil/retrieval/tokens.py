"""Text -> search terms, and text -> an estimated model token count.

Search terms (for BM25): identifiers are kept whole *and* split into their
parts, so ``from_file``, ``fromFile`` and a request saying "from file" meet:
``parse_HTTPResponse`` -> ``parse_httpresponse``, ``parse``, ``http``,
``response``. Paths split on their separators for free (``src/_pytest/python.py``
-> ``src``, ``_pytest``, ``pytest``, ``python``, ``py``). Everything is
lower-cased; one-letter words, numbers and a short list of English stop words
are dropped (they only add noise when a long bug report is the query).

Token estimate: ``estimate_tokens`` is a cheap, deterministic stand-in for a
real tokenizer: one token per 4 characters, rounded up. It over-counts dense
prose slightly and under-counts very symbol-heavy code slightly; budgets are
soft limits for a prompt, so a stable estimate beats an exact one that needs
a vocabulary file.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
WORD = _WORD  # what counts as a word, for callers that split text themselves
# Camel-case parts: "HTTPResponse" -> HTTP, Response; "fromFile2" -> from, File.
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+")

STOP_WORDS = frozenset(
    """a an and are as at be been but by can could did do does doing for from had has
    have having he her here his how i if in into is it its itself just me more most my
    no nor not now of off on once only or other our out over own same she should so
    some such than that the their them then there these they this those through to too
    under until up very was we were what when where which while who whom why will with
    would you your also any each few both all get got am let us via""".split()
)

# Memo of word -> terms. Code repeats identifiers a lot, so this turns the
# per-word work into one dict lookup after the first sighting.
_SPLIT_CACHE: dict[str, tuple[str, ...]] = {}
_CACHE_LIMIT = 500_000
_PART_STEMS: dict[str, str] = {}  # identifier part -> its stem


# Suffix rules by the term's last letter (one dict lookup instead of ten endswith calls).
_SUFFIXES_BY_LAST: dict[str, tuple[tuple[str, str], ...]] = {
    "s": (("izations", "iz"), ("ations", "ate"), ("ities", "ity"), ("ies", "y"), ("sses", "ss"), ("s", "")),
    "n": (("ization", "iz"), ("ation", "ate")),
    "g": (("ing", ""),),
    "d": (("ed", ""),),
}


def stem(term: str) -> str:
    """A light suffix stripper: "markers" -> "marker", "skipping" -> "skip", "configured" -> "configur".

    Enough to meet plural/verb forms between prose and code; applied to plain
    words and identifier parts, not to whole snake_case identifiers.
    """
    if len(term) <= 4 or "_" in term:
        return term
    for suffix, repl in _SUFFIXES_BY_LAST.get(term[-1], ()):
        if term.endswith(suffix) and len(term) - len(suffix) >= 3:
            if suffix == "s" and term.endswith(("ss", "us", "is")):
                break
            term = term[: len(term) - len(suffix)] + repl
            if suffix in ("ing", "ed") and len(term) >= 4 and term[-1] == term[-2] and term[-1] not in "lsz":
                term = term[:-1]  # running -> runn -> run
            break
    if len(term) > 4 and term[-1] == "e":
        term = term[:-1]
    return term


def _split_word(word: str) -> tuple[str, ...]:
    lower = word.lower()
    parts: list[str] = []
    if "_" in word or not (word.islower() or word.isupper() or word.istitle()):
        for piece in word.split("_"):
            if not piece:
                continue
            for part in _CAMEL.findall(piece):
                part = part.lower()
                if len(part) > 1 and part != lower and part not in STOP_WORDS:
                    stemmed = _PART_STEMS.get(part)
                    if stemmed is None:  # parts recur across identifiers far more than whole words do
                        stemmed = stem(part)
                        if len(_PART_STEMS) < _CACHE_LIMIT:
                            _PART_STEMS[part] = stemmed
                    parts.append(stemmed)
    if lower in STOP_WORDS or len(lower) < 2:
        return tuple(parts)
    whole = stem(lower)
    if parts:
        return (whole, *parts)
    return (whole,)


def known_splits() -> dict[str, tuple[str, ...]]:
    """The word -> terms memo (persisted with the index so a new process starts warm)."""
    return _SPLIT_CACHE


def remember_splits(splits: dict[str, tuple[str, ...]]) -> None:
    if len(_SPLIT_CACHE) + len(splits) < _CACHE_LIMIT:
        _SPLIT_CACHE.update(splits)


def split_identifier(word: str) -> tuple[str, ...]:
    """The search terms of one identifier: the whole (lower-cased) and its parts."""
    terms = _SPLIT_CACHE.get(word)
    if terms is None:
        terms = _split_word(word)
        if len(_SPLIT_CACHE) < _CACHE_LIMIT:
            _SPLIT_CACHE[word] = terms
    return terms


def tokenize(text: str) -> list[str]:
    """Search terms of ``text`` in order, with repeats (BM25 counts them)."""
    out: list[str] = []
    extend = out.extend
    cache = _SPLIT_CACHE
    for word in _WORD.findall(text):
        terms = cache.get(word)
        if terms is None:
            terms = split_identifier(word)
        extend(terms)
    return out


def identifiers(text: str) -> set[str]:
    """The distinct identifiers (as written) that occur in ``text``."""
    return set(_WORD.findall(text))


def estimate_tokens(text: str) -> int:
    """Estimated model tokens for ``text``: ceil(characters / 4). Deterministic."""
    return (len(text) + 3) // 4


try:  # Counter's C counting loop, filling a plain dict (no Counter object to copy)
    from collections import _count_elements  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - other Pythons
    def _count_elements(mapping: dict[str, int], iterable: list[str]) -> None:
        get = mapping.get
        for item in iterable:
            mapping[item] = get(item, 0) + 1


def word_counts(text: str) -> dict[str, int]:
    """{identifier as written: count}; ``expand_word`` turns each into its terms."""
    counts: dict[str, int] = {}
    _count_elements(counts, _WORD.findall(text))
    return counts


def expand_word(word: str) -> tuple[str, ...]:
    """The search terms of one counted word (command-line flags stay whole)."""
    if word.startswith("--"):
        return (word.lower(),)
    terms = _SPLIT_CACHE.get(word)
    return terms if terms is not None else split_identifier(word)


def term_counts(text: str) -> dict[str, int]:
    """{term: count} of ``text``; the same terms as ``tokenize``, counted.

    Counting whole words first (in C, via Counter) and splitting each
    distinct word once is several times faster than tokenising word by word.
    """
    from collections import Counter

    out: dict[str, int] = {}
    get = out.get
    cache = _SPLIT_CACHE
    for word, n in Counter(_WORD.findall(text)).items():
        terms = cache.get(word)
        if terms is None:
            terms = split_identifier(word)
        for term in terms:
            out[term] = get(term, 0) + n
    return out

"""A review finding's rule key: the rule part of its message and the kind of code it points at.

Deterministic, no model: two reviews that complain about the same thing in the
same kind of code get the same key, so a complaint that recurs across runs can
be counted and proposed as a convention. The key reads
`language/kind/words`, e.g. `python/assert/assert-validation`:

- language: from the file's extension (`text` when unknown);
- kind: the construct the evidence's first line is (an `assert`, an `import`,
  a call, an assignment, ...), by its leading keyword;
- words: the finding's `rule` name when the reviewer gave one, else the first
  clause of its message; code in backquotes, quoted strings and numbers
  removed, stop words dropped, crudely stemmed, sorted and deduplicated (so
  "no assert for validation" and "validation via assert" read alike).
"""

from __future__ import annotations

import functools
import re

_WORD = re.compile(r"[a-z][a-z0-9]*")
_CODE = re.compile(r"`[^`]*`|\"[^\"]*\"|'[^']*'")
_CLAUSE = re.compile(r"[:;.!?(]|\s[-\u2013\u2014]\s")
MAX_WORDS = 6

STOP = frozenset("""
a an the this that these those it its is are was be been being do does did done not no never dont don t
avoid use used using uses should shouldn must mustn can cannot could would will may might please instead
prefer rather than of in on at to for from by with via as and or but so if when where which who what here
there here's line lines code change changes call calls new add added adding remove make makes made
""".split())

# the first matching (pattern, kind) names the construct; patterns see the stripped first line
_KIND_PATTERNS: list[tuple[str, str]] = [
    (r"^(#|//|/\*|\*|--)", "comment"),
    (r"^@", "decorator"),
    (r"^(async\s+)?(def|fn|func|function)\b", "def"),
    (r"^(export\s+)?(abstract\s+)?(class|struct|interface|enum|impl|trait)\b", "class"),
    (r"^(import|from|use|require|#include|package)\b", "import"),
    (r"^(try|except|catch|finally)\b|^\}\s*catch\b", "exception"),
    (r"^(raise|throw|panic!?)\b", "raise"),
    (r"^assert\b|^(debug_)?assert(_eq)?!?\(", "assert"),
    (r"^return\b", "return"),
    (r"^(if|elif|else|switch|case|match)\b|^\}\s*else\b", "branch"),
    (r"^(for|while|loop|do)\b", "loop"),
    (r"^(with|using)\b", "with"),
    (r"^(print|console\.log|println!?|fmt\.Print\w*|System\.out\.print\w*)\s*\(", "print"),
    (r"^(let|const|var|val|mut)\b|^[\w.\[\]'\"]+\s*(:[^=]+)?\s*[-+*/%|&]?=(?!=)", "assign"),
    (r"^[\w.]+\s*\(", "call"),
]


@functools.cache
def _kinds() -> list[tuple[re.Pattern[str], str]]:
    # Compiled on first use, not at import: every run imports this module, few runs key a finding.
    return [(re.compile(p), k) for p, k in _KIND_PATTERNS]


_EXT_LANG = {".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript", ".jsx": "javascript",
             ".ts": "typescript", ".tsx": "typescript", ".go": "go", ".rs": "rust", ".java": "java",
             ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".hpp": "cpp", ".rb": "ruby",
             ".sh": "shell", ".md": "markdown", ".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".json": "json"}


def language_of(path: str) -> str:
    dot = path.rfind(".")
    return _EXT_LANG.get(path[dot:].lower(), "text") if dot > path.rfind("/") else "text"


def code_kind(evidence: str) -> str:
    """The construct the evidence's first non-empty line is ('code' when none of the kinds)."""
    first = next((x.strip() for x in evidence.splitlines() if x.strip()), "")
    first = first[1:].strip() if first[:1] in "+-" and not first.startswith(("--", "++")) else first
    return next((kind for pattern, kind in _kinds() if pattern.search(first)), "code")


def _stem(word: str) -> str:
    for suffix in ("ations", "ation", "ings", "ing", "ies", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def rule_words(rule: str, message: str) -> str:
    """The normalised words of the rule: the `rule` name if given, else the message's first clause."""
    text = rule.replace("-", " ").replace("_", " ") if rule.strip() else message
    text = _CODE.sub(" ", text.lower().replace("n't", " not"))
    if not rule.strip():
        parts = [p for p in _CLAUSE.split(text) if _WORD.search(p)]
        text = parts[0] if parts else text
    words = sorted({_stem(w) for w in _WORD.findall(text) if w not in STOP and len(w) > 1})
    return "-".join(words[:MAX_WORDS]) or "finding"


def rule_key(file: str, evidence: str, message: str, rule: str = "") -> str:
    return f"{language_of(file)}/{code_kind(evidence)}/{rule_words(rule, message)}"

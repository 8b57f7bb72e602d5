"""Text from models, servers and repository files, made safe to print on a terminal (DESIGN.md 14).

A model answer, an HTTP error body or a repo's YAML can carry escape sequences
that retitle the terminal, hide text, move the cursor to draw a fake "all tests
passed" line, or write OSC 52 to the clipboard. Everything anvil prints that it
did not write itself goes through `printable`: escape sequences are removed,
other C0/C1 control characters and bidirectional overrides are shown escaped
(`\\x1b`, `\\u202e`), newlines and tabs are kept.
"""

from __future__ import annotations

import re

# ESC-introduced sequences: CSI (ESC [ ... final), OSC / DCS / SOS / PM / APC (... BEL or ESC \),
# and two-character escapes (ESC followed by one byte). Their 8-bit C1 forms too.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC, DCS, SOS, PM, APC
    r"|\x1b[ -/]*[0-OQ-WYZ\\`-~]"  # other escapes (ESC 7, ESC c, ESC ( B); not the openers above
)
_KEEP = {"\n", "\t"}
# Trojan-source characters: they reorder what is shown, so show them instead.
_BIDI = {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
         "\u200e", "\u200f", "\u061c"}


def _shown(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _unsafe(ch: str) -> bool:
    code = ord(ch)
    return (code < 0x20 and ch not in _KEEP) or 0x7F <= code <= 0x9F or ch in _BIDI


def printable(text: object, *, newlines: bool = True) -> str:
    """`text` without escape sequences and with other control characters shown escaped.

    `newlines=False` escapes line breaks and tabs too (a one-line field: a commit subject, a name)."""
    s = text if isinstance(text, str) else str(text)
    if s.isprintable():  # the common case: no control, format or bidi character at all
        return s
    s = _ESCAPES.sub("", s.replace("\r\n", "\n"))
    return "".join(_shown(c) if _unsafe(c) or (not newlines and c in _KEEP) else c for c in s)


class StreamCleaner:
    """`printable` for text that arrives in pieces (a streamed answer): an escape sequence split across
    two deltas is held back until it is complete, so neither half reaches the terminal."""

    _MAX_HELD = 256  # an unterminated sequence longer than this is dropped, not held forever

    def __init__(self) -> None:
        self._held = ""

    def feed(self, piece: str) -> str:
        text = self._held + piece
        self._held = ""
        cut = max(text.rfind("\x1b"), max((text.rfind(c) for c in "\x90\x98\x9b\x9d\x9e\x9f"), default=-1))
        if cut >= 0:
            tail = text[cut:]
            m = _ESCAPES.match(tail)
            # Not yet a whole sequence, or one that may still be running on (an OSC without its end).
            if (m is None or m.end() == len(tail)) and len(tail) < self._MAX_HELD:
                self._held, text = tail, text[:cut]
        return printable(text)

    def flush(self) -> str:
        held, self._held = self._held, ""
        return printable(held) if held else ""

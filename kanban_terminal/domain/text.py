"""Making bytes from outside safe to show and to log.

A barcode, an MQTT payload or a serial frame may carry escape sequences, bidi overrides or zero-width
characters. Shown raw, `\\x1b[2J` repaints the operator's screen and U+202E reverses a log line; so
every external string passes through `escape_external` before it reaches a screen or a log.
"""

from __future__ import annotations

import unicodedata

# Categories that must never be shown raw: controls (C0/C1, ESC), format characters (bidi overrides,
# zero-width joiners), surrogates, private use, unassigned, and line/paragraph separators.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def is_unsafe_char(ch: str) -> bool:
    """Return True for a character that must not reach a terminal or a log as it is.

    Space separators other than the plain space (no-break, em, ideographic ...) count too: they
    look like a space and let a crafted code or payload pass for something it is not.
    """
    category = unicodedata.category(ch)
    return category in _UNSAFE_CATEGORIES or (category == "Zs" and ch != " ")


def escape_external(text: str, limit: int = 200) -> str:
    """Return `text` with every unsafe character written as a visible escape, cut to `limit` chars.

    Backslashes are doubled so an escaped string can never be mistaken for an escape it did not have.
    """
    # Nearly every string (card ids, sources, device names) is plain printable ASCII: nothing to
    # escape. The per-character walk cost ~11 us a call on the signal hot path (cProfile).
    plain = text.isascii() and text.isprintable() and "\\" not in text
    escaped = text if plain else _escape_each(text)
    if len(escaped) > limit:
        return escaped[:limit] + f"...(+{len(escaped) - limit} chars)"
    return escaped


def _escape_each(text: str) -> str:
    out: list[str] = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif is_unsafe_char(ch):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def escape_bytes(data: bytes, limit: int = 200) -> str:
    """Escape raw bytes (a serial frame, an MQTT payload) that may not even be valid UTF-8."""
    return escape_external(data.decode("utf-8", errors="backslashreplace"), limit)

"""Normalising what a scanner typed into a card code, or saying clearly why it cannot be one.

Keyboard wedges and serial scanners add terminators (CR, LF, Tab), AIM symbology prefixes such as
`]C1` (ISO/IEC 15424), and on misconfigured devices control characters. Every input path (keyboard,
serial, MQTT, CLI) calls `normalise_code`, so a code means the same whatever brought it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kanban_terminal.domain.text import escape_external, is_unsafe_char

# `]` + symbology letter + modifier character, e.g. ]C1 (GS1-128), ]E0 (EAN-13), ]Q3 (QR), ]d2.
_AIM_PREFIX = re.compile(r"^\][A-Za-z][0-9A-Za-z]")
_TERMINATORS = " \t\r\n\x04"  # space, Tab, CR, LF and EOT: what scanners put around a read

DEFAULT_MAX_LENGTH = 48


@dataclass(frozen=True)
class InputRejection:
    """A scanned input that cannot be a card code, with a reason a person can act on."""

    reason: str
    escaped_input: str


def normalise_code(raw: str, max_length: int = DEFAULT_MAX_LENGTH) -> str | InputRejection:
    """Return the card code in `raw`, upper-cased, or an `InputRejection` saying why not.

    Card ids are case-insensitive: a wedge scanner on Caps Lock inverts the case of every letter.
    """
    code = _AIM_PREFIX.sub("", raw.strip(_TERMINATORS), count=1)
    # Nearly every read is printable ASCII without a space (a card id, a bin signal's card): then
    # none of the refusals below can apply, and two C calls say so where the walk took two
    # generators and `unicodedata.category` per character, ~15 Python calls a bin signal
    # (cProfile, issue 19). In ASCII, `is_unsafe_char` is exactly "not printable" and the only
    # printable space is " " (tests/unit/test_codes_and_ids.py checks both roads agree).
    if code and len(code) <= max_length and code.isascii() and code.isprintable() and " " not in code:
        return code.upper()
    return _refused_or_code(raw, code, max_length)


def _refused_or_code(raw: str, code: str, max_length: int) -> str | InputRejection:
    """`normalise_code`'s checks one by one, for any input (`code`: `raw` stripped, prefix cut)."""
    escaped = escape_external(raw)
    if not code:
        return InputRejection("Nothing was read. Scan the card again.", escaped)
    if len(code) > max_length:
        return InputRejection(
            f"Too long to be a card ({len(code)} characters). Two labels read at once? "
            "Cover the other label and scan one card.",
            escaped,
        )
    if any(is_unsafe_char(ch) for ch in code):
        return InputRejection(
            "The scanner sent control characters. Scan again; if it repeats, call maintenance "
            "to check the scanner settings.",
            escaped,
        )
    if any(ch.isspace() for ch in code):
        return InputRejection(
            "The code contains spaces, so it is not one card. Scan one card at a time.", escaped
        )
    return code.upper()

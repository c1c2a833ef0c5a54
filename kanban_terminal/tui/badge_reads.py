"""A scanner read in a badge field: a badge, or a card (whole or garbled) that belongs on the scan path.

A badge field is a scan field, so a badge read stays there. But an operator scanning a card while
a team lead's dialog is open must not have the card refused as an "unknown badge" (issue 15): a
card of this line, or a garbled read of one, goes to the scan path, which records it or refuses it
with the scan screen's words, and the dialog stays as it was.

What a garbled card read looks like: scanner garbage the scan path refuses outright (control
characters, spaces, two labels at once), a card typed for another keyboard layout, or a code that
starts like this line's cards (the same first two characters) without being one: a truncated read,
a wrong check character. Badges listed under [[people]] are always badges. An unknown code that
looks like neither stays in the badge field and is refused there as an unknown badge, which is what
it most likely is (a visitor's or another site's badge).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from kanban_terminal.domain.card_ids import layout_mismatch_hint
from kanban_terminal.domain.codes import InputRejection, normalise_code

_LEAD = 2
"""Characters a garbled read shares with a card: loop prefixes are digits and letters such as B10,
B11 (demo.toml); badges are numbered apart (E1001)."""


def read_is_for_scan_path(raw: str, cards: Collection[str], badges: Iterable[str], max_length: int) -> bool:
    """True when `raw`, read into a badge field, is a card of this line or a garbled read of one."""
    code = normalise_code(raw, max_length)
    if isinstance(code, InputRejection):
        return True
    if code in cards:
        return True
    if code in set(badges):
        return False
    if layout_mismatch_hint(code) is not None:
        return True
    return len(code) > _LEAD and any(card.startswith(code[:_LEAD]) for card in cards)

"""Card ids: the barcode payload printed on a kanban card, and its check character.

Generated ids use digits and letters that stay in place on QWERTY, QWERTZ and AZERTY layouts (no A,
M, Q, W, Y, Z) and never I or O (read as 1 and 0), then an ISO/IEC 7064 MOD 37-36 check character.
A wedge on the wrong keyboard layout, a truncated read or a doubled read then fails the check instead
of matching another card. Plants with cards already printed keep their ids; the check is optional.
"""

from __future__ import annotations

SAFE_ALPHABET = "0123456789BCDEFGHJKLNPRSTUVX"

# What a US-layout scanner types on a French AZERTY host for the digit row 1234567890.
_AZERTY_DIGITS = str.maketrans("&é\"'(-è_çà", "1234567890")
_YZ_SWAP = str.maketrans("YZ", "ZY")


# ISO/IEC 7064 MOD 37-36 (hybrid system, alphabet 0-9 A-Z, check character from the same alphabet)
# written here rather than imported from python-stdnum: `stdnum`'s package import pulls in pydoc,
# pkgutil and its own helpers, +1.1 MB of RSS in every `serve` for a dozen lines of arithmetic
# (issue 19, measured after the rest of serve's imports). tests/unit/test_codes_and_ids.py checks
# these against python-stdnum's implementation, kept as a test dependency.
_ISO_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ISO_VALUE = {ch: i for i, ch in enumerate(_ISO_ALPHABET)}
_M = 36


def _mod_37_36(payload: str) -> int:
    """The hybrid MOD 37-36 running value of `payload`; 1 when its last character checks the rest.

    Raises:
        KeyError: `payload` holds a character outside 0-9 A-Z.
    """
    check = _M // 2
    for ch in payload:
        check = (((check or _M) * 2) % (_M + 1) + _ISO_VALUE[ch]) % _M
    return check


def check_character(payload: str) -> str:
    """Return the MOD 37-36 check character for `payload` (upper-case alphanumerics).

    Raises:
        ValueError: `payload` holds a character outside 0-9 A-Z.
    """
    try:
        running = _mod_37_36(payload)
    except KeyError as exc:
        raise ValueError(f"not an upper-case alphanumeric payload: {payload!r}") from exc
    return _ISO_ALPHABET[(1 - ((running or _M) * 2) % (_M + 1)) % _M]


def with_check(payload: str) -> str:
    """Return `payload` followed by its check character."""
    return payload + check_character(payload)


def has_valid_check(code: str) -> bool:
    """Return True when the last character of `code` is the right check character for the rest."""
    if len(code) < 2 or not code.isascii() or not code.isalnum():
        return False
    try:
        return _mod_37_36(code) == 1
    except KeyError:  # lower case or a letter outside A-Z (isalnum admits e.g. "é")
        return False


def generated_card_id(prefix: str, index: int, width: int = 2) -> str:
    """Return the id of card number `index` (1-based) of a loop whose cards start with `prefix`."""
    return with_check(f"{prefix}{index:0{width}d}")


def is_safe_payload(payload: str) -> bool:
    """Return True when every character of `payload` is in the layout-robust alphabet."""
    return bool(payload) and all(ch in SAFE_ALPHABET for ch in payload)


def layout_mismatch_hint(code: str) -> str | None:
    """Name the keyboard-layout mix-up that would turn a valid id into `code`, if there is one.

    `code` is what arrived (already upper-cased); returns None when no known signature fits.
    """
    azerty = code.lower().translate(_AZERTY_DIGITS).upper()
    if azerty != code and has_valid_check(azerty):
        return "The scanner types for a different keyboard layout (digits arrive as &é\"'...)."
    swapped = code.translate(_YZ_SWAP)
    if swapped != code and has_valid_check(swapped):
        return "The scanner and this PC use different keyboard layouts (Y and Z swapped)."
    return None

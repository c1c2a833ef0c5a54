from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from stdnum.iso7064 import mod_37_36

from kanban_terminal.config import demo_config_path, load_config
from kanban_terminal.domain.card_ids import (
    SAFE_ALPHABET,
    check_character,
    generated_card_id,
    has_valid_check,
    layout_mismatch_hint,
)
from kanban_terminal.domain.codes import (
    _AIM_PREFIX,
    _TERMINATORS,
    InputRejection,
    _refused_or_code,
    normalise_code,
)
from kanban_terminal.domain.text import escape_external


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("B1001Z", "B1001Z"),
        ("  B1001Z\r\n", "B1001Z"),
        ("B1001Z\t", "B1001Z"),
        ("]C1B1001Z", "B1001Z"),  # AIM symbology identifier (GS1-128)
        ("]Q3B1001Z\r", "B1001Z"),
        ("b1001z", "B1001Z"),  # Caps Lock on the wedge
        ("\x04B1001Z\x04", "B1001Z"),  # EOT framing
    ],
)
def test_normalise_strips_what_scanners_add(raw: str, code: str) -> None:
    assert normalise_code(raw) == code


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("", "Nothing was read"),
        ("\r\n", "Nothing was read"),
        ("B" * 49, "Too long"),
        ("B10\x1b[2J01Z", "control characters"),
        ("B1001\u202eZ", "control characters"),  # bidi override
        ("B10\u200b01Z", "control characters"),  # zero-width space
        ("B1001Z B1002X", "spaces"),
    ],
)
def test_normalise_rejects_with_a_reason(raw: str, words: str) -> None:
    result = normalise_code(raw)
    assert isinstance(result, InputRejection)
    assert words in result.reason
    assert "\x1b" not in result.escaped_input and "\u202e" not in result.escaped_input


@given(st.text(max_size=300))
def test_escape_never_lets_a_control_character_through(text: str) -> None:
    escaped = escape_external(text, limit=10_000)
    assert all(ch.isprintable() for ch in escaped)


@given(st.text(max_size=100))
def test_normalise_either_rejects_or_returns_printable_code(raw: str) -> None:
    result = normalise_code(raw)
    if not isinstance(result, InputRejection):
        assert result and result.isprintable() and " " not in result


@given(
    st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=60)
    | st.text(alphabet="AB1-_ \t\r\n\x00\x7f\x1b\u00a0\u202e]C", max_size=60)
    | st.text(max_size=60),
    st.sampled_from([1, 8, 48]),
)
@example("CARD 7", 48)  # a space inside: refused
@example("CARD\x7f7", 48)  # DEL is ASCII but not printable
@example("  ", 48)
@example("]C1", 48)
@example("CARD-0001", 8)  # too long
@example("card-0001\r\n", 48)
def test_the_plain_ascii_road_answers_as_the_character_walk(raw: str, max_length: int) -> None:
    # `normalise_code` skips the per-character checks for printable ASCII without a space: the
    # answer must be the one the full checks give, refusals and their words included.
    code = _AIM_PREFIX.sub("", raw.strip(_TERMINATORS), count=1)
    assert normalise_code(raw, max_length) == _refused_or_code(raw, code, max_length)


def _demo_ids() -> list[str]:
    cfg = load_config(demo_config_path())
    return [c for loop in cfg.loops for c in loop.card_id_list()]


def test_generated_ids_carry_a_valid_check_character() -> None:
    ids = _demo_ids()
    assert all(has_valid_check(i) for i in ids)
    assert all(ch in SAFE_ALPHABET for i in ids for ch in i[:-1])
    assert generated_card_id("B10", 1) == ids[0]


def test_every_single_substitution_truncation_and_doubling_of_every_card_fails() -> None:
    """I2: a mangled read must fail the check rather than match another card."""
    ids = _demo_ids()
    known = set(ids)
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    for card in ids:
        for pos in range(len(card)):
            for ch in alphabet:
                if ch != card[pos]:
                    mangled = card[:pos] + ch + card[pos + 1 :]
                    assert not has_valid_check(mangled) or mangled not in known, mangled
                    assert not has_valid_check(mangled), f"{card} -> {mangled}"
        for cut in range(1, len(card)):
            assert card[:cut] not in known
            assert card[cut:] not in known
        assert card + card not in known
        for other in ids:
            assert card + other not in known


ISO_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@given(st.text(alphabet=ISO_ALPHABET, min_size=1, max_size=24))
def test_the_check_character_is_python_stdnums_mod_37_36(payload: str) -> None:
    """card_ids computes ISO 7064 MOD 37-36 itself (stdnum's import costs `serve` 1.1 MB): it must
    agree with the library's implementation on every payload, and on every id it checks."""
    assert check_character(payload) == mod_37_36.calc_check_digit(payload)
    assert has_valid_check(payload) == (len(payload) >= 2 and mod_37_36.is_valid(payload))
    assert has_valid_check(payload + check_character(payload))


@given(st.text(min_size=0, max_size=12))
def test_any_text_checks_as_python_stdnum_would(code: str) -> None:
    """Lower case, accents, punctuation, empty: rejected exactly where the library rejects them."""
    expected = len(code) >= 2 and code.isascii() and code.isalnum() and mod_37_36.is_valid(code)
    assert has_valid_check(code) == expected


def test_a_payload_outside_the_alphabet_has_no_check_character() -> None:
    with pytest.raises(ValueError, match="upper-case alphanumeric"):
        check_character("b100")


def test_layout_mismatch_signatures_are_named() -> None:
    assert layout_mismatch_hint("B1001Y") is not None  # Y/Z swap on QWERTZ
    azerty = "B&àà&Z"  # B1001Z typed by a US-configured scanner on AZERTY
    assert "layout" in (layout_mismatch_hint(azerty.upper()) or "")
    assert layout_mismatch_hint("B1001Z") is None

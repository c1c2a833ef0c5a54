"""Telling a scanner's read from typing (tui/scanner_input.py): pure, with the key times given."""

from __future__ import annotations

import pytest

from kanban_terminal.tui.scanner_input import KeyKind, KeyVerdict, WedgeReadDetector, WedgeTiming


def feed(
    detector: WedgeReadDetector, text: str, *, start: float = 100.0, gap: float, end: str = "enter",
    end_gap: float | None = None,
) -> list[KeyVerdict]:  # fmt: skip
    verdicts, at = [], start
    for i, ch in enumerate(text):
        at = start + i * gap
        verdicts.append(detector.key(ch if ch.isalnum() else f"key_{ord(ch)}", ch, at))
    verdicts.append(detector.key(end, None, at + (gap if end_gap is None else end_gap)))
    return verdicts


@pytest.mark.parametrize(
    ("text", "gap", "end", "read"),
    [
        ("B1101T", 0.004, "enter", "B1101T"),  # a scanner: a few ms a key, then Enter
        ("B1101T", 0.004, "tab", "B1101T"),  # ... or Tab
        ("E2001", 0.049, "enter", "E2001"),  # just under the 50 ms gap
        ("B1101T", 0.051, "enter", None),  # just over it: typing
        ("B1101T", 0.150, "enter", None),  # a fast typist
        ("123", 0.002, "enter", None),  # too short to be a read (a quick PIN)
        ("4711", 0.002, "f5", None),  # no terminator
    ],
)
def test_timing_tells_a_read_from_typing(text: str, gap: float, end: str, read: str | None) -> None:
    verdicts = feed(WedgeReadDetector(WedgeTiming()), text, gap=gap, end=end)
    assert all(v.kind is KeyKind.CHARACTER for v in verdicts[:-1])
    assert verdicts[0].started
    last = verdicts[-1]
    assert (last.kind, last.code) == ((KeyKind.READ, read) if read else (KeyKind.OTHER, ""))


def test_a_slow_enter_after_fast_keys_is_typing() -> None:
    [*_, last] = feed(WedgeReadDetector(WedgeTiming()), "B1101T", gap=0.004, end_gap=0.3)
    assert last.kind is KeyKind.OTHER


def test_a_read_after_typing_starts_its_own_run() -> None:
    """A person typed "B1" slowly, then the scanner read a card into the same field: the run (and
    the text to put back) starts at the scanner's first key."""
    d = WedgeReadDetector(WedgeTiming())
    assert d.key("B", "B", 1.0).started
    assert d.key("1", "1", 1.3).started  # 300 ms later: a new run
    verdicts = feed(d, "B1101T", start=2.0, gap=0.003)
    assert verdicts[0].started and verdicts[-1] == KeyVerdict(KeyKind.READ, code="B1101T")


def test_a_function_key_breaks_a_run() -> None:
    d = WedgeReadDetector(WedgeTiming())
    for i, ch in enumerate("B110"):
        d.key(ch, ch, 1.0 + i * 0.002)
    assert d.key("f4", None, 1.01).kind is KeyKind.OTHER
    assert d.key("1", "1", 1.012).started
    assert d.key("enter", None, 1.014).kind is KeyKind.OTHER  # "1" alone is no read


def test_the_aim_prefix_marks_a_read_whatever_its_timing() -> None:
    slow = WedgeReadDetector(WedgeTiming(aim_prefix=True))
    [*_, last] = feed(slow, "]C0B1101T", gap=0.3)
    assert last == KeyVerdict(KeyKind.READ, code="]C0B1101T")  # the scan path strips the prefix
    off = WedgeReadDetector(WedgeTiming(aim_prefix=False))
    assert feed(off, "]C0B1101T", gap=0.3)[-1].kind is KeyKind.OTHER
    assert feed(slow, "]C0", gap=0.001)[-1].kind is KeyKind.OTHER  # a prefix with nothing after it


def test_configured_terminator_only() -> None:
    d = WedgeReadDetector(WedgeTiming(terminators=frozenset({"enter"})))
    assert feed(d, "B1101T", gap=0.002, end="tab")[-1].kind is KeyKind.OTHER
    assert feed(d, "B1101T", gap=0.002, end="enter")[-1].kind is KeyKind.READ

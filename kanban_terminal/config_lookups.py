"""Config look-ups by id as dicts: `TerminalConfig.part()` and its like find an entry in one probe.

`config.part()` runs for every scan and bin signal (services/scanning.py: the outcome names the
part). As a walk over `parts` it grew with a plant's part count and touched every `Part` on the
way, which at 5 signals/s meets cold caches each time (issue 19).

Why kept here by the tuple's identity and not as a `cached_property` on the config: pydantic's
`model_copy(update={"parts": ...})` copies the instance's `__dict__`, cache included, so a copy
with other parts would answer from the old ones (adapters/demo_hardware.py copies configs). A tuple
is immutable, so an index made from one never goes stale; it is made again for another tuple.

It must not validate: config.py checks that every loop's part, station and source exist.
"""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")

KEPT = 16
"""Indexes kept at once: a process holds one config (tests and tools make many, one at a time)."""

_INDEXES: dict[tuple[int, str], tuple[tuple[Any, ...], dict[Any, Any]]] = {}


def by_key(items: tuple[T, ...], key: str) -> dict[Any, T]:
    """`items` by their attribute `key`, made once per tuple (the first of equal keys wins, as the
    walk it replaces found the first)."""
    found = _INDEXES.get((id(items), key))
    if found is not None and found[0] is items:  # the tuple is held in the entry: its id is not reused
        return found[1]
    index: dict[Any, T] = {}
    for item in items:
        index.setdefault(getattr(item, key), item)
    if len(_INDEXES) >= KEPT:
        _INDEXES.clear()  # rare (a test run's many configs); the next look-ups make theirs again
    _INDEXES[(id(items), key)] = (items, index)
    return index

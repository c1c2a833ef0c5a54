"""`[[bins]]`: the bin sensors and the card each one watches, kept small for a line of 20,000 bins.

A line's config holds one `[[bins]]` entry per sensor, so this is the section that grows with the
line. As a pydantic model each entry cost ~510 bytes (the instance, its `__dict__` and its
`model_fields_set` set): 10.2 MB of the 25 MB `serve` held for the bench's 20,000-card line
(tracemalloc, issue 19). A slotted pydantic dataclass validates the same fields, with the same
types and messages, in 56 bytes. Its one different word is for an unknown key, which
`config_problems.same_words` puts back as every other section says it.

`share_card_strings` gives each `[[bins]]` entry's card the very string its loop's `card_ids`
already holds, before validation: TOML's parser makes a new string for every quoted value, so a
20,000-bin line held every card id twice (1.1 MB, tracemalloc of a ready `serve`).

`BinIndex` answers "which card does this device's bin watch" and "is this device configured" for
the wire check and the signal applier from one table (they each built their own sets and dicts:
8 MB more for 20,000 bins).

It must not read files or know the rest of the config: config.py checks the cards exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import ConfigDict, StringConstraints
from pydantic.dataclasses import dataclass

Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
CardId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{2,40}$")]


@dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class BinSensor:
    """One bin sensor (a `[[bins]]` entry)."""

    device: Ident
    """Device id of the bin sensor, as in its MQTT topic and payload."""
    bin: Ident | None = None
    """The bin id a device watching several bins reports in `bin`; omit for a one-bin sensor."""
    card: CardId
    """The card of the bin it watches; an empty signal is handled like a scan of this card."""


def share_card_strings(data: dict[str, Any]) -> None:
    """Point each `[[bins]]` card at the equal string of a loop's `card_ids`, in the parsed TOML
    `data` (not validated yet: anything of another shape is left for validation to report)."""
    bins, loops = data.get("bins"), data.get("loops")
    if not isinstance(bins, list) or not isinstance(loops, list):
        return
    held: dict[str, str] = {}
    for loop in loops:
        ids = loop.get("card_ids") if isinstance(loop, dict) else None
        if isinstance(ids, list):
            held.update((c, c) for c in ids if isinstance(c, str))
    for entry in bins:
        if isinstance(entry, dict) and isinstance(card := entry.get("card"), str):
            entry["card"] = held.get(card, card)


def upper_id(card: str) -> str:
    """`card` in capitals, the same string object when it already is (20,000 ids of a big line
    would otherwise each be held twice, 1.1 MB)."""
    upper = card.upper()
    return card if upper == card else upper


class BinIndex:
    """The cards of `[[bins]]` by device and bin, one table for everything that looks them up.

    A one-bin device (no `bin`) is keyed by its device id alone, the string the config already
    holds, so a line of one-bin sensors costs one dict entry a sensor, no tuple: 0.4 MB for 20,000
    (tracemalloc), where the two copies it replaces held 8.1 MB.
    """

    __slots__ = ("_multi", "_multi_devices", "_single")

    def __init__(self, bins: Iterable[BinSensor]):
        self._single: dict[str, str] = {}
        self._multi: dict[tuple[str, str], str] = {}
        for b in bins:
            if b.bin is None:
                self._single[b.device] = upper_id(b.card)
            else:
                self._multi[(b.device, b.bin)] = upper_id(b.card)
        self._multi_devices = frozenset(device for device, _ in self._multi)

    def knows_device(self, device: str) -> bool:
        """Whether `device` is configured under `[[bins]]` at all."""
        return device in self._single or device in self._multi_devices

    def knows(self, device: str, bin: str | None) -> bool:
        """Whether (device, bin) is configured exactly: a one-bin device has no `bin`."""
        return device in self._single if bin is None else (device, bin) in self._multi

    def card_of(self, device: str, bin: str | None) -> str | None:
        """The card (in capitals) of the device's named bin, else of the device's only bin."""
        if bin is not None and (card := self._multi.get((device, bin))) is not None:
            return card
        return self._single.get(device)

    def __len__(self) -> int:
        return len(self._single) + len(self._multi)

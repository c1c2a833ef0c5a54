"""What the keyboard means on the floor: the `[keys]` keymap, kiosk mode, and `[wedge]`, how a
keyboard-wedge scanner's reads are told apart from typing.

Kept out of config.py (near its size limit); config.py only hooks the two sections in. Like every
config model: frozen, `extra="forbid"`, one docstring per field.

Why these default keys: the screen runs in terminal emulators and on the Linux console, and some
keys never reach it there. GNOME Terminal and xfce4-terminal take F1 (help), F10 (the menu bar) and
F11 (full screen) by default; Windows Terminal takes F11 too. The Linux console passes every plain
F-key (Alt+Fn and Ctrl+Alt+Fn switch consoles, so no default uses Alt). That leaves F2-F9 and F12:
F2-F6 keep their old meaning (board, andon, call help, log, stop the line), F7-F9 act on the
screen shown, F12 is the way home to the scan screen, and what a floor uses rarely goes on Ctrl
keys that no text field of the screen uses (Ctrl+R metrics, Ctrl+O log out, Ctrl+Y yes, Ctrl+Q
quit). F5 stays "Log" and nothing else: confirming a delivery is Ctrl+Y, not F5.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

KeyList = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_+]+(,[a-z0-9_+]+)*$", max_length=60)]
"""Textual key names, comma-separated for more than one: "f12", "ctrl+r", "f12,home"."""

# Keys terminal emulators keep for themselves by default (see the module docstring).
TAKEN_BY_TERMINALS = frozenset({"f1", "f10", "f11"})

# Keys a text field of the screen uses for editing (Textual's Input): never a command.
EDITING_KEYS = frozenset(
    {"ctrl+a", "ctrl+e", "ctrl+d", "ctrl+k", "ctrl+u", "ctrl+w", "ctrl+f", "ctrl+x", "ctrl+c", "ctrl+v"}
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KeySettings(_Model):
    """`[keys]`: one key (or a comma-separated list) per command. The global commands work on every
    screen; the screen commands only on their screen; none of them may share a key with another
    command that can be active on the same screen."""

    scan: KeyList = "f12"
    """Global: the scan screen (the operator's home)."""
    board: KeyList = "f2"
    """Global: the board."""
    andon: KeyList = "f3"
    """Global: the andon screen."""
    call_help: KeyList = "f4"
    """Global: call for help (CALL)."""
    log: KeyList = "f5"
    """Global: the card log."""
    stop_line: KeyList = "f6"
    """Global: stop the line (STOP; team lead badge and PIN)."""
    metrics: KeyList = "ctrl+r"
    """Global: the metrics screen (maintenance; rarely used on the floor)."""
    quit: KeyList = "ctrl+q"
    """Global: quit the terminal (in kiosk mode only with a team lead's badge and PIN)."""
    handover: KeyList = "ctrl+t"
    """Global: the shift handover sheet (the incoming team lead takes it over with badge and PIN)."""
    acknowledge: KeyList = "f7"
    """Andon screen: acknowledge the selected call."""
    resolve: KeyList = "f8"
    """Andon screen: resolve the selected call or stop."""
    cancel_call: KeyList = "f9"
    """Andon screen: cancel the selected call (in kiosk mode only with a team lead)."""
    shelve: KeyList = "ctrl+s"
    """Andon screen: shelve the chattering device that raised the selected call."""
    logout: KeyList = "ctrl+o"
    """Andon screen: log the team lead out."""
    card_action: KeyList = "f7"
    """Board screen: suspend or resume a card (team lead)."""
    reroute: KeyList = "f9"
    """Board screen: re-route a loop to its second source (team lead)."""
    delivery_issue: KeyList = "f8"
    """Scan screen: record a short or damaged delivery after a delivery scan."""
    confirm_delivery: KeyList = "ctrl+y"
    """Delivery confirmation dialog: yes, the full bin is here."""
    kiosk: bool | None = None
    """Kiosk mode: no command palette, and quitting or cancelling a call needs a team lead's badge
    and PIN. None: the verb decides (`run`: on; `demo`: off unless `--kiosk`)."""

    @model_validator(mode="after")
    def _no_key_means_two_things(self) -> KeySettings:
        problems = clashes(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def binding_keymap(self) -> dict[str, str]:
        """Textual binding id -> keys, for `App.set_keymap`."""
        return {binding_id: getattr(self, name) for name, binding_id in BINDING_IDS.items()}


GLOBAL = ("scan", "board", "andon", "call_help", "log", "stop_line", "metrics", "quit", "handover")
SCREEN_KEYS = {
    "andon screen": ("acknowledge", "resolve", "cancel_call", "shelve", "logout"),
    "board screen": ("card_action", "reroute"),
    "scan screen": ("delivery_issue",),
}
# Dialogs block the global keys (Textual's modal screens), but a person learned them: the
# confirmation key must still not be one of them.
DIALOG_KEYS = {"confirmation dialog": ("confirm_delivery",)}

BINDING_IDS = {
    "scan": "mode.scan",
    "board": "mode.board",
    "andon": "mode.andon",
    "call_help": "andon.raise_call",
    "log": "mode.log",
    "stop_line": "andon.raise_stop",
    "metrics": "mode.metrics",
    "quit": "app.quit",
    "handover": "app.handover",
    "acknowledge": "andon.acknowledge",
    "resolve": "andon.resolve",
    "cancel_call": "andon.cancel",
    "shelve": "andon.shelve",
    "logout": "andon.logout",
    "card_action": "board.card_action",
    "reroute": "board.reroute",
    "delivery_issue": "scan.delivery_issue",
    "confirm_delivery": "confirm.yes",
}


def clashes(keys: KeySettings) -> list[str]:
    """Every key that means two things on one screen, or that a terminal or a text field takes."""
    problems: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    groups = {"every screen": GLOBAL, **{where: GLOBAL + names for where, names in SCREEN_KEYS.items()}}
    groups.update({where: GLOBAL + names for where, names in DIALOG_KEYS.items()})
    for where, names in groups.items():
        owner: dict[str, str] = {}
        for name in names:
            for key in getattr(keys, name).split(","):
                first = owner.setdefault(key, name)
                if first != name and (key, first, name) not in seen:
                    seen.add((key, first, name))
                    problems.append(f"{key} means both {first} and {name} on the {where}")
    for name in BINDING_IDS:
        for key in getattr(keys, name).split(","):
            if key in TAKEN_BY_TERMINALS:
                problems.append(f"{name} = {key}: GNOME Terminal and xfce4-terminal keep {key} to themselves")
            if key in EDITING_KEYS:
                problems.append(f"{name} = {key}: the text fields use {key} for editing")
    return problems


def key_label(keys: str) -> str:
    """How a person reads the first of `keys`: "ctrl+y" -> "Ctrl+Y", "f5" -> "F5"."""
    parts = keys.split(",")[0].split("+")
    return "+".join(part.capitalize() if len(part) > 1 else part.upper() for part in parts)


class WedgeSettings(_Model):
    """`[wedge]`: how a keyboard-wedge scanner's read is told from a person typing, so that a read
    goes to the scan path whatever field or list has the focus (tui/scanner_input.py)."""

    max_gap_ms: float = Field(50, gt=0, le=500)
    """Longest gap between two keys of one read, terminator included. Scanners type a read at
    1-10 ms a key; people type at about 120-240 ms a key on average (Dhakal et al., CHI 2018,
    136 M keystrokes), and even a fast typist rarely strings four keys under 50 ms. 50 ms is also
    what keyboard-wedge handlers commonly use."""
    min_length: int = Field(4, ge=2, le=64)
    """Fewest characters in a read (the terminator not counted): shorter bursts are typing.
    Badges have 5 characters and card ids 6 in the demo."""
    terminators: tuple[KeyList, ...] = ("enter", "tab")
    """Keys that end a read (Textual key names): scanners send Enter (CR) or Tab."""
    aim_prefix: bool = False
    """The scanners send an AIM symbology identifier (`]` + 2 characters, ISO/IEC 15424) before
    each read: a run that starts with one is a read whatever its timing (nobody types `]C0`)."""

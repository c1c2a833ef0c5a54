"""`[keys]` and `[wedge]` (config_keyboard.py): defaults no terminal takes, no key with two meanings
on one screen, every problem reported with its key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from kanban_terminal.config import ConfigError, demo_config_path, load_config
from kanban_terminal.config_keyboard import TAKEN_BY_TERMINALS, KeySettings, clashes, key_label


def test_the_defaults_clash_nowhere_and_avoid_the_keys_terminals_take() -> None:
    keys = KeySettings()
    assert clashes(keys) == []
    used = {k for keys_of in keys.binding_keymap().values() for k in keys_of.split(",")}
    assert not used & TAKEN_BY_TERMINALS
    assert keys.log != keys.confirm_delivery  # F5 was "Log" and "Yes, delivered"


def write(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "line.toml"
    path.write_text(demo_config_path().read_text() + extra)
    return path


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ('\n[keys]\nconfirm_delivery = "f5"\n', "f5 means both log and confirm_delivery"),
        ('\n[keys]\nresolve = "f2"\n', "f2 means both board and resolve on the andon screen"),
        ('\n[keys]\nquit = "f10"\n', "quit = f10: GNOME Terminal and xfce4-terminal keep f10"),
        ('\n[keys]\nmetrics = "ctrl+u"\n', "the text fields use ctrl+u for editing"),
        ("\n[wedge]\nmax_gap_ms = 0\n", "greater than 0"),
    ],
)
def test_a_bad_keymap_is_refused_with_its_key_path(tmp_path: Path, extra: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, extra))
    text = str(caught.value)
    assert words in text
    assert ("keys" if "[keys]" in extra else "wedge") in text


def test_a_screen_key_may_mean_different_things_on_different_screens(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, '\n[keys]\ncard_action = "f8"\nkiosk = false\n'))
    assert cfg.keys.card_action == cfg.keys.resolve == "f8"  # board vs andon screen
    assert cfg.keys.kiosk is False


def test_key_labels_read_as_printed_on_the_keyboard() -> None:
    assert [key_label(k) for k in ("ctrl+y", "f12", "f5,home")] == ["Ctrl+Y", "F12", "F5"]

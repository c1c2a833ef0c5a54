"""A test line with a second source, a team lead and a quality reason (issues 17, 18).

The MQTT test line (tests/support/mqtt_lines.py: plain card ids C00001..., no debounce) plus a
warehouse SM2 that loop LP0 may be re-routed to, team lead TL1 (PIN 2468 once enrolled) and the
QUAL reason a damaged delivery calls.
"""

from __future__ import annotations

from pathlib import Path

from kanban_terminal.config import TerminalConfig, parse_config
from kanban_terminal.domain.auth import SessionState
from kanban_terminal.services.auth import AuthSession, enroll, login
from kanban_terminal.services.terminal import Terminal
from tests.support.mqtt_lines import line_config

EXTRA = """
[[sources]]
id = "SM2"
kind = "warehouse"

[[second_sources]]
loop = "LP0"
source = "SM2"

[[people]]
badge = "TL1"
name = "Tess Lead"
role = "team_lead"

[[people]]
badge = "OP1"
name = "Otto Operator"
role = "operator"

[[andon_reasons]]
code = "QUAL"
label = "Quality problem"

[[andon_reasons]]
code = "MAT"
label = "Material shortage"
"""
PIN = "2468"


def supply_config(tmp: Path, cards: int = 3) -> tuple[TerminalConfig, Path]:
    text = line_config(loops=2, cards=cards, sensors=2) + EXTRA
    path = tmp / "supply.toml"
    path.write_text(text)
    return parse_config(text, str(path)), path


def team_lead(terminal: Terminal) -> AuthSession:
    """TL1 enrolled and logged in, as the screen's dialog or the CLI would."""
    assert enroll(terminal, "TL1", PIN, n=2**10) is None  # a cheap scrypt: the test is not about it
    state = login(terminal, "TL1", PIN, source="test")
    assert isinstance(state, SessionState), state
    auth = AuthSession()
    auth.start(state)
    return auth

"""Configuration of the andon: the people who answer it, its reason codes and its limits.

Split from config.py, which re-exports `Person`, `AndonReason` and `AndonSettings` for the modules
that import them from there. `Ident` repeats config.py's pattern (config.py imports this module, so
it is repeated, not imported).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Person(_Model):
    badge: Ident
    """Badge id as the badge barcode reads."""
    name: str
    """Name shown on screen and in the log."""
    role: Literal["operator", "team_lead", "supervisor", "manager", "maintenance"]
    """Role; team leads and above may stop the line and suspend cards."""


class AndonReason(_Model):
    code: Ident
    """Reason code."""
    label: str
    """What the floor calls it."""
    kinds: tuple[Literal["call", "stop"], ...] = ("call", "stop")
    """Which andon kinds may use this reason."""
    colour: str = "yellow"
    """Colour of the reason on screen and stack light."""
    escalation_minutes: tuple[float, ...] = (0, 5, 15)
    """Minutes unacknowledged after which each tier (team lead, supervisor, manager) is called."""


class AndonSettings(_Model):
    shelve_max_minutes: float = Field(60, gt=0, le=8 * 60)
    """Longest time a team lead may shelve a chattering andon source; shelving is never indefinite."""
    team_lead_idle_minutes: float = Field(5, gt=0, le=120)
    """A team-lead session (badge + PIN) ends after this many minutes without an action."""
    pin_failures_before_lockout: int = Field(5, ge=3, le=10)
    """Consecutive wrong PINs after which a badge is locked out for a growing delay."""
    lockout_seconds: float = Field(30, ge=1, le=3600)
    """First lockout delay; it doubles with every further wrong PIN (capped at 15 min)."""
    pin_failures_before_block: int = Field(100, ge=10, le=100)
    """Consecutive wrong PINs after which the badge is blocked until re-enrolled (NIST: at most 100)."""
    stop_devices: tuple[Ident, ...] = ()
    """Andon devices whose STOP signal needs no PIN: key-switch buttons only team leads hold."""
    stack_lights: tuple[Ident, ...] = ()
    """Devices that receive stack-light commands on their command topic."""
    history: int = Field(20, ge=1, le=500)
    """How many closed andon events the andon screen lists."""

"""Terminal configuration: a TOML file read into frozen, validated models.

`load_config` reports every problem at once, each with its key path and, where it can be found, the
line in the file: a person fixing a config on a line PC should not have to play whack-a-mole. Secrets
(broker passwords, team-lead PIN hashes) never live here: the file is meant for version control.
The `[mqtt]` model lives in mqtt_settings.py (the firmware bridge reads it too) and the wording of
problems in config_problems.py; both are re-exported here for the modules that import them from here.

Safety factor convention: ADDITIVE, as in the Toyota / textbook formula N = D x L x (1 + S) / C,
so `safety_factor = 0.2` means 20 % above lead-time demand and 0 means none. (SAP's SF multiplies and
defaults to 1.0; a value copied from SAP must have 1 subtracted.)
"""

from __future__ import annotations

import re
import tomllib
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from kanban_terminal.config_bins import BinSensor as BinSensor
from kanban_terminal.config_bins import share_card_strings, upper_id
from kanban_terminal.config_keyboard import KeySettings, WedgeSettings
from kanban_terminal.config_lookups import by_key
from kanban_terminal.config_problems import ConfigError as ConfigError
from kanban_terminal.config_problems import Problem as Problem
from kanban_terminal.config_problems import key_lines, line_of, message_of, path_text
from kanban_terminal.config_sourcing import DeliverySettings, SecondSource, check_sourcing
from kanban_terminal.display_settings import DisplaySettings
from kanban_terminal.domain.card_ids import generated_card_id, has_valid_check, is_safe_payload
from kanban_terminal.domain.scans import LoopTerms
from kanban_terminal.mqtt_settings import PLAIN_MQTT_RULE as PLAIN_MQTT_RULE
from kanban_terminal.mqtt_settings import MqttConfigError as MqttConfigError
from kanban_terminal.mqtt_settings import MqttSettings as MqttSettings
from kanban_terminal.mqtt_settings import check_tls_for_host as check_tls_for_host
from kanban_terminal.mqtt_settings import is_loopback_host as is_loopback_host
from kanban_terminal.peer_settings import UpstreamSettings as UpstreamSettings
from kanban_terminal.resilience_config import QualityStopSettings, Reserve, RunwayConfig, check_resilience
from kanban_terminal.site_settings import Site as Site

Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
CardId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{2,40}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Line(_Model):
    id: Ident
    """Line id, used in MQTT topics."""
    name: str = ""
    """Human name shown in the status bar."""


class TerminalSettings(_Model):
    id: Ident
    """Terminal id: MQTT client id and the `terminal` level of its topics."""
    debounce_seconds: float = Field(3.0, ge=0, le=60)
    """A repeat scan of the same card within this many seconds is ignored (scanner re-reads)."""
    require_check_character: bool = True
    """Refuse card codes whose ISO/IEC 7064 check character is wrong. Turn off only for plants whose
    printed cards predate this product."""
    max_code_length: int = Field(48, ge=4, le=256)
    """Longer input is refused as two labels read at once."""
    recent_scans: int = Field(12, ge=1, le=200)
    """How many recent scans the scan screen lists."""
    lost_after_lead_times: float = Field(3.0, gt=0, le=1000)
    """A circulating card not seen for this many times its loop's planned lead time is flagged
    lost (issue 6)."""
    log_key_file: Path | None = None
    """The card-log key (0600 JSON, made on first start); default `log-key.json` in the data dir.
    Keep a copy off the machine: without it the keyed rows cannot be verified (docs/OPERATIONS.md)."""
    anchor_every_minutes: float = Field(15.0, gt=0, le=24 * 60)
    """The log's head (row id + hash) is published to the broker at least this often, and after
    every batch of requests the broker acknowledged (docs/RELIABILITY.md, anchors)."""


class Station(_Model):
    id: Ident
    """Station (workplace) id on the line."""
    name: str = ""
    """Human name."""


class Source(_Model):
    id: Ident
    """Where replenishment comes from: a supermarket, a warehouse or a supplier."""
    kind: Literal["supermarket", "warehouse", "supplier"]
    """Kind of source; the supplier scorecard groups by it."""
    name: str = ""
    """Human name."""


class Part(_Model):
    number: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    """Part number as on the bin label."""
    description: str = ""
    """What the part is."""
    unit: str = "pcs"
    """Unit of the container quantity."""


@lru_cache(maxsize=1024)
def _loop_terms(lead_time_minutes: float, min_plausible_minutes: float | None) -> LoopTerms:
    """A loop's `LoopTerms` (cached by value: not a property cache, which pydantic's `model_copy`
    would carry over to a copy with another lead time; see site_settings.calendar_of)."""
    planned = timedelta(minutes=lead_time_minutes)
    if min_plausible_minutes is None:
        return LoopTerms(planned_lead_time=planned, min_plausible_lead_time=planned / 10)
    plausible = timedelta(minutes=min_plausible_minutes)
    return LoopTerms(planned_lead_time=planned, min_plausible_lead_time=plausible)


class Loop(_Model):
    id: Ident
    """Kanban loop id: one part at one point of use, fed from one source."""
    part: str
    """Part number (must be listed under [[parts]])."""
    station: Ident
    """Station id (must be listed under [[stations]])."""
    point_of_use: str
    """Rack / shelf position the bin sits in, as the floor names it."""
    source: Ident
    """Source id (must be listed under [[sources]])."""
    container_quantity: int = Field(gt=0, le=1_000_000)
    """Parts in one full bin."""
    cards: int | None = Field(None, ge=1, le=99)
    """Number of cards to generate (ids card_prefix + 01.. + check character)."""
    card_prefix: str | None = None
    """Prefix of generated card ids: digits and letters other than A I M O Q W Y Z."""
    card_ids: tuple[CardId, ...] | None = None
    """Explicit card ids, for cards already printed. Use instead of cards + card_prefix."""
    lead_time_minutes: float = Field(gt=0, le=60 * 24 * 90)
    """Planned replenishment lead time, empty signal to full bin back at the line."""
    safety_factor: float = Field(0.0, ge=0, le=5)
    """Additive safety factor S in N = D x L x (1 + S) / C."""
    min_plausible_lead_time_minutes: float | None = Field(None, ge=0)
    """A delivery scanned sooner than this after the request needs confirmation; default 10 % of
    the planned lead time."""
    material_andon: bool = True
    """Raise a material andon (CALL, reason MAT, linked to the card) when a request of this loop passes
    its due time with no delivery."""

    @property
    def terms(self) -> LoopTerms:
        """Built once per loop's settings: every signal and every runway pass asks for it."""
        return _loop_terms(self.lead_time_minutes, self.min_plausible_lead_time_minutes)

    @property
    def card_count(self) -> int:
        """How many cards the loop has, without building their ids: the runway asks it of every loop
        every 2 s while cards change (200 loops of 100 cards: 23 ms a tick through card_id_list)."""
        return len(self.card_ids) if self.card_ids is not None else (self.cards or 0)

    def card_id_list(self) -> tuple[str, ...]:
        if self.card_ids is not None:
            return tuple(upper_id(c) for c in self.card_ids)
        assert self.cards is not None and self.card_prefix is not None
        return tuple(generated_card_id(self.card_prefix, i) for i in range(1, self.cards + 1))


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


class SerialScannerSettings(_Model):
    name: Ident
    """Short name shown in the status bar (e.g. "ST10")."""
    port: str
    """Serial device; prefer a stable /dev/serial/by-id/... link, which survives a replug."""
    baud: int = Field(9600, ge=1200, le=921_600)
    """Baud rate of a real UART; USB-CDC scanners ignore it."""
    terminator: Literal["CR", "LF", "TAB"] = "CR"
    """The suffix the scanner is programmed to send after each code."""


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


class TerminalConfig(_Model):
    site: Site
    line: Line
    terminal: TerminalSettings
    stations: tuple[Station, ...]
    sources: tuple[Source, ...]
    parts: tuple[Part, ...]
    loops: tuple[Loop, ...]
    people: tuple[Person, ...] = ()
    andon_reasons: tuple[AndonReason, ...] = ()
    scanners: tuple[SerialScannerSettings, ...] = ()
    mqtt: MqttSettings | None = None
    """Broker link; none means the terminal works offline (requests wait in the outbox)."""
    bins: tuple[BinSensor, ...] = ()
    """Bin sensors and the card each one watches."""
    upstream: UpstreamSettings = UpstreamSettings()
    """Settings of the upstream peer when this file configures one."""

    andon: AndonSettings = Field(default_factory=AndonSettings)
    keys: KeySettings = Field(default_factory=KeySettings)
    """The keymap and kiosk mode (config_keyboard.py)."""
    wedge: WedgeSettings = Field(default_factory=WedgeSettings)
    """How a keyboard-wedge scanner's reads are told from typing (config_keyboard.py)."""
    second_sources: tuple[SecondSource, ...] = ()
    """Alternate sources a team lead may re-route a loop to (config_sourcing.py)."""
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    """What a short or damaged delivery raises (config_sourcing.py)."""
    display: DisplaySettings = Field(default_factory=DisplaySettings)
    """How long the screen shows a misread, how often live screens re-read (display_settings.py)."""
    runway: RunwayConfig = Field(default_factory=RunwayConfig)
    """Runway warnings before run-out (resilience_config.py)."""
    reserves: tuple[Reserve, ...] = ()
    """Contingency reserves of critical loops, with their red cards (resilience_config.py)."""
    quality_stop: QualityStopSettings = Field(default_factory=QualityStopSettings)
    """Whether anyone may stop the line for quality (resilience_config.py)."""

    def part(self, number: str) -> Part:
        return by_key(self.parts, "number")[number]  # one probe a signal, not a walk (config_lookups.py)

    def loop(self, loop_id: str) -> Loop:
        return next(lp for lp in self.loops if lp.id == loop_id)

    def station(self, station_id: str) -> Station:
        return next(s for s in self.stations if s.id == station_id)

    def source(self, source_id: str) -> Source:
        return next(s for s in self.sources if s.id == source_id)


def _cross_check(cfg: TerminalConfig) -> list[tuple[tuple[str | int, ...], str]]:
    problems: list[tuple[tuple[str | int, ...], str]] = []

    def unique(items: tuple[object, ...], attr: str, section: str) -> None:
        seen: set[str] = set()
        for i, item in enumerate(items):
            value = getattr(item, attr)
            if value in seen:
                problems.append(((section, i, attr), f"duplicate {attr} {value!r}"))
            seen.add(value)

    unique(cfg.stations, "id", "stations")
    unique(cfg.sources, "id", "sources")
    unique(cfg.parts, "number", "parts")
    unique(cfg.loops, "id", "loops")
    unique(cfg.people, "badge", "people")
    unique(cfg.andon_reasons, "code", "andon_reasons")
    unique(cfg.scanners, "name", "scanners")
    parts = {p.number for p in cfg.parts}
    stations = {s.id for s in cfg.stations}
    sources = {s.id for s in cfg.sources}
    owner: dict[str, str] = {}
    for i, loop in enumerate(cfg.loops):
        if loop.part not in parts:
            problems.append((("loops", i, "part"), f"unknown part {loop.part!r}: add it under [[parts]]"))
        if loop.station not in stations:
            problems.append((("loops", i, "station"), f"unknown station {loop.station!r}"))
        if loop.source not in sources:
            problems.append((("loops", i, "source"), f"unknown source {loop.source!r}"))
        if loop.card_ids is None:
            if loop.cards is None or loop.card_prefix is None:
                problems.append((("loops", i), "give either card_ids, or cards and card_prefix"))
                continue
            if not is_safe_payload(loop.card_prefix):
                problems.append(
                    (("loops", i, "card_prefix"), "use only digits and B C D E F G H J K L N P R S T U V X")
                )
                continue
        elif loop.cards is not None or loop.card_prefix is not None:
            problems.append((("loops", i), "give either card_ids, or cards and card_prefix, not both"))
            continue
        for j, card in enumerate(loop.card_id_list()):
            if card in owner:
                problems.append((("loops", i, "card_ids", j), f"card {card} is also in loop {owner[card]}"))
            owner[card] = loop.id
            if (
                loop.card_ids is not None
                and cfg.terminal.require_check_character
                and not has_valid_check(card)
            ):
                problems.append(
                    (
                        ("loops", i, "card_ids", j),
                        f"card {card} has no valid check character; fix the id or set "
                        "terminal.require_check_character = false",
                    )
                )
    problems += _check_bins(cfg, owner)
    problems += check_sourcing(
        cfg.second_sources, cfg.delivery, loop_sources={lp.id: lp.source for lp in cfg.loops},
        sources=sources, reason_kinds={r.code: r.kinds for r in cfg.andon_reasons},
    )  # fmt: skip
    problems += check_resilience(cfg, owner)
    return problems


def _check_bins(cfg: TerminalConfig, cards: dict[str, str]) -> list[tuple[tuple[str | int, ...], str]]:
    problems: list[tuple[tuple[str | int, ...], str]] = []
    devices: set[str] = set()
    for i, sensor in enumerate(cfg.bins):
        if sensor.device in devices:
            problems.append((("bins", i, "device"), f"duplicate device {sensor.device!r}"))
        devices.add(sensor.device)
        if sensor.card.upper() not in cards:
            problems.append((("bins", i, "card"), f"unknown card {sensor.card!r}: not in any loop"))
    return problems


def parse_config(text: str, source: str = "<config>") -> TerminalConfig:
    """Parse and validate TOML text; raise ConfigError listing every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise ConfigError(
            source, [Problem("", f"not valid TOML: {exc}", int(match[1]) if match else None)]
        ) from None
    except RecursionError:  # tomllib recurses per nesting level: 100,000 `[` ended in exit 70
        raise ConfigError(
            source, [Problem("", "not valid TOML: arrays or tables nested too deeply")]
        ) from None
    share_card_strings(data)
    try:
        cfg = TerminalConfig.model_validate(data)
    except ValidationError as exc:
        lines = key_lines(text)
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            problems.append(Problem(path_text(loc), message_of(err), line_of(lines, loc)))
        raise ConfigError(source, problems) from None
    del data  # the TOML's tables: 9.7 MB for 20,000 bins, garbage once validated
    cross = _cross_check(cfg)
    if cross:
        # Lines are looked up only for a config with problems: the map of every key's line held
        # 12 MB at once for a 20,000-card line, on every start (issue 19).
        lines = key_lines(text)
        raise ConfigError(source, [Problem(path_text(loc), msg, line_of(lines, loc)) for loc, msg in cross])
    return cfg


def load_config(path: Path) -> TerminalConfig:
    """Read and validate the configuration file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), [Problem("", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [Problem("", f"cannot read the file: {exc}")]) from None
    return parse_config(text, str(path))


def demo_config_path() -> Path:
    """The demo line's configuration, shipped in the wheel and kept in config/ in the repository."""
    packaged = Path(__file__).parent / "_data" / "demo.toml"
    if packaged.exists():
        return packaged
    return Path(__file__).resolve().parent.parent / "config" / "demo.toml"

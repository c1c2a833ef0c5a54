"""Terminal configuration: a TOML file read into frozen, validated models.

`load_config` reports every problem at once, each with its key path and, where it can be found, the
line in the file: a person fixing a config on a line PC should not have to play whack-a-mole. Secrets
(broker passwords, team-lead PIN hashes) never live here: the file is meant for version control.
The `[mqtt]` model lives in mqtt_settings.py (the firmware bridge reads it too) and the wording of
problems in config_problems.py; both are re-exported here for the modules that import them from here,
as are the parts and loops (config_loops.py) and the people and andon settings (config_andon.py).

Safety factor convention: ADDITIVE, as in the Toyota / textbook formula N = D x L x (1 + S) / C,
so `safety_factor = 0.2` means 20 % above lead-time demand and 0 means none. (SAP's SF multiplies and
defaults to 1.0; a value copied from SAP must have 1 subtracted.)
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from kanban_terminal.config_andon import AndonReason as AndonReason
from kanban_terminal.config_andon import AndonSettings as AndonSettings
from kanban_terminal.config_andon import Person as Person
from kanban_terminal.config_bins import BinSensor as BinSensor
from kanban_terminal.config_bins import share_card_strings
from kanban_terminal.config_keyboard import KeySettings, WedgeSettings
from kanban_terminal.config_lookups import by_key
from kanban_terminal.config_loops import CardId as CardId
from kanban_terminal.config_loops import Loop as Loop
from kanban_terminal.config_loops import Part as Part
from kanban_terminal.config_problems import ConfigError as ConfigError
from kanban_terminal.config_problems import Problem as Problem
from kanban_terminal.config_problems import key_lines, line_of, message_of, path_text
from kanban_terminal.config_sourcing import DeliverySettings, SecondSource, check_sourcing
from kanban_terminal.display_settings import DisplaySettings
from kanban_terminal.domain.card_ids import has_valid_check, is_safe_payload
from kanban_terminal.mqtt_settings import PLAIN_MQTT_RULE as PLAIN_MQTT_RULE
from kanban_terminal.mqtt_settings import MqttConfigError as MqttConfigError
from kanban_terminal.mqtt_settings import MqttSettings as MqttSettings
from kanban_terminal.mqtt_settings import check_tls_for_host as check_tls_for_host
from kanban_terminal.mqtt_settings import is_loopback_host as is_loopback_host
from kanban_terminal.peer_settings import UpstreamSettings as UpstreamSettings
from kanban_terminal.resilience_config import QualityStopSettings, Reserve, RunwayConfig, check_resilience
from kanban_terminal.site_settings import Site as Site

Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


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


class SerialScannerSettings(_Model):
    name: Ident
    """Short name shown in the status bar (e.g. "ST10")."""
    port: str
    """Serial device; prefer a stable /dev/serial/by-id/... link, which survives a replug."""
    baud: int = Field(9600, ge=1200, le=921_600)
    """Baud rate of a real UART; USB-CDC scanners ignore it."""
    terminator: Literal["CR", "LF", "TAB"] = "CR"
    """The suffix the scanner is programmed to send after each code."""


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

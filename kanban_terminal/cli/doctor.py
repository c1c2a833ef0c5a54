"""`kanban-terminal doctor`: check everything a line PC needs and say what to fix, one line each.

Meant for plant IT standing at a terminal (or ssh'd into one) with no knowledge of the code: every
check returns OK, WARN or FAIL and a sentence that names the thing and the fix. Checks never write:
the database is read with plain sqlite3 (never migrated, never created), serial ports are opened and
closed, the broker gets one connect and a disconnect.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from kanban_terminal.config import ConfigError, load_config
from kanban_terminal.storage import backup as files
from kanban_terminal.storage import log_key
from kanban_terminal.storage.errors import STORAGE_ERRORS

if TYPE_CHECKING:
    from kanban_terminal.mqtt_settings import MqttSettings

DB_FILENAME = "terminal.db"
DEFAULT_MIN_FREE_MB = 200
"""Below this the disk check fails: a year of scans is a few MB, but backups and logs need room too."""
CLOCK_SLACK = timedelta(minutes=1)
EARLIEST_PLAUSIBLE_YEAR = 2025
"""A clock before this (an RTC battery gone flat resets to 1970 or 2000) breaks every due time."""


class Level(StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    name: str
    level: Level
    message: str

    def line(self) -> str:
        return f"{self.level.value:<5} {self.name:<9} {self.message}"


@dataclass(frozen=True)
class DoctorOptions:
    config: Path | None
    data_dir: Path
    mqtt_url: str | None = None
    mqtt_password: str | None = None
    serial_ports: tuple[Path, ...] = ()
    min_free_bytes: int = DEFAULT_MIN_FREE_MB * 1024 * 1024
    broker_timeout: float = 5.0
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def check_config(opts: DoctorOptions) -> Check:
    if opts.config is None:
        return Check("config", Level.FAIL, "no configuration given: pass --config PATH or set KANBAN_CONFIG")
    try:
        cfg = load_config(opts.config)
    except ConfigError as exc:
        first = f": {exc.problems[0]}" if exc.problems else ""
        return Check(
            "config",
            Level.FAIL,
            f"{opts.config} has {len(exc.problems)} problem(s){first}; "
            f"run `kanban-terminal check-config {opts.config}` for all of them",
        )
    return Check("config", Level.OK, f"{opts.config}: line {cfg.line.id}, terminal {cfg.terminal.id}")


def check_data_dir(opts: DoctorOptions) -> Check:
    d = opts.data_dir
    if not d.exists():
        return Check("data-dir", Level.WARN, f"{d} does not exist yet; it is created at first start")
    mode = d.stat().st_mode & 0o777
    if mode & 0o077:
        return Check("data-dir", Level.WARN, f"{d} is mode {mode:o}, readable by others: chmod 700 {d}")
    if not os.access(d, os.W_OK):
        return Check(
            "data-dir", Level.FAIL, f"{d} is not writable by this user: chown it to the terminal's user"
        )
    return Check("data-dir", Level.OK, f"{d} (mode {mode:o})")


def _configured_key_file(opts: DoctorOptions) -> Path | None:
    try:
        return load_config(opts.config).terminal.log_key_file if opts.config else None
    except ConfigError:
        return None  # check_config reports it


def check_database(opts: DoctorOptions) -> Check:
    path = opts.data_dir / DB_FILENAME
    if not path.exists():
        return Check("database", Level.WARN, f"{path} does not exist yet; it is created at first start")
    problems = files.integrity_problems(path)
    if problems:
        return Check(
            "database",
            Level.FAIL,
            f"{path} is damaged ({problems[0]}): "
            "stop the terminal and `kanban-terminal restore` the last backup",
        )
    revision = files.schema_revision(path)
    if revision is not None and not files.is_known_revision(revision):
        return Check(
            "database",
            Level.FAIL,
            f"{path} has schema {revision}, written by a newer kanban-terminal: install that version again",
        )
    try:
        key = log_key.load(log_key.key_path(opts.data_dir, _configured_key_file(opts)))
    except log_key.LogKeyError as exc:
        return Check("database", Level.FAIL, str(exc))
    try:
        chain = files.chain_report(path, key)
    except STORAGE_ERRORS as exc:
        return Check("database", Level.FAIL, f"{path}: cannot read the card log ({exc})")
    if not chain.ok:
        return Check(
            "database",
            Level.FAIL,
            f"card log row {chain.first_broken_id} does not verify ({chain.reason}): the file was edited "
            "outside the terminal; keep it for investigation and restore the last good backup",
        )
    return Check(
        "database", Level.OK, f"integrity ok, schema {revision}, card log verified ({chain.rows} rows)"
    )


def _broker_settings(opts: DoctorOptions) -> tuple[MqttSettings | None, str]:
    """The broker `serve` would use, resolved the same way (`--mqtt` / KANBAN_MQTT_URL over the
    config's `[mqtt]`, whose CA file, client certificate and password source then apply), and where
    it came from. Raises `MqttConfigError` for a URL or settings `serve` would refuse."""
    from kanban_terminal.mqtt_settings import parse_mqtt_url

    cfg = None
    if opts.config is not None:
        with contextlib.suppress(ConfigError, OSError):  # the config check reports it
            cfg = load_config(opts.config)
    base = cfg.mqtt if cfg is not None else None
    if opts.mqtt_url:
        return parse_mqtt_url(opts.mqtt_url, base), "--mqtt / KANBAN_MQTT_URL"
    return base, f"[mqtt] of {opts.config}"


def check_broker(opts: DoctorOptions) -> Check:
    from kanban_terminal.adapters.broker_probe import ProbeFailure, probe_settings
    from kanban_terminal.config import MqttConfigError
    from kanban_terminal.mqtt_settings import read_password

    try:  # the same rule and words as run/serve: a URL they refuse must not "pass" here
        settings, origin = _broker_settings(opts)
        if settings is None:
            nothing = "not checked: no [mqtt] in the config, no --mqtt URL, no KANBAN_MQTT_URL"
            return Check("broker", Level.WARN, nothing)
        password = opts.mqtt_password or read_password(settings)
    except MqttConfigError as exc:
        return Check("broker", Level.FAIL, str(exc))
    except OSError as exc:
        return Check("broker", Level.FAIL, f"cannot read the broker password file: {exc.strerror or exc}")
    result = probe_settings(settings, password=password, timeout=opts.broker_timeout)
    if result.ok:
        return Check("broker", Level.OK, f"{result.detail} (from {origin})")
    fixes = {
        ProbeFailure.BAD_URL: "use mqtt://host:1883 or mqtts://user@host:8883",
        ProbeFailure.REFUSED: "is the broker running, and is this the right port?",
        ProbeFailure.TIMEOUT: "check the host, the network and any firewall between",
        ProbeFailure.TLS: "check the port is the TLS one and the broker's CA is trusted",
        ProbeFailure.DNS: "check the host name (or use the IP address)",
        ProbeFailure.NOT_AUTHORIZED: "check the user in the URL, KANBAN_MQTT_PASSWORD and the broker's ACL",
        ProbeFailure.REJECTED: "see the broker's log",
        ProbeFailure.NETWORK: "check the network",
    }
    assert result.failure is not None
    return Check("broker", Level.FAIL, f"{result.failure.value}: {result.detail}; {fixes[result.failure]}")


def check_serial(opts: DoctorOptions) -> list[Check]:
    checks = []
    for port in opts.serial_ports:
        name = "serial"
        if not port.exists():
            checks.append(
                Check(
                    name,
                    Level.FAIL,
                    f"{port} is missing: is the device plugged in? (see ls -l /dev/serial/by-id/)",
                )
            )
            continue
        try:
            fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except PermissionError:
            checks.append(
                Check(
                    name, Level.FAIL, f"{port}: permission denied: add the terminal's user to group dialout"
                )
            )
            continue
        except OSError as exc:
            checks.append(Check(name, Level.FAIL, f"{port}: cannot open ({exc.strerror})"))
            continue
        os.close(fd)
        checks.append(Check(name, Level.OK, f"{port} opens"))
    return checks


def check_clock(opts: DoctorOptions) -> Check:
    now = opts.now()
    if not EARLIEST_PLAUSIBLE_YEAR <= now.year <= 2100:
        return Check(
            "clock",
            Level.FAIL,
            f"the clock says {now:%Y-%m-%d %H:%M}Z: set the time and enable NTP (timedatectl)",
        )
    newest = files.newest_log_time(opts.data_dir / DB_FILENAME)
    if newest is not None and newest > now + CLOCK_SLACK:
        return Check(
            "clock",
            Level.FAIL,
            f"the clock ({now:%Y-%m-%d %H:%M:%S}Z) is behind the newest log row "
            f"({newest:%Y-%m-%d %H:%M:%S}Z): fix the time source (timedatectl) before scanning",
        )
    return Check("clock", Level.OK, f"{now:%Y-%m-%d %H:%M:%S}Z")


def check_disk(opts: DoctorOptions) -> Check:
    where = opts.data_dir
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free
    mb, need = free // (1024 * 1024), opts.min_free_bytes // (1024 * 1024)
    if free < opts.min_free_bytes:
        return Check(
            "disk",
            Level.FAIL,
            f"only {mb} MB free under {where} (need {need} MB): delete old backups or logs, or grow the disk",
        )
    if free < 2 * opts.min_free_bytes:
        return Check("disk", Level.WARN, f"{mb} MB free under {where}, close to the {need} MB minimum")
    return Check("disk", Level.OK, f"{mb} MB free under {where}")


def run_checks(opts: DoctorOptions) -> list[Check]:
    """Every check, in the order a person would fix them; none stops the others."""
    checks: list[Check] = []
    for one in (check_config, check_data_dir, check_database, check_broker):
        try:
            checks.append(one(opts))
        except Exception as exc:  # a check that crashes is itself a finding, not a traceback
            checks.append(Check(one.__name__.removeprefix("check_"), Level.FAIL, f"check crashed: {exc!r}"))
    checks += check_serial(opts)
    checks += [check_clock(opts), check_disk(opts)]
    return checks

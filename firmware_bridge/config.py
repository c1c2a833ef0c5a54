"""The bridge's configuration: TOML read with tomllib into frozen pydantic models.

Unknown keys are errors (`extra="forbid"`), so a typo in a plant file fails at start-up with its key
path instead of silently running on a default. The `[broker]` section is the terminal's own
`MqttSettings` (kanban_terminal.mqtt_settings): the same link, the same rules (TLS 1.2+ with
verification to any broker off this machine), the password from KANBAN_MQTT_PASSWORD or a 0600
`password_file`, never from the file. Only the bridge's defaults differ (a one-hour session), and the
terminal's relay settings are refused here. It must not import the terminal's storage or services.
"""

from __future__ import annotations

import os
import ssl
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kanban_terminal.mqtt_settings import (
    TERMINAL_ONLY,
    TLS_FILES,
    MqttConfigError,
    MqttSettings,
    read_password,
    with_url,
)
from kanban_terminal.topics import check_level

PASSWORD_ENV = "KANBAN_MQTT_PASSWORD"
SESSION_EXPIRY_S = 3600
"""The bridge's session default: stack-light commands older than an hour are stale, not worth queueing."""
NOT_FOR_THE_BRIDGE = {
    **{key: "a setting of the terminal's relay" for key in TERMINAL_ONLY},
    "heartbeat_s": "the bridge's heartbeat is limits.bridge_heartbeat_s",
}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DeviceConfig(_Model):
    id: str
    """Device id: the first field of every frame, and a level of its MQTT topics."""
    port: str
    """Serial port path; prefer a stable /dev/serial/by-id/... link, which survives a replug."""
    baud: int = Field(115200, gt=0)
    """Baud rate (ignored by USB-CDC and by pseudo-terminals, used by real UARTs)."""
    kind: Literal["station", "andon", "bin"] = "station"
    """station: button + bin sensor + stack light; andon: button + stack light; bin: sensor only."""

    @field_validator("id")
    @classmethod
    def _topic_safe(cls, value: str) -> str:
        return check_level(value)

    @property
    def has_light(self) -> bool:
        return self.kind != "bin"


class LimitsConfig(_Model):
    heartbeat_timeout_s: float = Field(5.0, gt=0)
    """A device silent for longer is reported offline (firmware sends HB every 1 s)."""
    rate_per_s: float = Field(20.0, gt=0)
    """Sustained frames per second accepted from one device; more are dropped and counted."""
    burst: int = Field(40, ge=1)
    """Frames a device may send at once before the rate limit applies."""
    replay_after_reconnect_s: float = Field(10.0, ge=0)
    """Events the broker acknowledged within this many seconds before its last acknowledgement are
    published again after every reconnect, however long the broker was down: a broker that crashed
    before its periodic save has lost them; the terminal drops the repeats by (device, boot, seq).
    Keep it above the broker's save interval (about 2 s)."""
    bytes_per_s: float = Field(4096.0, gt=0)
    """Sustained bytes per second read from one device's port; more are dropped before decoding, so
    a device spewing noise cannot take the CPU from the others (20 frames/s are well under 2 kB/s)."""
    burst_bytes: int = Field(16384, ge=256)
    """Bytes a device may send at once before the byte budget applies."""
    serial_retry_max_s: float = Field(5.0, gt=0)
    """Cap of the backoff between attempts to reopen a lost serial port."""
    bridge_heartbeat_s: float = Field(10.0, gt=0)
    """How often the retained bridge availability is refreshed with a new heartbeat time."""


class BridgeConfig(_Model):
    site: str
    """Site id (topic level)."""
    line: str
    """Line id (topic level)."""
    bridge_id: str
    """Bridge id: topic level of its availability and the base of its MQTT client id."""
    broker: MqttSettings = MqttSettings(session_expiry_s=SESSION_EXPIRY_S)
    """MQTT broker connection: the terminal's settings model, with the bridge's session default."""
    limits: LimitsConfig = LimitsConfig()
    """Timeouts and rate limits."""
    devices: tuple[DeviceConfig, ...] = Field(min_length=1)
    """The devices on this bridge's serial ports."""
    state_dir: str | None = None
    """Folder for the bridge's outbox: device events wait there, on disk, until the broker has them.
    Leave unset only for tests and simulators (events then live in memory, and die with the bridge)."""

    @field_validator("broker", mode="before")
    @classmethod
    def _bridge_session_default(cls, broker: Any) -> Any:
        if isinstance(broker, dict):
            return {"session_expiry_s": SESSION_EXPIRY_S} | broker
        if isinstance(broker, MqttSettings) and "session_expiry_s" not in broker.model_fields_set:
            return broker.model_copy(update={"session_expiry_s": SESSION_EXPIRY_S})
        return broker

    @field_validator("broker")
    @classmethod
    def _no_terminal_settings(cls, broker: MqttSettings) -> MqttSettings:
        # Accepted by the shared model but meaningless here: refused, not silently ignored.
        wrong = [
            f"{key} ({why})" for key, why in NOT_FOR_THE_BRIDGE.items() if key in broker.model_fields_set
        ]
        if wrong:
            raise ValueError(f"not a bridge setting: {', '.join(wrong)}")
        return broker

    @field_validator("site", "line", "bridge_id")
    @classmethod
    def _topic_safe(cls, value: str) -> str:
        return check_level(value)

    @model_validator(mode="after")
    def _unique(self) -> BridgeConfig:
        for attr in ("id", "port"):
            values = [getattr(d, attr) for d in self.devices]
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"devices: duplicate {attr} {dupes}")
        return self


class ConfigError(Exception):
    """A configuration problem, already phrased with key paths for the operator."""


def load_config(
    path: Path, env: Mapping[str, str] | None = None, mqtt_url: str | None = None
) -> BridgeConfig:
    """Read and check `path`; report every problem with its key path.

    Args:
        path: the TOML file.
        env: environment the password is checked in (default os.environ); the link reads it again.
        mqtt_url: optional mqtt://host[:port] (this machine only) or mqtts://[user@]host[:port] that
            replaces the broker host, port and tls of the file (and drops its TLS files if plain).

    Returns:
        The frozen configuration.
    """
    env = os.environ if env is None else env
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except RecursionError:  # tomllib recurses per nesting level
        raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deeply") from None
    broker = data.setdefault("broker", {})
    if not isinstance(broker, dict):
        raise ConfigError(f"{path}: broker: must be a table")
    if "password" in broker:
        raise ConfigError(f"{path}: broker.password: not allowed in the file, set {PASSWORD_ENV}")
    if mqtt_url:
        try:
            data["broker"] = with_url(broker, mqtt_url)
        except MqttConfigError as exc:
            raise ConfigError(f"--mqtt: {exc}") from None
    try:
        config = BridgeConfig.model_validate(data, context={"section": "broker"})
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()]
        raise ConfigError(f"{path}:\n  " + "\n  ".join(lines)) from None
    _check_tls_files(path, config.broker)
    try:  # a password file others can read stops the start here, with its key
        read_password(config.broker, env)
    except (MqttConfigError, OSError) as exc:
        raise ConfigError(f"{path}: broker.password_file: {exc}") from None
    return config


def _check_tls_files(path: Path, broker: MqttSettings) -> None:
    """Open the TLS files now, so a wrong path stops the start with its key instead of a bridge that
    retries a connection it can never make."""
    for key in TLS_FILES:
        name = getattr(broker, key)
        if name is not None:
            try:
                Path(name).open("rb").close()
            except OSError as exc:
                raise ConfigError(f"{path}: broker.{key}: cannot read {name}: {exc.strerror}") from None
    try:
        broker.tls_context()
    except ssl.SSLError as exc:  # not PEM, or a key that does not belong to the certificate
        raise ConfigError(f"{path}: broker: the TLS files cannot be used: {exc}") from None

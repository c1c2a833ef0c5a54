"""The bridge's configuration: TOML read with tomllib into frozen pydantic models.

Unknown keys are errors (`extra="forbid"`), so a typo in a plant file fails at start-up with its key
path instead of silently running on a default. The broker password never lives in the file: it comes
from the environment variable KANBAN_MQTT_PASSWORD.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from kanban_terminal.adapters.topics import check_level

PASSWORD_ENV = "KANBAN_MQTT_PASSWORD"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BrokerConfig(_Model):
    host: str = "127.0.0.1"
    """Broker host name or address."""
    port: int = Field(1883, ge=1, le=65535)
    """Broker TCP port."""
    username: str | None = None
    """Broker user name; the password comes from KANBAN_MQTT_PASSWORD."""
    password: SecretStr | None = Field(None, exclude=True)
    """Filled from the environment by `load_config`; setting it in the file is refused."""
    keepalive_s: int = Field(10, ge=2, le=600)
    """MQTT keepalive; a half-open link is noticed after about 1.5 times this."""
    session_expiry_s: int = Field(3600, ge=0)
    """How long the broker keeps our session (subscriptions, queued commands) while we are away."""
    reconnect_max_s: float = Field(10.0, gt=0)
    """Cap of the reconnect backoff, so a broker restart is not met by a connection storm."""


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
    broker: BrokerConfig = BrokerConfig()
    """MQTT broker connection."""
    limits: LimitsConfig = LimitsConfig()
    """Timeouts and rate limits."""
    devices: tuple[DeviceConfig, ...] = Field(min_length=1)
    state_dir: str | None = None
    """Folder for the bridge's outbox: device events wait there, on disk, until the broker has them.
    Leave unset only for tests and simulators (events then live in memory, and die with the bridge)."""
    """The devices on this bridge's serial ports."""

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
        env: environment to read the password from (default os.environ).
        mqtt_url: optional mqtt://host:port that replaces the broker host and port of the file.

    Returns:
        The frozen configuration.
    """
    env = os.environ if env is None else env
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    broker = data.setdefault("broker", {})
    if not isinstance(broker, dict):
        raise ConfigError(f"{path}: broker: must be a table")
    if "password" in broker:
        raise ConfigError(f"{path}: broker.password: not allowed in the file, set {PASSWORD_ENV}")
    if mqtt_url:
        parts = urlsplit(mqtt_url)
        if parts.scheme != "mqtt" or not parts.hostname:
            raise ConfigError(f"--mqtt {mqtt_url!r}: expected mqtt://host[:port]")
        broker["host"], broker["port"] = parts.hostname, parts.port or 1883
    if env.get(PASSWORD_ENV):
        broker["password"] = env[PASSWORD_ENV]
    try:
        return BridgeConfig.model_validate(data)
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()]
        raise ConfigError(f"{path}:\n  " + "\n  ".join(lines)) from None

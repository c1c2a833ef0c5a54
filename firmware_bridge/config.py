"""The bridge's configuration: TOML read with tomllib into frozen pydantic models.

Unknown keys are errors (`extra="forbid"`), so a typo in a plant file fails at start-up with its key
path instead of silently running on a default. The broker password never lives in the file: it comes
from the environment variable KANBAN_MQTT_PASSWORD. The broker link follows the terminal's rule
(kanban_terminal.config): TLS 1.2+ with verification to any broker off this machine.
"""

from __future__ import annotations

import os
import ssl
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
    ValidationInfo,
    field_validator,
    model_validator,
)

from kanban_terminal.adapters.topics import check_level
from kanban_terminal.config import PLAIN_MQTT_RULE, check_tls_for_host, is_loopback_host

PASSWORD_ENV = "KANBAN_MQTT_PASSWORD"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BrokerConfig(_Model):
    host: str = "127.0.0.1"
    """Broker host name or address."""
    port: int = Field(1883, ge=1, le=65535)
    """Broker TCP port (8883 is the usual TLS port)."""
    tls: bool = Field(False, validate_default=True)  # validated even when left out: see _tls_off_host
    """Connect with TLS (TLS 1.2 minimum, certificate and host name verified). Required for any broker
    off this machine: plain MQTT is accepted only to 127.0.0.1, ::1 or localhost."""
    ca_file: str | None = None
    """CA bundle that signed the broker's certificate; default: the system's trust store."""
    cert_file: str | None = None
    """Client certificate (PEM), for brokers that require one."""
    key_file: str | None = None
    """Key of the client certificate (PEM); may be left out when `cert_file` holds the key too."""
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

    @field_validator("tls")
    @classmethod
    def _tls_off_host(cls, tls: bool, info: ValidationInfo) -> bool:
        # `host` is declared before `tls`, so it is already in info.data (absent if it was invalid).
        return check_tls_for_host(
            tls, info.data.get("host"), fix="set broker.tls = true (and broker.ca_file), or use mqtts://"
        )

    @model_validator(mode="after")
    def _tls_files_need_tls(self) -> BrokerConfig:
        files = [k for k in ("ca_file", "cert_file", "key_file") if getattr(self, k) is not None]
        if files and not self.tls:
            raise ValueError(f"{', '.join(files)} given but tls = false: set tls = true or remove them")
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file given without cert_file")
        return self

    def tls_context(self) -> ssl.SSLContext | None:
        """The TLS settings of the link, or None for plain MQTT (loopback only).

        Verification is on (the default context checks the chain and the host name) and TLS 1.1 and
        older are refused: the same policy as the terminal's link.

        Raises:
            OSError: a CA, certificate or key file cannot be read.
            ssl.SSLError: one of them is not valid PEM, or the key does not match the certificate.
        """
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


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
        mqtt_url: optional mqtt://host[:port] (this machine only) or mqtts://host[:port] that replaces
            the broker host, port and tls of the file.

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
        broker.update(_broker_from_url(mqtt_url))
        if not broker["tls"]:  # the URL asked for plain MQTT (loopback): the file's TLS files do not apply
            for key in ("ca_file", "cert_file", "key_file"):
                broker.pop(key, None)
    if env.get(PASSWORD_ENV):
        broker["password"] = env[PASSWORD_ENV]
    try:
        config = BridgeConfig.model_validate(data)
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()]
        raise ConfigError(f"{path}:\n  " + "\n  ".join(lines)) from None
    _check_tls_files(path, config.broker)
    return config


def _check_tls_files(path: Path, broker: BrokerConfig) -> None:
    """Open the TLS files now, so a wrong path stops the start with its key instead of a bridge that
    retries a connection it can never make."""
    for key in ("ca_file", "cert_file", "key_file"):
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


def _broker_from_url(url: str) -> dict[str, object]:
    """host, port and tls from `mqtt://host[:port]` or `mqtts://host[:port]` (--mqtt)."""
    usage = f"--mqtt {url!r}: expected mqtt://host[:port] or mqtts://host[:port]"
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:  # an unclosed [ of an IPv6 address, a port that is not a number
        raise ConfigError(usage) from None
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError(usage)
    tls = parts.scheme == "mqtts"
    if not tls and not is_loopback_host(parts.hostname):
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        raise ConfigError(
            f"--mqtt: plain mqtt:// to {host} refused: {PLAIN_MQTT_RULE}; use mqtts://{host}:8883"
        )
    return {"host": parts.hostname, "port": (8883 if tls else 1883) if port is None else port, "tls": tls}

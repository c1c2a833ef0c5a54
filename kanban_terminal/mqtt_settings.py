"""The broker link's settings: one model for the terminal's `[mqtt]` and the bridge's `[broker]`.

The terminal, the upstream peer and the firmware bridge reach the broker through the same link
(adapters/mqtt_client.py), so they read the same settings with the same rules: plain MQTT only to
this machine, TLS 1.2+ with verification elsewhere, TLS files only with TLS, the password never in
the file. `parse_mqtt_url` turns a `--mqtt` URL into these settings for every command that takes one.

This module imports no paho: checking a configuration must not load the network stack. It must not
connect either; it only reads settings, the password file and the TLS files it is pointed at.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from kanban_terminal.domain.text import escape_external


def is_loopback_host(host: str) -> bool:
    """True for a broker on this machine: "localhost", 127.0.0.0/8 or ::1.

    Only these may be reached without TLS: traffic to them never leaves the host, so there is nothing
    to eavesdrop on or spoof. A LAN address or a DNS name may be (or may later resolve to) another
    machine, and the plant network is exactly where a line's requests and PIN-guarded stops travel.
    """
    name = host.strip().lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


PLAIN_MQTT_RULE = "unencrypted MQTT is allowed only to a broker on this machine (127.0.0.1, ::1, localhost)"
"""The rule in words, for every message that refuses a plain broker link."""


def check_tls_for_host(tls: bool, host: str | None, *, fix: str) -> bool:
    """Refuse plain MQTT to a broker off this machine; `fix` tells the reader what to change.

    Raises:
        PydanticCustomError: `tls` is false and `host` is not a loopback host (pydantic reports it
            with the key path of the field being validated).
    """
    if not tls and host is not None and not is_loopback_host(host):
        raise PydanticCustomError(
            "plain_mqtt_off_host",
            "plain MQTT to {host} refused: {rule}. Fix: {fix}",
            {"host": host, "rule": PLAIN_MQTT_RULE, "fix": fix},
        )
    return tls


class MqttConfigError(ValueError):
    """A broker URL or setting that cannot be used (`--mqtt`, a password file); the message says why."""


TLS_FILES = ("ca_file", "cert_file", "key_file")
TERMINAL_ONLY = ("inflight", "republish_after_s", "replay_after_reconnect_s", "reconcile_after_s")
"""Settings of the terminal's relay and andon notices, not of the link: the bridge has its own."""


class MqttSettings(BaseModel):
    """The broker link. The password never lives here: it comes from `password_env` or `password_file`.

    Validated with `context={"section": "broker"}` the messages name that section instead of `mqtt`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    """Broker host name or address."""
    port: int = Field(1883, ge=1, le=65535)
    """Broker port (8883 is the usual TLS port)."""
    tls: bool = Field(False, validate_default=True)  # validated even when left out: see _tls_off_this_machine
    """Connect with TLS (verification on, TLS 1.2 minimum). Required for any broker off this machine:
    plain MQTT is accepted only to 127.0.0.1, ::1 or localhost."""
    ca_file: str | None = None
    """CA bundle that signed the broker's certificate; default: the system's trust store."""
    cert_file: str | None = None
    """Client certificate (PEM), for brokers that require one."""
    key_file: str | None = None
    """Key of the client certificate (PEM); may be left out when `cert_file` holds the key too."""
    username: str | None = None
    """Broker user name (one per terminal or bridge, so the broker ACL can limit it to its line)."""
    password_env: str = "KANBAN_MQTT_PASSWORD"
    """Environment variable holding the broker password, if set."""
    password_file: str | None = None
    """File holding the broker password (outside version control, mode 0600)."""
    protocol: Literal["5", "3.1.1"] = "5"
    """MQTT version. 5 tells a refused publish (reason codes) and carries a session expiry; 3.1.1 for
    brokers without MQTT 5 (RabbitMQ 3.10, amqtt): clean session false, no reason codes, and several
    supermarket peers need `upstream.ownership` (docs/TOPOLOGIES.md)."""
    failover_urls: tuple[str, ...] = ()
    """Other nodes of a broker cluster (`mqtts://node2:8883`), tried in turn when a connection attempt
    fails or the link drops (broker_urls.py); same TLS and user as the link."""
    keepalive_s: int = Field(10, ge=2, le=600)
    """Keepalive: a silent, half-open link is noticed within about 1.5 x this."""
    session_expiry_s: int = Field(7 * 24 * 3600, ge=0)
    """How long the broker keeps this client's session (subscriptions, queued messages) while it is
    away. The bridge's default is one hour: stack-light commands older than that are stale."""
    reconnect_max_s: int = Field(10, ge=1, le=300)
    """Cap of the reconnect back-off, so a broker restart is not met by a connection storm."""
    inflight: int = Field(200, ge=1, le=1000)
    """Terminal only. Requests handed to the MQTT library at once; the rest wait in the SQLite
    outbox. 200 drained a 3,000-request backlog at ~5,260 req/s against ~3,800 with 50 (two runs
    each, same broker), as each PUBACK batch (one fsynced transaction) is bigger; a reconnect
    re-sends at most this many."""
    republish_after_s: float = Field(60.0, gt=0)
    """Terminal only. Publish a request again (same id) when upstream has not answered after this
    many seconds."""
    reconcile_after_s: float = Field(120.0, gt=0)
    """Terminal only. An open request whose last upstream status is older than this is asked about
    (an idempotent status query; services/reconcile.py): a status lost on the way back is sent again."""
    health_s: float = Field(60.0, ge=1, le=3600)
    """Terminal only. Interval of the retained health message (docs/OPERATIONS.md "Retained health
    topic"); it is also sent at once after each reconnect."""
    heartbeat_s: float = Field(10.0, gt=0)
    """Interval of the retained availability heartbeat (the bridge takes `limits.bridge_heartbeat_s`)."""
    replay_after_reconnect_s: float = Field(10.0, ge=0)
    """Terminal only. After a reconnect, andon event notices sent in this many seconds before the
    broker's last answer are published again: a broker that crashed between its periodic saves
    (about every 2 s) lost them. Listeners drop repeats (docs/PROTOCOL.md). 0 turns it off."""

    @field_validator("tls")
    @classmethod
    def _tls_off_this_machine(cls, tls: bool, info: ValidationInfo) -> bool:
        # `host` is declared before `tls`, so it is already in info.data (absent if it was invalid).
        section = (info.context or {}).get("section", "mqtt")
        fix = f"set {section}.tls = true (and {section}.ca_file), or use mqtts://"
        return check_tls_for_host(tls, info.data.get("host"), fix=fix)

    @model_validator(mode="after")
    def _tls_files_need_tls(self) -> MqttSettings:
        # A CA file with tls = false reads as "TLS is on" to a person and is silently ignored.
        files = [k for k in TLS_FILES if getattr(self, k) is not None]
        if files and not self.tls:
            raise ValueError(f"{', '.join(files)} given but tls = false: set tls = true or remove them")
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file given without cert_file")
        failover_nodes(self.failover_urls, tls=self.tls, username=self.username)  # raises with the why
        return self

    def tls_context(self) -> ssl.SSLContext | None:
        """The TLS settings of the link, or None for plain MQTT (loopback only).

        Verification is on (the default context checks the chain and the host name) and TLS 1.1 and
        older are refused.

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


def url_fields(url: str) -> dict[str, Any]:
    """host, port, tls and the user name of `mqtt://host:1883` or `mqtts://user@host:8883`.

    Raises:
        MqttConfigError: not one of those forms, a password in the URL (it would end up in shell
            history and process lists; use KANBAN_MQTT_PASSWORD), or plain MQTT off this machine.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:  # "Invalid IPv6 URL" for an unclosed [
        raise MqttConfigError(f"cannot read broker URL {url!r}: {exc}") from None
    if parts.scheme not in ("mqtt", "mqtts"):
        raise MqttConfigError(f"broker URL must start with mqtt:// or mqtts://, got {url!r}")
    if not parts.hostname:
        raise MqttConfigError(f"broker URL has no host: {url!r}")
    if parts.password is not None:
        raise MqttConfigError("do not put the password in the URL; set KANBAN_MQTT_PASSWORD instead")
    if parts.path not in ("", "/") or parts.query:
        raise MqttConfigError(f"broker URL must be scheme://[user@]host[:port], got {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise MqttConfigError(f"bad port in broker URL {url!r}") from None
    tls = parts.scheme == "mqtts"
    if not tls and not is_loopback_host(parts.hostname):
        # Caught here, not only by MqttSettings, so the message speaks of the URL the person typed.
        host = escape_external(parts.hostname, 80)
        host = f"[{host}]" if ":" in host else host
        raise MqttConfigError(
            f"plain mqtt:// to {host} refused: {PLAIN_MQTT_RULE}; use mqtts://{host}:8883 (TLS)"
        )
    fields: dict[str, Any] = {
        "host": parts.hostname,
        "port": (8883 if tls else 1883) if port is None else port,
        "tls": tls,
    }
    if parts.username:
        fields["username"] = unquote(parts.username)
    return fields


def with_url(values: dict[str, Any], url: str) -> dict[str, Any]:
    """Settings `values` with the broker of `url`; a plain URL drops the TLS files it cannot use."""
    fields = url_fields(url)
    merged = values | fields
    if not fields["tls"]:
        for key in TLS_FILES:
            merged.pop(key, None)
    return merged


def parse_mqtt_url(url: str, base: MqttSettings | None = None) -> MqttSettings:
    """Turn `mqtt://host:1883` or `mqtts://user@host:8883` into settings (for `--mqtt`).

    Settings not in the URL (CA file, keepalive, ...) come from `base`.

    Raises:
        MqttConfigError: the URL cannot be used (see `url_fields`).
    """
    values = with_url(base.model_dump(exclude_unset=True) if base else {}, url)
    try:
        return MqttSettings.model_validate(values)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise MqttConfigError(f"broker URL {url!r} cannot be used: {reasons}") from None


def failover_nodes(urls: Iterable[str], *, tls: bool, username: str | None) -> tuple[tuple[str, int], ...]:
    """(host, port) of each fail-over URL.

    Raises:
        MqttConfigError: a URL that cannot be used, plain MQTT off this machine, a TLS setting or a user
            name that differs from the link's.
    """
    nodes = []
    for url in urls:
        fields = url_fields(url)
        if fields["tls"] != tls:
            want = "mqtts://" if tls else "mqtt://"
            raise MqttConfigError(f"fail-over URL {url!r}: every node uses the link's TLS setting ({want})")
        if fields.get("username", username) != username:
            raise MqttConfigError(f"fail-over URL {url!r}: every node uses the link's user name")
        nodes.append((str(fields["host"]), int(fields["port"])))
    return tuple(nodes)


def read_password(settings: MqttSettings, env: Mapping[str, str] | None = None) -> str | None:
    """The broker password from the environment or a secrets file (refused if others can read it).

    Raises:
        MqttConfigError: the password file is readable by group or others.
        OSError: the password file cannot be read.
    """
    source: Mapping[str, str] = os.environ if env is None else env
    if settings.password_env and source.get(settings.password_env):
        return source[settings.password_env]
    if settings.password_file:
        path = Path(settings.password_file)
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise MqttConfigError(f"{path} is readable by others: chmod 600 it")
        return path.read_text(encoding="utf-8").strip()
    return None

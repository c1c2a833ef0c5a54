"""One MQTT 5 connect to the plant broker and back, to tell a person exactly why it fails.

For `doctor` only: a standalone paho-mqtt client that connects, waits for CONNACK and disconnects.
It is not the terminal's link (that one reconnects forever and must never give up); this one gives up
after `timeout` seconds and sorts the failure into the few causes a person can act on: nothing
listening (refused), no answer (timeout), TLS trouble, name resolution, or credentials. Its TLS is
the link's (`MqttSettings.tls_context`: TLS 1.2+, verified), so it cannot pass a broker the link refuses.
"""

from __future__ import annotations

import socket
import ssl
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from kanban_terminal.mqtt_settings import MqttSettings

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
_AUTH_CODES = {134, 135}  # MQTT 5: Bad user name or password, Not authorized


class ProbeFailure(StrEnum):
    BAD_URL = "bad URL"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    TLS = "TLS error"
    DNS = "unknown host"
    NOT_AUTHORIZED = "not authorized"
    REJECTED = "rejected"
    NETWORK = "network error"


@dataclass(frozen=True)
class BrokerUrl:
    tls: bool
    host: str
    port: int
    username: str | None

    def __str__(self) -> str:  # never shows a password
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerUrl:
    """Parse `mqtt://host:1883` or `mqtts://user@host:8883`.

    Raises:
        ValueError: not one of those forms, or a password written into the URL (it belongs in
            KANBAN_MQTT_PASSWORD, not in a unit file or a shell history).
    """
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{url!r} is not mqtt://host[:port] or mqtts://[user@]host[:port]")
    if parts.password:
        raise ValueError("the broker URL contains a password; put it in KANBAN_MQTT_PASSWORD instead")
    try:
        port = DEFAULT_PORTS[parts.scheme] if parts.port is None else parts.port
    except ValueError as exc:
        raise ValueError(f"{url!r}: {exc}") from None
    if port == 0:
        raise ValueError(f"{url!r}: port 0 is not a broker port (1-65535)")
    return BrokerUrl(
        parts.scheme == "mqtts", parts.hostname, port, unquote(parts.username) if parts.username else None
    )


@dataclass(frozen=True)
class ProbeResult:
    failure: ProbeFailure | None
    detail: str

    @property
    def ok(self) -> bool:
        return self.failure is None


def probe_broker(
    url: str, *, password: str | None = None, timeout: float = 5.0, ca_file: str | None = None
) -> ProbeResult:
    """Connect once with MQTT 5 and report how it went.

    Args:
        url: `mqtt://host:port` or `mqtts://user@host:port`.
        password: the broker password (from KANBAN_MQTT_PASSWORD); used only with a user in the URL.
        timeout: seconds for the TCP connect, the TLS handshake and CONNACK each.
        ca_file: CA bundle for mqtts; default the system's trusted CAs.
    """
    try:
        target = parse_broker_url(url)
    except ValueError as exc:
        return ProbeResult(ProbeFailure.BAD_URL, str(exc))
    from kanban_terminal.mqtt_settings import MqttSettings

    # Not validated: the probe reports what happens on the wire, even for a plain URL to another host.
    settings = MqttSettings.model_construct(
        host=target.host, port=target.port, tls=target.tls, ca_file=ca_file, username=target.username
    )
    return probe_settings(settings, password=password, timeout=timeout)


def probe_settings(
    settings: MqttSettings, *, password: str | None = None, timeout: float = 5.0
) -> ProbeResult:
    """`probe_broker` for settings as the terminal resolves them (`--mqtt` over the config's
    `[mqtt]`): the same host, port, TLS context (CA file, client certificate) and user as `serve`."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    target = BrokerUrl(settings.tls, settings.host, settings.port, settings.username)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"kanban-doctor-{uuid.uuid4().hex[:8]}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.connect_timeout = timeout
    if target.username:
        client.username_pw_set(target.username, password)
    if target.tls:
        try:
            context = settings.tls_context()
        except OSError as exc:  # an unreadable CA file: a TLS problem the person can fix
            where = exc.filename or settings.ca_file
            return ProbeResult(ProbeFailure.TLS, f"cannot read the TLS file {where}: {exc.strerror or exc}")
        assert context is not None
        client.tls_set_context(context)
    answer: list[object] = []

    def on_connect(_c: object, _u: object, _flags: object, reason_code: object, _props: object) -> None:
        answer.append(reason_code)

    client.on_connect = on_connect
    where = f"{target.host}:{target.port}"
    try:
        client.connect(target.host, target.port, keepalive=max(5, int(timeout) * 2))
        # Network loop with a deadline (not a sleep): returns as soon as CONNACK arrives or the
        # broker closes the connection.
        deadline = time.monotonic() + timeout
        while not answer and time.monotonic() < deadline:
            if client.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS and not answer:
                return ProbeResult(
                    ProbeFailure.REJECTED, f"{where} closed the connection before answering (not MQTT 5?)"
                )
    except ConnectionRefusedError:
        return ProbeResult(ProbeFailure.REFUSED, f"nothing listens on {where}")
    except ssl.SSLCertVerificationError as exc:
        return ProbeResult(ProbeFailure.TLS, f"{where}: certificate not trusted ({exc.verify_message})")
    except ssl.SSLError as exc:
        return ProbeResult(ProbeFailure.TLS, f"{where}: TLS handshake failed ({exc.reason or exc})")
    except TimeoutError:
        return ProbeResult(ProbeFailure.TIMEOUT, f"no answer from {where} within {timeout:g} s")
    except socket.gaierror as exc:
        return ProbeResult(ProbeFailure.DNS, f"cannot resolve {target.host!r} ({exc.strerror})")
    except ConnectionResetError:
        if target.tls:  # a plain listener drops a TLS ClientHello like this
            return ProbeResult(ProbeFailure.TLS, f"{where} reset the TLS handshake (is it a TLS listener?)")
        return ProbeResult(ProbeFailure.NETWORK, f"{where} reset the connection")
    except OSError as exc:
        return ProbeResult(ProbeFailure.NETWORK, f"{where}: {exc.strerror or exc}")
    finally:
        if answer:
            client.disconnect()
            client.loop(timeout=0.1)  # flushes the DISCONNECT so the broker logs a clean goodbye
        sock = client.socket()
        if sock is not None:
            sock.close()
    if not answer:
        return ProbeResult(
            ProbeFailure.TIMEOUT, f"{where} accepted TCP but sent no CONNACK within {timeout:g} s"
        )
    code = answer[0]
    if getattr(code, "is_failure", False):
        value = int(getattr(code, "value", -1))
        kind = ProbeFailure.NOT_AUTHORIZED if value in _AUTH_CODES else ProbeFailure.REJECTED
        return ProbeResult(
            kind, f"{where} answered {code} (0x{value:02X}) for user {target.username or '(none)'}"
        )
    return ProbeResult(None, f"connected to {target} with MQTT 5")

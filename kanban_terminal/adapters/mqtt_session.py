"""How the one MQTT link is set up with paho: protocol, session, TLS, credentials, last will, socket.

Every client of the terminal, the upstream peer and the firmware bridge is built here, so they all
connect the same way (../shared/reference/reliability.md 2.3, stack.md):

* MQTT 5 with `clean_start=False` and an explicit Session Expiry Interval: paho's defaults contradict
  each other (#877) and mosquitto does not persist a session created with clean_start=True (stack P4).
  The same over MQTT 3.1.1 (`clean_session=False`) for amqtt, the demo's pure-Python fallback broker.
* Manual acknowledgement of inbound QoS 1 (`manual_ack=True`): the caller acks after its commit.
* Receive Maximum (MQTT 5 flow control) when asked: the broker holds what we cannot take yet.
* `TCP_NODELAY` on every socket: without it Nagle plus delayed ACKs add ~40 ms per hop (stack P6).
* TLS 1.2+ with verification, from `MqttSettings.tls_context`; the password from env or a 0600 file.

Nothing here runs a thread or holds state: `MqttLink` (mqtt_client.py) owns the running client.
"""

from __future__ import annotations

import socket
import ssl
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from kanban_terminal.adapters.mqtt_wakeups import network_thread_with_timeout
from kanban_terminal.adapters.wire import AvailabilityMessage, utc_text
from kanban_terminal.domain.text import escape_external
from kanban_terminal.mqtt_settings import MqttSettings, read_password


def new_client(settings: MqttSettings, client_id: str, *, max_inflight: int, max_queued: int) -> mqtt.Client:
    """A paho client with the link's protocol, session, window, back-off, credentials and TLS.

    Raises:
        MqttConfigError: the password file is readable by others.
        OSError, ssl.SSLError: a TLS file cannot be read or used.
    """
    if settings.protocol == "5":
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True
        )
    else:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=False,
            manual_ack=True,
        )
    client.max_inflight_messages_set(max_inflight)
    # 0 = unbounded: the terminal's relay never gives paho more than its window, so paho's memory
    # queue is not a queue there; the bridge caps it, its outbox on disk being the real queue.
    client.max_queued_messages_set(max_queued)
    client.reconnect_delay_set(1, settings.reconnect_max_s)
    network_thread_with_timeout(client, settings.keepalive_s)  # mqtt_wakeups.py says why
    if settings.username:
        client.username_pw_set(settings.username, read_password(settings))
    context = settings.tls_context()
    if context is not None:
        client.tls_set_context(context)
    if settings.failover_urls:
        install_failover(client, settings)
    return client


def set_will(client: mqtt.Client, settings: MqttSettings, topic: str, payload: bytes) -> None:
    """The retained last will: the broker publishes it when the link dies without a goodbye."""
    props = None
    if settings.protocol == "5":
        props = Properties(PacketTypes.WILLMESSAGE)  # type: ignore[no-untyped-call]
        props.WillDelayInterval = 0
    client.will_set(topic, payload, qos=1, retain=True, properties=props)


def connect_options(settings: MqttSettings, receive_maximum: int | None) -> dict[str, Any]:
    """Keyword arguments of `connect_async`: the session and flow-control properties (MQTT 5)."""
    if settings.protocol != "5":
        return {}
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = settings.session_expiry_s
    if receive_maximum:
        # The broker keeps at most this many unacknowledged QoS 1 messages in flight to us and holds
        # the rest. paho's default (65,535) let mosquitto push a whole 20,000-signal burst into our
        # memory (serve peak RSS 216 MB).
        props.ReceiveMaximum = receive_maximum
    return {"clean_start": False, "properties": props}


def set_nodelay(sock: Any) -> None:
    """TCP_NODELAY on a new socket (paho leaves Nagle on; a TLS socket is a socket too)."""
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def describe_connect_error(exc: OSError) -> str:
    """Why a connection attempt failed, in words that tell the usual TLS mistakes apart."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: broker certificate not trusted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({exc.reason or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "broker unreachable (connection refused)"
    if isinstance(exc, socket.gaierror):
        return f"broker unreachable (cannot resolve host: {exc.strerror})"
    return f"broker unreachable ({escape_external(exc.strerror or type(exc).__name__, 60)})"


CLOSED_BEFORE_ACCEPT = (
    "broker closed the connection before accepting it ({reason}): plain MQTT to a TLS port, or a "
    "client certificate the broker requires or refuses?"
)
"""What a TLS listener does with plain MQTT and (TLS 1.3) a broker that rejects or misses our
client certificate: the TCP and TLS handshakes succeed, then the socket closes before CONNACK."""


def install_failover(client: mqtt.Client, settings: MqttSettings) -> None:
    """Every reconnect after the first attempt goes to the next cluster node (broker_urls.py).

    paho calls `reconnect()` for every attempt of its loop and reads the host there; the link's own
    wrapper of `reconnect` (the TLS error text) wraps this one.
    """
    from kanban_terminal.broker_urls import NodeRotation, failover_nodes

    others = failover_nodes(settings.failover_urls, tls=settings.tls, username=settings.username)
    rotation = NodeRotation((settings.host, settings.port), others)
    paho_reconnect = client.reconnect

    def reconnect() -> Any:
        node = rotation.next_node()
        if node is not None:
            # Not the `host`/`port` setters: they refuse in paho's "connection lost" state, the
            # very state it reconnects from (paho 2.2); reconnect() reads these two right after.
            client._host, client._port = node
        return paho_reconnect()

    client.reconnect = reconnect  # type: ignore[method-assign]


def availability_payload(state: str, terminal: str, session: str, at: datetime, heartbeat_s: float) -> bytes:
    """The terminal's retained availability message (docs/PROTOCOL.md), through the wire schema."""
    return AvailabilityMessage.model_validate(
        {"v": 1, "state": state, "terminal": terminal, "session": session, "at": utc_text(at),
         "heartbeat_s": heartbeat_s}
    ).model_dump_json().encode()  # fmt: skip

"""Which connection an inbound message's PUBACK may go out on (issue 19: the ack race).

A QoS 1 message is acknowledged only after its commit, and often not on paho's thread (the inbound
worker after a storage failure, the upstream peer, the firmware bridge). Its packet id belongs to
the connection it came in on: after a reconnect the broker redelivers it (the dedupe key absorbs
that), and on a new session the same id can name another message that is not committed yet.

The link tagged each message with its connection's number and `ack` compared it with the current
one, but the compare and the queueing of the PUBACK were two steps. A worker that passed the
compare just before paho's thread began `reconnect()` (which empties paho's outgoing queue, then
opens the new socket) queued its PUBACK after that: it went out on the new connection, acking
whatever the broker had given that id there (tests/integration/test_inbound_thread.py reproduces
it with the worker held between the two steps).

`AckGate` makes the compare and the queueing one step under a lock that paho's thread also takes
when a connection attempt begins (`connecting`, before paho drops the old socket and its queue) and
when the broker accepts one (`connected`). A PUBACK is therefore queued either before the attempt
began (it goes out on its own connection, or is dropped with the old queue: the broker redelivers
the message) or not at all. paho's own thread takes the lock uncontended on every inline ack; a
worker holds it only for paho's queue append (a deque append and a socket-pair byte).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt


class AckGate:
    """The connection count messages are tagged with, and the one door their PUBACKs go through."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.generation = 0
        """Connections the broker accepted; a message carries the count it came in under."""
        self._open = False
        """The connection `generation` is still the current one (no attempt begun since)."""
        self.between_check_and_send: Callable[[], None] | None = None
        """Tests only: runs after the check and before the PUBACK is queued, the lock held."""

    def connecting(self) -> None:
        """paho's thread, as a connection attempt begins: no PUBACK of an older one goes out now."""
        with self._lock:
            self._open = False

    def connected(self) -> None:
        """paho's thread, on a CONNACK: messages from here on carry the new count."""
        with self._lock:
            self.generation += 1
            self._open = True

    def ack(self, client: mqtt.Client, mid: int, qos: int, generation: int | None) -> bool:
        """Queue the PUBACK (QoS 1) or PUBCOMP (QoS 2) if its message came in on this connection;
        `generation` None acks at once (paho's thread, a message nobody handles). Returns whether
        it was queued."""
        if qos <= 0:
            return False
        with self._lock:
            if generation is not None and not (self._open and generation == self.generation):
                return False
            if self.between_check_and_send is not None:
                self.between_check_and_send()
            client.ack(mid, qos)
            return True

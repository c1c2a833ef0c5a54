"""A supermarket peer that subscribed anew: the terminal publishes again what upstream has not answered.

Why: mosquitto 2.0.11 restores a persistent session after a restart, plain subscriptions included, but
not its shared ones (`$share/...`, the peer's default): measured here, a peer whose session came back
(`session_present` True) received none of the QoS 1 messages published after the restart and before it
subscribed again, where a plain persistent subscriber received all of them. A request the terminal
published in that gap reached upstream only with the relay's republish, `republish_after_s` (60 s)
later and after newer ones of its loop (R11 reported a gap; tests/faults/test_broker_outage.py failed
on it whenever the terminal reconnected before the peer). A bridged line broker forwards its queue into
a restarted plant broker the same way, without the terminal's link ever dropping.

What fixes it: each peer publishes its availability right after its SUBSCRIBEs on every connection, with
its process `session` and its `connection` count (adapters/takeover.py); a broker handles one client's
packets in order, so once that "online" reaches the terminal, whatever the terminal publishes next
reaches the peer. On an "online" with a (session, connection) this watch has not seen, delivered live
(not a retained copy handed over at our own subscribe: then the peer subscribed before we did), the
relay publishes again every request upstream has not answered (same ids: upstream dedupes). Heartbeats
repeat the pair and change nothing; a peer of an older version without `connection` is seen once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kanban_terminal.domain.text import escape_external
from kanban_terminal.topics import site_peer_availability_filter

if TYPE_CHECKING:
    from kanban_terminal.adapters.mqtt_client import MqttLink

log = logging.getLogger(__name__)

MAX_PEERS = 256
"""Peers remembered (a site runs a handful); a flood of made-up peer ids cannot grow memory."""


class PeerWatch:
    """Which connection of each peer the terminal has heard "online" from."""

    def __init__(self, on_back: Callable[[str], None]) -> None:
        self._on_back = on_back
        self._seen: dict[str, tuple[object, object]] = {}

    def heard(self, topic: str, payload: bytes, retained: bool) -> bool:
        """One availability message; True when it says a peer subscribed anew (`on_back` was called)."""
        try:
            body = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            return self._refuse(topic, f"not JSON ({exc})")
        if not isinstance(body, dict) or not isinstance(body.get("peer"), str):
            return self._refuse(topic, "not an availability object with a peer name")
        if body.get("state") != "online":
            return False
        peer, pair = body["peer"], (body.get("session"), body.get("connection"))
        new = self._seen.pop(peer, None) != pair
        self._seen[peer] = pair  # last: the newest heard
        if len(self._seen) > MAX_PEERS:
            del self._seen[next(iter(self._seen))]
        if not new or retained:
            return False
        log.info("peer %s subscribed anew: unanswered requests go out again", escape_external(peer, 64))
        self._on_back(peer)
        return True

    @staticmethod
    def _refuse(topic: str, why: str) -> bool:
        log.warning("peer availability on %s ignored: %s", escape_external(topic, 120), why)
        return False


def watch_peers(link: MqttLink, site: str, on_back: Callable[[str], None]) -> PeerWatch:
    """Subscribe `link` (QoS 0, on every connect) to the site's peer availability; call it before
    `link.start()`. `on_back(peer)` runs on paho's thread: it must only hand work over."""
    flt = site_peer_availability_filter(site)
    watch = PeerWatch(on_back)
    link.subscriptions.append((flt, 0))

    def handle(_client: Any, _userdata: Any, msg: Any) -> None:
        try:
            watch.heard(msg.topic, bytes(msg.payload), bool(msg.retain))
        except Exception:  # noqa: BLE001 - nothing may escape into paho's thread
            log.exception("peer availability handler failed; the link carries on")

    # Its own callback, not the link's `on_message`: only paho's message hands over the retain flag.
    link.client.message_callback_add(flt, handle)
    return watch

"""How often the MQTT link's two threads wake when nothing happens: only when something can be due.

An idle `serve` woke ~6 times a second (bench/idle_wakeups.py, issue 19); two of them were the link:

* paho's network thread runs `loop_forever(timeout=1.0)`: its select() ends every second to look
  at keepalive, though a publish from another thread, an inbound packet and `disconnect()` all wake
  it at once anyway (paho's socket pair). The timeout only bounds how late a PINGREQ goes out, so
  it is a quarter of the keepalive here (at most `MAX_SELECT_S`): a ping is at most that late, well
  inside the broker's 1.5 x keepalive grace and the watchdog's 2 x keepalive + 1 s.
* the watchdog (`MqttLink._watch`) checked every second for a dead network thread, a silent link
  and a due heartbeat. It now sleeps until the heartbeat or the silence limit is due, joined on
  paho's thread, so a thread that dies wakes it at once (no later than the 1 s tick did).

Per message, the inbound worker's hand-offs were the rest of the wake-ups (9.6 a signal at 500/s
against 4.7 for a one-thread paho + sqlite3 pipeline): paho's thread woke the worker, and the
worker's PUBACK and request publish woke paho's thread again. `after_each_pass` lets the owner of
the link apply what paho read on paho's own thread once its socket is drained (`unread`), and the
worker thread takes over only when a storage step fails (runtime/inbound.py).

Only `paho.mqtt.client.Client`'s private `_thread_main`, `_thread`, `_loop`, `_packet_write` and
`_last_msg_out` are used (paho 2.x): paho has no setting for the loop's timeout under `loop_start`,
no hook after a pass of its loop, and does not say when it last sent a packet (what the broker's
keepalive counts from).
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

MAX_SELECT_S = 5.0
"""paho's select() timeout is keepalive / 4, never more than this."""

MIN_WATCH_S = 0.25
"""The watchdog never sleeps less than this (a check that found the link silent waits for paho)."""


def network_thread_with_timeout(client: mqtt.Client, keepalive_s: float) -> None:
    """Make `client.loop_start()` run `loop_forever` with a select timeout of keepalive / 4."""
    select_s = min(MAX_SELECT_S, keepalive_s / 4)

    def thread_main() -> None:  # paho 2.x's `_thread_main`, with our timeout
        try:
            client.loop_forever(timeout=select_s, retry_first_connection=True)
        finally:
            client._thread = None

    client._thread_main = thread_main  # type: ignore[method-assign]


def after_each_pass(client: mqtt.Client, hook: Callable[[], None]) -> None:
    """Call `hook` on paho's thread after each pass of its loop (a select, the packets read, the
    writes); the hook must not raise (the link wraps it). Lasts across `loop_start` restarts."""
    paho_loop = client._loop

    def one_pass(timeout: float = 1.0) -> MQTTErrorCode:
        try:
            return paho_loop(timeout)
        finally:
            hook()

    client._loop = one_pass  # type: ignore[method-assign]


def end_passes_by(client: mqtt.Client, until: Callable[[], float | None]) -> None:
    """Each pass of paho's loop waits in select() no later than `until()` (monotonic seconds; None:
    paho's own timeout). The inbound linger's wait (runtime/inbound_linger.py): paho's thread keeps
    reading, writing and pinging, and its `on_drained` hook runs again once the deadline has come.
    Call after `after_each_pass` (this wraps its pass). Lasts across `loop_start` restarts."""
    paho_pass = client._loop

    def one_pass(timeout: float = 1.0) -> MQTTErrorCode:
        at = until()
        if at is not None:
            timeout = min(timeout, max(0.0, at - time.monotonic()))
        return paho_pass(timeout)

    client._loop = one_pass  # type: ignore[method-assign]


def unread(client: mqtt.Client) -> bool:
    """Bytes wait in the client's socket that paho has not read yet (its next pass reads them)."""
    sock = client.socket()
    if sock is None:
        return False
    pending = getattr(sock, "pending", None)  # TLS: decrypted bytes select() cannot see
    if pending is not None and pending() > 0:
        return True
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError, TypeError):  # closed under us: nothing more will come from it
        return False


def broker_slack(client: mqtt.Client, keepalive_s: float) -> Callable[[], float]:
    """A function: seconds left before the broker may drop the link for silence. The broker allows
    1.5 x keepalive after the last packet it got from us; a pass of paho's loop that takes longer
    (a commit in `on_drained`) loses the link.

    paho 2.2 stamps `_last_msg_out` on a PINGREQ but not on other writes (`_packet_write` returns
    before its stamp once it has emptied the queue), so the PUBACKs that flow with the signals did
    not count: at 500 signals/s a third of the groups saw the slack of an idle link. Each call of
    `_packet_write` that finds packets waiting and returns success (the queue sent) is stamped here.
    """
    paho_write = client._packet_write
    wrote = [time.monotonic()]

    def packet_write() -> MQTTErrorCode:
        waiting = bool(client._out_packet)
        rc = paho_write()
        if waiting and rc == MQTTErrorCode.MQTT_ERR_SUCCESS and client._sock is not None:
            wrote[0] = time.monotonic()
        return rc

    client._packet_write = packet_write  # type: ignore[method-assign]

    def slack() -> float:
        with client._msgtime_mutex:
            pinged = float(client._last_msg_out)
        return 1.5 * keepalive_s - (time.monotonic() - max(wrote[0], pinged))

    return slack


def watch_wait(
    client: mqtt.Client,
    stopping: threading.Event,
    next_beat: float,
    silent_limit_s: float,
    last_packet: float,
    *,
    connected: bool,
    most_s: float,
) -> bool:
    """Sleep until the watchdog has something to check: the heartbeat at `next_beat`, the link going
    silent (nothing read for `silent_limit_s`, when connected), paho's thread ending, `stopping`, or
    at most `most_s`. Returns whether `stopping` is set."""
    now = time.monotonic()
    until = now + most_s
    if connected:
        # paho stamps every byte it reads (PINGRESP included) with time.monotonic().
        last_in = float(getattr(client, "_last_bytes_received", last_packet))
        until = min(until, next_beat, last_in + silent_limit_s + 0.01)
    timeout = max(MIN_WATCH_S, until - now)
    thread = getattr(client, "_thread", None)
    if not isinstance(thread, threading.Thread) or not thread.is_alive() or stopping.is_set():
        stopping.wait(timeout)
        return stopping.is_set()
    thread.join(timeout)  # returns at once when paho's thread ends
    # Ended: `stop()` did it (then `stopping` is set by now), or it died and the watchdog says so.
    return stopping.wait(MIN_WATCH_S) if not thread.is_alive() else stopping.is_set()

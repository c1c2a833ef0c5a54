"""What the link's owner sends from paho's own thread goes out in the same pass (issue 19).

The owner applies signals on paho's thread after a pass of its loop (`on_drained`,
mqtt_wakeups.after_each_pass) and, per signal, queues two packets there: the signal's PUBACK after
the commit and the request it raised. paho 2.2's `_packet_queue` writes a byte to its socket pair
for every queued packet, so that a thread blocked in paho's select() wakes and sends it. Inline,
paho's thread is not in select(); the bytes only cost two send() and one recv() a signal, and a
whole pass of the loop (a select() that returns at once, `loop_misc`, the drain hook) that does
nothing but write the two packets.

`writes_after(client, hook)` runs the hook with the socket pair's write end swapped for one that
drops the byte, then writes what is queued (`loop_write`, paho's public call for loops it does not
run) before paho's next select(). Measured in `serve` at 5 signals/s (20,000-card line, per-section
thread CPU, cold caches): paho's loop made 3.2 passes and 4.2 select() calls a signal before.

Nothing waits longer for it: a packet another thread queues while the hook runs (the relay thread,
the watchdog's heartbeat, `disconnect()`) is in paho's queue before that thread touches the socket
pair, and paho's next pass asks `want_write()` before it selects, so it goes out then, or in the
`loop_write` here. A thread that read the real socket pair before the swap sends its byte as
before (one spare wake-up). Only `paho.mqtt.client.Client`'s private `_sockpairW`, `_out_packet`
and `_sock` are used (paho 2.x), as mqtt_wakeups.py does for the hooks paho lacks.
"""

from __future__ import annotations

from collections.abc import Callable

import paho.mqtt.client as mqtt


class _NoWake:
    """A socket pair's write end that wakes nobody: paho's thread is the one running."""

    def send(self, data: bytes) -> int:
        return len(data)


_NO_WAKE = _NoWake()


def writes_after(client: mqtt.Client, hook: Callable[[], None]) -> Callable[[], None]:
    """`hook` (run on paho's thread) with what it queues written before paho's next select()."""

    def run() -> None:
        wake = client._sockpairW
        client._sockpairW = _NO_WAKE  # type: ignore[assignment]
        try:
            hook()
        finally:
            if client._sockpairW is _NO_WAKE:  # type: ignore[comparison-overlap]  # (loop_start: a new pair)
                client._sockpairW = wake
            if client._out_packet and client._sock is not None:
                client.loop_write()

    return run

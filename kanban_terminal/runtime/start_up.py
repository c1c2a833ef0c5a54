"""What a long-running terminal does once, between opening its database and starting its jobs.

`freeze_start_up_objects` used to run only after the runtime had started, in `serve` and the screen.
By then the MQTT link was online and signals were arriving, and the full collection it begins with
took 126-213 ms with a 3,000-20,000-card line (bench/stall_trace.py, 2026-12-05, a busy box): every
thread waited for it, so the first signals of a run met a stall of that size (issue 19). Run here,
before the link connects, it delays only the start-up; the call after start-up stays for what the
runtime and screens build, and is cheap, since the start-up's objects are frozen by then.
"""

from __future__ import annotations

import gc


def freeze_start_up_objects() -> None:
    """Take what start-up built (config, ORM metadata, screens) out of the cyclic collector's walks.

    Why: a full (generation 2) collection walks every live object with the GIL held. With a
    2,000-card line it took 58-89 ms, twice in a 4 s burst of 500 signals/s, and stalled every
    thread at once: ingest, relay and paho (traced; the run's slowest signals all waited on it).
    Frozen objects are never collected, so this runs once start-up has built them; what is made
    later (per-signal garbage, screens opened later) is collected as before.
    """
    gc.collect()
    gc.freeze()

"""The Textual screens: a thin shell that shows view models and reports what the operator did.

Widgets never hold a session, a socket or a port; scans go to the service in a worker thread and
results come back through the bus as messages.
"""

import os

# Before Textual is imported (it reads this once): a screen paints at most TEXTUAL_FPS frames a
# second, 60 by default. A scan paints three: its characters echo, the field clears, then the
# banner, which waited for the next 1/60 s slot after the clear (0-16.7 ms). At 240 the hop from
# the banner's view to its frame fell from 28 / 25 to 11 / 12 ms p50 (bench/scan_latency.py
# --stage-scans, two interleaved pairs, busy box); frames are only made when something changed.
os.environ.setdefault("TEXTUAL_FPS", "240")

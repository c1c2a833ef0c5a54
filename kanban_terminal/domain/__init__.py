"""The domain core: pure decisions about cards, scans and requests.

Nothing in this package does I/O or reads a clock: time and ids come in as arguments, so every rule
can be tested with plain values and replayed exactly. It must never import sqlmodel, textual, paho
or serial (tests/unit/test_import_hygiene.py enforces that).
"""

"""Use cases: each one normalises its input, asks the domain, writes one transaction, then tells the bus.

Importable without textual, paho or serial: `serve` and the `scan` CLI run them headless.
"""

"""The Textual screens: a thin shell that shows view models and reports what the operator did.

Widgets never hold a session, a socket or a port; scans go to the service in a worker thread and
results come back through the bus as messages.
"""

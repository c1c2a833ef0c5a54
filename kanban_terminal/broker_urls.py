"""Fail-over between the nodes of a clustered broker: `failover_urls` in `[mqtt]` / `[broker]`.

A plant broker cluster (EMQX, HiveMQ, VerneMQ, RabbitMQ, ejabberd) is reached through any node.
The config names the first node in `host`/`port` and the others as URLs; when a connection attempt
fails or an established link drops, the link tries the next node, round robin (any node serves the
whole cluster, so there is no "primary" to return to). A DNS name with several A/AAAA records needs
none of this: each connection attempt already walks every address the name resolves to, in order
(Python's socket.create_connection, which paho uses).

Every node uses the link's TLS, CA and credentials, so a URL may not switch TLS on or off or name
another user (`mqtt_settings.failover_nodes` checks that). This module imports no layer and no paho;
`adapters/mqtt_session.py` installs it.
"""

from __future__ import annotations

from kanban_terminal.mqtt_settings import failover_nodes as failover_nodes  # the URL rules live there


class NodeRotation:
    """Which node the next connection attempt goes to: the first attempt the configured host, every
    later one (a failed attempt or a lost link) the next node, round robin."""

    def __init__(self, first: tuple[str, int], others: tuple[tuple[str, int], ...]):
        self.nodes = (first, *others)
        self.attempts = 0

    def next_node(self) -> tuple[str, int] | None:
        """The node for this attempt, or None to keep the current one (first attempt, one node)."""
        self.attempts += 1
        if self.attempts == 1 or len(self.nodes) == 1:
            return None
        return self.nodes[(self.attempts - 1) % len(self.nodes)]

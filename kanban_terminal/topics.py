"""The MQTT topic tree, in one place so the terminal, the upstream peer and the firmware bridge agree.

Pure naming with no I/O, so it sits beside config.py where every layer may use it: the relay (a
service) names its requests topic from here without importing an adapter.

    kanban/v1/{site}/{line}/terminal/{terminal}/availability   retained state  (last will: offline)
    kanban/v1/{site}/{line}/terminal/{terminal}/health         retained state
    kanban/v1/{site}/{line}/terminal/{terminal}/log_anchor     retained state  (card-log head)
    kanban/v1/{site}/{line}/requests                           event, QoS 1    terminal -> upstream
    kanban/v1/{site}/{line}/status                             event, QoS 1    upstream -> terminal
    kanban/v1/{site}/{line}/status_query                       event, QoS 1    terminal -> upstream
    kanban/v1/{site}/upstream/claim/{request_id}               retained state  peer -> peers
    kanban/v1/{site}/upstream/cancel/{request_id}              retained state  peer -> peers
    kanban/v1/{site}/upstream/peer/{peer}/availability         retained state  (last will: offline)
    kanban/v1/{site}/{line}/line_state                         retained state  (andon)
    kanban/v1/{site}/{line}/andon                              event, QoS 1    andon lifecycle events
    kanban/v1/{site}/{line}/handover                           event, QoS 1    shift taken over
    kanban/v1/{site}/{line}/device/{device}/signal             event, QoS 1    bin sensors, buttons
    kanban/v1/{site}/{line}/device/{device}/availability       retained state
    kanban/v1/{site}/{line}/device/{device}/command            event, QoS 1    stack light, buzzer
    kanban/v1/{site}/bridge/{bridge}/availability              retained state  (last will: offline)

States may be retained; events never are, or a restart would replay them. docs/PROTOCOL.md holds the
payloads. Ids that go into a topic level are checked here so no payload can smuggle `/`, `+` or `#`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ROOT = "kanban/v1"
_LEVEL = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def check_level(value: str) -> str:
    """Return `value` if it can stand as one topic level, else raise ValueError."""
    if not _LEVEL.match(value):
        raise ValueError(f"{value!r} cannot be used in an MQTT topic (letters, digits, _ . - only)")
    return value


@dataclass(frozen=True)
class LineTopics:
    """Topics of one line of one site."""

    site: str
    line: str

    def __post_init__(self) -> None:
        check_level(self.site)
        check_level(self.line)

    @property
    def base(self) -> str:
        return f"{ROOT}/{self.site}/{self.line}"

    def terminal_availability(self, terminal: str) -> str:
        return f"{self.base}/terminal/{check_level(terminal)}/availability"

    def terminal_health(self, terminal: str) -> str:
        return f"{self.base}/terminal/{check_level(terminal)}/health"

    def terminal_log_anchor(self, terminal: str) -> str:
        return f"{self.base}/terminal/{check_level(terminal)}/log_anchor"

    @property
    def requests(self) -> str:
        return f"{self.base}/requests"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def status_query(self) -> str:
        return f"{self.base}/status_query"

    @property
    def line_state(self) -> str:
        return f"{self.base}/line_state"

    @property
    def andon(self) -> str:
        return f"{self.base}/andon"

    @property
    def handover(self) -> str:
        return f"{self.base}/handover"

    def device_signal(self, device: str) -> str:
        return f"{self.base}/device/{check_level(device)}/signal"

    def device_availability(self, device: str) -> str:
        return f"{self.base}/device/{check_level(device)}/availability"

    def device_command(self, device: str) -> str:
        return f"{self.base}/device/{check_level(device)}/command"

    @property
    def all_device_signals(self) -> str:
        return f"{self.base}/device/+/signal"


def site_requests_filter(site: str) -> str:
    """Subscription filter for every line's requests of a site (an upstream peer serves many lines)."""
    return f"{ROOT}/{check_level(site)}/+/requests"


def site_log_anchors_filter(site: str) -> str:
    """Subscription filter for the card-log anchors of every terminal of a site (the upstream peer)."""
    return f"{ROOT}/{check_level(site)}/+/terminal/+/log_anchor"


def status_topic_for(requests_topic: str) -> str:
    """The status topic of the line a request was published on."""
    return requests_topic.rsplit("/", 1)[0] + "/status"


def bridge_availability(site: str, bridge: str) -> str:
    return f"{ROOT}/{check_level(site)}/bridge/{check_level(bridge)}/availability"


def site_status_query_filter(site: str) -> str:
    """Every line's status queries of a site: each peer hears all of them and answers its own."""
    return f"{ROOT}/{check_level(site)}/+/status_query"


def claims_filter(site: str) -> str:
    """Every peer's claims of a site (retained; docs/PROTOCOL.md "Several peers")."""
    return f"{ROOT}/{check_level(site)}/upstream/claim/+"


def claim_topic(site: str, request_id: str) -> str:
    return f"{ROOT}/{check_level(site)}/upstream/claim/{check_level(request_id)}"


def cancels_filter(site: str) -> str:
    """Every cancel notice of a site (retained, not shared; docs/PROTOCOL.md "Cancels reach the owner")."""
    return f"{ROOT}/{check_level(site)}/upstream/cancel/+"


def cancel_topic(site: str, request_id: str) -> str:
    return f"{ROOT}/{check_level(site)}/upstream/cancel/{check_level(request_id)}"


def peer_availability(site: str, peer: str) -> str:
    """A supermarket peer instance's retained availability (names it in a takeover warning)."""
    return f"{ROOT}/{check_level(site)}/upstream/peer/{check_level(peer)}/availability"


def site_peer_availability_filter(site: str) -> str:
    """Every supermarket peer's availability of a site: a terminal watches it for a peer that
    subscribed anew (adapters/peer_watch.py)."""
    return f"{ROOT}/{check_level(site)}/upstream/peer/+/availability"

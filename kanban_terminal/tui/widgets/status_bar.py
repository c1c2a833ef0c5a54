"""The status bar: which terminal this is, whether upstream hears it, and what is still queued."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static


@dataclass(frozen=True)
class LinkView:
    """What the status bar shows about the upstream link."""

    state: str
    """connected, reconnecting, offline or not configured."""
    since: datetime | None
    queued: int
    """Requests upstream has not answered yet."""
    oldest_queued_at: datetime | None
    unsent: int = 0
    """Of those, requests the broker has not acknowledged yet."""
    last_error: str = ""
    """The last refusal by the broker, shown until a publish succeeds."""


_SEVERITY_STYLE = {"ok": "green", "warn": "bold yellow", "alarm": "bold red", "off": "dim"}


def _age(now: datetime, then: datetime | None) -> str:
    if then is None:
        return ""
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


class StatusBar(Static):
    """One line: terminal and line on the left, link and queue on the right."""

    link: reactive[LinkView | None] = reactive(None)
    """The latest link view; set by the App."""
    now: reactive[datetime | None] = reactive(None)
    """The clock, ticked by the App so ages move."""
    scanners: reactive[tuple[tuple[str, bool], ...]] = reactive(())
    """Serial scanners by name, and whether each is connected."""
    devices: reactive[tuple[tuple[str, str, str], ...]] = reactive(())
    """Line devices the terminal can see: (name, what it shows, severity ok|warn|alarm|off)."""

    def __init__(self, terminal_id: str, line_name: str, *, id: str = "status-bar") -> None:
        super().__init__(id=id)
        self.terminal_id = terminal_id
        self.line_name = line_name

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f" {self.terminal_id} ", style="bold reverse")
        text.append(f" {self.line_name}  ")
        link, now = self.link, self.now
        if link is None or now is None:
            return text
        style = {"connected": "green", "reconnecting": "yellow"}.get(link.state, "red")
        since = f" {_age(now, link.since)}" if link.since and link.state != "not configured" else ""
        text.append(f"Upstream: {link.state}{since}", style=f"bold {style}")
        if link.queued:
            text.append(f"  Queued {link.queued} (oldest {_age(now, link.oldest_queued_at)})", style="yellow")
        else:
            text.append("  Queue empty", style="dim")
        if link.unsent:
            text.append(f"  Unsent {link.unsent}", style="bold yellow")
        if link.last_error:
            text.append(f"  {link.last_error}", style="bold red")
        for name, connected in self.scanners:
            if connected:
                text.append(f"  {name} ok", style="green")
            else:
                text.append(f"  {name} UNPLUGGED", style="bold red")
        for name, words, severity in self.devices:
            text.append(f"  {name}: {words}", style=_SEVERITY_STYLE.get(severity, "dim"))
        text.append(f"  {now.astimezone():%H:%M:%S}")
        return text

"""The status bar: which terminal this is, the clock, the line's state, whether upstream hears it,
and what is still queued.

What matters most comes first, because at 80 columns the end of the line is cut (issue 15: the clock
and the stack-light state fell off): terminal, clock, line state (what the stack light shows), the
devices' lamps, an unplugged scanner, then the link, queue and scanners, and the line's name last;
what is plain gives way, whole, to what is amber or red after it (issue floor80). Grey unless abnormal
(tui/palette.py): "connected" and "ok" are plain text; amber for a link down, a queue waiting or a
scanner unplugged; red only for a stopped line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from kanban_terminal.tui.palette import ATTENTION, QUIET, STOPPED


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


_SEVERITY_STYLE = {"ok": "", "warn": ATTENTION, "alarm": STOPPED, "off": QUIET}
_LINE_WORDS = {
    "running": ("Line running", ""),
    "call": ("HELP CALLED", ATTENTION),
    "stopped": ("LINE STOPPED", STOPPED),
}


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
    line_condition: reactive[str] = reactive("")
    """running, call or stopped (what the stack light shows); empty until the andon board is read."""

    def __init__(self, terminal_id: str, line_name: str, *, id: str = "status-bar") -> None:
        super().__init__(id=id)
        self.terminal_id = terminal_id
        self.line_name = line_name

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f" {self.terminal_id} ", style="bold reverse")
        link, now = self.link, self.now
        if link is None or now is None:
            text.append(f"  {self.line_name}")
            return text
        text.append(f" {now.astimezone():%H:%M:%S} ", style="bold")
        if self.line_condition:
            words, style = _LINE_WORDS.get(self.line_condition, (self.line_condition, ATTENTION))
            text.append(" ")
            text.append(words, style=style)
        for words, style in self._fitted(self._parts(link, now), self.content_size.width - len(text)):
            text.append(words, style=style)
        return text

    def _parts(self, link: LinkView, now: datetime) -> list[tuple[str, str]]:
        """What follows the line's state, most important first, each (words, style)."""
        parts: list[tuple[str, str]] = []
        for name, words, severity in self.devices:
            parts.append((f"  {name}: {words}", _SEVERITY_STYLE.get(severity, QUIET)))
        # An unplugged scanner is the operator's own trouble (plug it back): before the upstream
        # link, which is maintenance's; at 80 columns it came last and was cut off.
        parts += [(f"  {name} UNPLUGGED", ATTENTION) for name, connected in self.scanners if not connected]
        style = {"connected": "", "reconnecting": ATTENTION}.get(link.state, ATTENTION)
        since = f" {_age(now, link.since)}" if link.since and link.state != "not configured" else ""
        parts.append((f"  Upstream: {link.state}{since}", style))
        if link.queued:
            oldest = _age(now, link.oldest_queued_at)
            # A request in flight for a second is normal; one waiting a minute is worth a look.
            waiting = (
                link.oldest_queued_at is not None and (now - link.oldest_queued_at).total_seconds() >= 60
            )
            parts.append((f"  Queued {link.queued} (oldest {oldest})", ATTENTION if waiting else ""))
        else:
            parts.append(("  Queue empty", QUIET))
        if link.unsent:
            parts.append((f"  Unsent {link.unsent}", ATTENTION))
        if link.last_error:
            parts.append((f"  {link.last_error}", ATTENTION))
        parts += [(f"  {name} ok", "") for name, connected in self.scanners if connected]
        parts.append((f"  {self.line_name}", QUIET))
        return parts

    @staticmethod
    def _fitted(parts: list[tuple[str, str]], room: int) -> list[tuple[str, str]]:
        """`parts` in their order, without the plain ones that do not fit, last first: at 80
        columns a scanner UNPLUGGED or the broker's refusal (amber) came after 'Upstream: offline
        (no upstream link)  Queued 4 (oldest 3 min)' and was cut off (issue floor80). What is amber or
        red stays; if that alone is too long, the end is still cut."""
        plain = [i for i, (_words, style) in enumerate(parts) if style in ("", QUIET)]
        dropped: set[int] = set()
        width = sum(len(words) for words, _style in parts)
        while room > 0 and width > room and plain:
            i = plain.pop()
            dropped.add(i)
            width -= len(parts[i][0])
        return [part for i, part in enumerate(parts) if i not in dropped]

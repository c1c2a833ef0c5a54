"""`verify-log --anchors`: where the anchors come from, and what the verdict says.

Kept out of cli/log.py so that verb stays a few lines. A source is a file (an upstream peer's
database with its anchor store, a backup's `.anchor.json`, a JSON-lines file) or a broker URL
(`mqtt://`, `mqtts://`: the terminal's retained anchor). Exit codes: 0 intact, 1 broken (the row is
named), 2 a source that cannot be read, 3 intact but no anchor of this terminal was found, so
nothing beyond the chain was proven.
"""

from __future__ import annotations

from pathlib import Path

from kanban_terminal.config import TerminalConfig
from kanban_terminal.services.log_integrity import IntegrityReport
from kanban_terminal.storage.anchors import Anchor, AnchorFileError, read_anchors
from kanban_terminal.storage.log_key import LogKey

EXIT_OK, EXIT_BROKEN, EXIT_ATTENTION = 0, 1, 3  # 2 (a source that cannot be read): cli/log.py


class AnchorSourceError(Exception):
    """An anchors source cannot be read; the message says which and why."""


def _from_broker(url: str, config: TerminalConfig) -> list[Anchor]:
    from kanban_terminal.adapters.anchor_fetch import AnchorFetchError, fetch_retained_anchor
    from kanban_terminal.mqtt_settings import MqttConfigError, parse_mqtt_url
    from kanban_terminal.topics import LineTopics

    try:
        settings = parse_mqtt_url(url, config.mqtt)
        topic = LineTopics(config.site.id, config.line.id).terminal_log_anchor(config.terminal.id)
        found = fetch_retained_anchor(settings, topic)
    except (MqttConfigError, AnchorFetchError, OSError) as exc:
        raise AnchorSourceError(f"--anchors {url}: {exc}") from exc
    return [] if found is None or found.terminal != config.terminal.id else [found]


def gather_anchors(sources: list[str], config: TerminalConfig) -> tuple[list[Anchor], list[str]]:
    """Every anchor of this terminal in `sources`, and a line per source saying how many it gave.

    Raises:
        AnchorSourceError: a source cannot be read.
    """
    anchors: list[Anchor] = []
    lines: list[str] = []
    for source in sources:
        if source.startswith(("mqtt://", "mqtts://")):
            found = _from_broker(source, config)
        else:
            try:
                found = read_anchors(Path(source), config.terminal.id)
            except AnchorFileError as exc:
                raise AnchorSourceError(f"--anchors: {exc}") from exc
        anchors += found
        newest = max((a.row for a in found), default=None)
        lines.append(f"  {source}: {len(found)} anchor(s)" + (f", newest row {newest}" if found else ""))
    return anchors, lines


def print_verdict(report: IntegrityReport, key: LogKey | None, sources: list[str], asked: bool) -> int:
    """Print what was proven (or the first bad row and why); return the exit code."""
    chain = report.chain
    if not report.ok:
        print(f"card log BROKEN at row id {report.first_broken_id}: {report.reason}")
        if report.chain.first_broken_id is not None and report.anchor_broken_id is not None:
            print(f"  anchors: {report.anchor_reason}")
        for line in sources:
            print(line)
        return EXIT_BROKEN
    keyed = (
        f"keyed (HMAC-SHA256, key {key.fingerprint}) after row {key.keyed_after_id}"
        if key is not None
        else "not keyed (plain SHA-256: proves nothing against someone who recomputes it)"
    )
    print(f"card log OK: {chain.rows} rows, hash chain intact, {keyed}")
    if not asked:
        print("  no anchors given: a cut tail cannot be seen without them (--anchors)")
        return EXIT_OK
    for line in sources:
        print(line)
    if report.proven_row is None:
        print("  no anchor of this terminal was found: nothing beyond the chain is proven")
        return EXIT_ATTENTION
    print(
        f"  anchors: {report.anchors} checked; rows 1 to {report.proven_row} are as they were when "
        f"anchored ({report.proven_at}); rows after {report.proven_row} are covered by the chain only"
    )
    return EXIT_OK

"""Printable kanban cards: A4 SVG sheets, eight cards a page, each with a QR code of its id.

SVG because every browser prints it at true size with no extra dependency; the QR code comes from
`segno` (a maintained, pure-Python QR library) rather than hand-drawn modules, forced to full QR
(segno picks Micro QR for short ids, which many line scanners do not read). Text from the
configuration is XML-escaped. Cut along the grey lines; the card id is also printed in plain text so
a person can type it when a label is damaged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

import segno

from kanban_terminal.config import TerminalConfig
from kanban_terminal.resilience_config import reserve_cards

PAGE_W, PAGE_H = 210.0, 297.0  # mm, A4 portrait
COLS, ROWS = 2, 4
MARGIN = 10.0
CARD_W = (PAGE_W - 2 * MARGIN) / COLS
CARD_H = (PAGE_H - 2 * MARGIN) / ROWS


@dataclass(frozen=True)
class CardFace:
    """What is printed on one card."""

    card_id: str
    loop_id: str
    part: str
    description: str
    quantity: str
    point_of_use: str
    source: str
    note: str = ""
    """E.g. `replaces B1023`."""


RED_CARD_NOTE = "RED CARD - reserve bin: scan only when drawing on the reserve"
"""Printed on a `[[reserves]]` card (issue 18), so nobody scans it as an ordinary empty bin."""


def faces_for(
    cfg: TerminalConfig, cards: Sequence[tuple[str, str]], notes: dict[str, str] | None = None
) -> list[CardFace]:
    """Card faces for (card id, loop id) pairs."""
    out = []
    red = reserve_cards(cfg)
    for card_id, loop_id in cards:
        loop = cfg.loop(loop_id)
        part = cfg.part(loop.part)
        source = cfg.source(loop.source)
        out.append(
            CardFace(
                card_id=card_id,
                loop_id=loop.id,
                part=part.number,
                description=part.description,
                quantity=f"{loop.container_quantity} {part.unit}",
                point_of_use=loop.point_of_use,
                source=f"{source.name or source.id} ({source.kind})",
                note=(notes or {}).get(card_id, "") or (RED_CARD_NOTE if card_id in red else ""),
            )
        )
    return out


def _text(x: float, y: float, value: str, size: float, weight: str = "normal") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-family="DejaVu Sans, Arial, sans-serif" '
        f'font-size="{size}" font-weight="{weight}">{escape(value)}</text>'
    )


def _card(face: CardFace, x: float, y: float) -> str:
    qr = segno.make(face.card_id, error="m", micro=False)
    uri = qr.svg_data_uri(scale=1, border=2)
    q = 34.0  # mm: readable by a hand scanner at arm's length
    parts = [
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{CARD_W:.1f}" height="{CARD_H:.1f}" fill="none" '
        'stroke="#999" stroke-width="0.3" stroke-dasharray="2,1"/>',
        # Both href forms: SVG 2 readers want href, older ones (rsvg, Inkscape 0.92) xlink:href.
        f'<image x="{x + 3:.1f}" y="{y + 3:.1f}" width="{q}" height="{q}" href={quoteattr(uri)} '
        f"xlink:href={quoteattr(uri)}/>",
        _text(x + q + 6, y + 10, "KANBAN", 4, "bold"),
        _text(x + q + 6, y + 19, face.card_id, 8, "bold"),
        _text(x + q + 6, y + 26, f"Loop {face.loop_id}", 3.2),
        _text(x + q + 6, y + 32, f"Qty {face.quantity}", 4.2, "bold"),
        _text(x + 4, y + q + 10, f"Part {face.part}", 5, "bold"),
        _text(x + 4, y + q + 16, face.description[:40], 4),
        _text(x + 4, y + q + 22, f"Use at: {face.point_of_use}"[:48], 3.6),
        _text(x + 4, y + q + 27.5, f"From: {face.source}"[:52], 3.6),
    ]
    if face.note:
        parts.append(_text(x + 4, y + CARD_H - 3, face.note[:50], 3, "bold"))
    return "\n".join(parts)


def sheets(faces: Sequence[CardFace]) -> list[str]:
    """One SVG document per A4 page."""
    per_page = COLS * ROWS
    pages = []
    for start in range(0, len(faces), per_page):
        body = []
        for i, face in enumerate(faces[start : start + per_page]):
            col, row = i % COLS, i // COLS
            body.append(_card(face, MARGIN + col * CARD_W, MARGIN + row * CARD_H))
        pages.append(
            f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'width="{PAGE_W}mm" height="{PAGE_H}mm" '
            f'viewBox="0 0 {PAGE_W} {PAGE_H}">\n' + "\n".join(body) + "\n</svg>\n"
        )
    return pages

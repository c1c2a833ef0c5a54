"""The published JSON Schema of every wire message, generated from the models (never by hand).

`python -m kanban_terminal.adapters.wire --write docs/schema` writes one file per message;
`--check docs/schema` exits 1 when a committed file differs from what the models say (the test
suite runs the same comparison). Checks that need the terminal's configuration (known devices,
bins, stations, reasons) or its clock are not expressible in JSON Schema: the model docstrings,
which become the schemas' descriptions, name them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from kanban_terminal.adapters.wire.inbound import (
    AndonSignalMessage,
    BinSignalMessage,
    RequestCancelMessage,
    RequestMessage,
    UpstreamStatusMessage,
)
from kanban_terminal.adapters.wire.outbound import (
    AndonEventMessage,
    AvailabilityMessage,
    BuzzerCommand,
    HandoverMessage,
    HealthMessage,
    LightCommand,
    LineStateMessage,
    LogAnchorMessage,
)
from kanban_terminal.adapters.wire.peers import CancelNoticeMessage, ClaimMessage, StatusQueryMessage

MESSAGES: dict[str, type[BaseModel]] = {
    "bin_signal": BinSignalMessage,
    "andon_signal": AndonSignalMessage,
    "request": RequestMessage,
    "request_cancel": RequestCancelMessage,
    "upstream_status": UpstreamStatusMessage,
    "line_state": LineStateMessage,
    "andon_event": AndonEventMessage,
    "stack_light_light": LightCommand,
    "stack_light_buzzer": BuzzerCommand,
    "health": HealthMessage,
    "availability": AvailabilityMessage,
    "log_anchor": LogAnchorMessage,
    "claim": ClaimMessage,
    "cancel_notice": CancelNoticeMessage,
    "status_query": StatusQueryMessage,
    "handover": HandoverMessage,
}
"""File stem -> model. A new message gets a line here and a section in docs/PROTOCOL.md."""


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def rendered() -> dict[str, str]:
    """File name -> the text it must hold."""
    return {
        f"{stem}.json": json.dumps(schema_of(model), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        for stem, model in MESSAGES.items()
    }


def drift(folder: Path) -> list[str]:
    """The schema files in `folder` that are missing or differ from the models."""
    return [name for name, body in rendered().items() if _read(folder / name) != body]


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kanban_terminal.adapters.wire")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", type=Path, metavar="DIR", help="write every message's JSON Schema")
    action.add_argument("--check", type=Path, metavar="DIR", help="exit 1 if DIR differs from the models")
    args = parser.parse_args(argv)
    if args.write is not None:
        args.write.mkdir(parents=True, exist_ok=True)
        for name, body in rendered().items():
            (args.write / name).write_text(body, encoding="utf-8")
        print(f"wrote {len(MESSAGES)} schemas to {args.write}")
        return 0
    stale = drift(args.check)
    for name in stale:
        print(f"{args.check / name}: differs from the models (run with --write)")
    return 1 if stale else 0

"""Hypothesis strategies for the wire fuzz: valid messages of each door, and mutations that each make
a message certainly invalid (wrong type, bool for int, extra field, control character, oversize,
unknown device/bin/station/reason, bad id, missing field, wrong version, bad time, broken JSON).

Valid messages are built from the same field kinds the models declare, with the demo line's
configuration for what must be configured; `test_wire_fuzz` checks every base really is valid
before mutating it, so the generator and the schema cannot drift apart unnoticed.
"""

from __future__ import annotations

import json
import random
import string
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from kanban_terminal.adapters.wire import utc_text
from kanban_terminal.config import TerminalConfig

_RNG = random.Random(14)
_ID_CHARS = string.ascii_letters + string.digits + "_.-"
_TEXT_CHARS = string.ascii_letters + string.digits + string.punctuation + " éßÅ漢字한국\u0301😀𝔘"
# Pools drawn from by index: hypothesis then spends one choice per field instead of building strings
# character by character, which made 10,000 requests take minutes (profiled: 90 % in its draws).
_IDENTS = ["a", "-", ".", "_", "x" * 64] + [
    "".join(_RNG.choices(_ID_CHARS, k=_RNG.randint(1, 64))) for _ in range(300)
]
_TEXTS = ["", " ", "x" * 40] + ["".join(_RNG.choices(_TEXT_CHARS, k=_RNG.randint(0, 30))) for _ in range(300)]
IDENT = st.sampled_from(_IDENTS)
PRINTABLE = st.sampled_from(_TEXTS)
"""Printable text (letters of several scripts, an astral emoji, a combining mark), at most 40 long."""
UNSAFE = list("\x00\x01\x07\x08\x1b\x7f\x9b\u200b\u200e\u202e\u2066\ufeff\u00a0\u2028\r\n\t")
"""C0, DEL, C1, zero-width, bidi, BOM, no-break space, line separator: never printable text."""
NOT_IDENT = UNSAFE + list("/#+ :@$\\\"'é")


@dataclass(frozen=True)
class Door:
    """One inbound door: its topic, its valid messages, and what each field is."""

    name: str
    kinds: dict[str, str]
    """field -> kind: version, ident, event_id, int, enum, time, text<N>, uuid; `?` suffix: nullable."""
    required: frozenset[str]
    refs: dict[str, st.SearchStrategy[str]]
    """Fields that must name something configured -> ids that are not configured."""


def _when(now: datetime, max_age: timedelta) -> st.SearchStrategy[str]:
    seconds = st.integers(0, int(max_age.total_seconds()) - 60)
    return st.builds(
        lambda s, z: utc_text(now - timedelta(seconds=s)).replace("Z", z),
        seconds,
        st.sampled_from(["Z", "+00:00"]),
    )


def bin_signals(config: TerminalConfig, now: datetime) -> st.SearchStrategy[dict[str, Any]]:
    sensors = st.sampled_from([(b.device, b.bin) for b in config.bins])

    def build(sensor: tuple[str, str | None], boot: str, seq: int, kind: str, at: str) -> dict[str, Any]:
        device, bin_ = sensor
        body: dict[str, Any] = {"v": 1, "id": f"{device}:{boot}:{seq}", "device": device, "boot": boot}
        body |= {"seq": seq, "type": kind, "at": at}
        if bin_ is not None:
            body["bin"] = bin_
        return body

    return st.builds(
        build,
        sensors,
        IDENT,
        st.integers(0, 2**53 - 1),
        st.sampled_from(["bin_empty", "bin_full"]),
        _when(now, timedelta(days=7)),
    )


def andon_signals(config: TerminalConfig, now: datetime) -> st.SearchStrategy[dict[str, Any]]:
    def build(
        device: str, boot: str, seq: int, kind: str, station: str, reason: str, at: str | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"v": 1, "id": f"{device}:{boot}:{seq}", "device": device, "boot": boot}
        body |= {"seq": seq, "type": kind, "station": station, "reason": reason}
        if at is not None:
            body["at"] = at
        return body

    return st.builds(
        build, IDENT, IDENT, st.integers(0, 2**53 - 1),
        st.sampled_from(["andon_call", "andon_stop", "andon_cancel"]),
        st.sampled_from([s.id for s in config.stations]),
        st.sampled_from([r.code for r in config.andon_reasons]),
        st.none() | _when(now, timedelta(days=7)),
    )  # fmt: skip


PRINTABLE = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"))
    | st.just(" "),
    max_size=30,
)


def statuses(now: datetime) -> st.SearchStrategy[dict[str, Any]]:
    def build(id_: str, status: str, at: str, eta: str | None, extra: dict[str, Any]) -> dict[str, Any]:
        return {
            "v": 1,
            "id": id_,
            "request_id": str(uuid.UUID(int=abs(hash(id_)) % 2**128)),
            "status": status,
            "at": at,
            "eta": eta,
        } | extra

    optional = st.fixed_dictionaries(
        {}, optional={"card": IDENT, "loop": IDENT, "by": PRINTABLE, "reason": PRINTABLE | st.none()}
    )
    when = _when(now, timedelta(days=30))
    return st.builds(
        build,
        PRINTABLE.filter(lambda t: 1 <= len(t) <= 64),
        st.sampled_from(["accepted", "picked", "shipped", "rejected"]),
        when,
        st.none() | when,
        optional,
    )


def requests(now: datetime) -> st.SearchStrategy[dict[str, Any]]:
    when = _when(now, timedelta(days=30))
    return st.fixed_dictionaries(
        {
            "v": st.just(1), "id": st.uuids().map(str), "site": IDENT, "line": IDENT, "terminal": IDENT,
            "loop": IDENT, "loop_seq": st.integers(0, 2**53 - 1), "card": IDENT, "part": PRINTABLE,
            "quantity": st.integers(1, 1_000_000), "station": IDENT, "point_of_use": PRINTABLE,
            "source": IDENT,
            "raised_at": when, "due_at": when, "attempt": st.integers(1, 1000),
        }
    )  # fmt: skip


DEVICE = {"v": "version", "id": "event_id", "device": "ident", "boot": "ident", "seq": "int", "type": "enum"}
DOORS = {
    "bin": Door(
        "bin", DEVICE | {"at": "time", "bin": "ident"}, frozenset({*DEVICE, "at"}),
        {"device": st.just("NOT-A-SENSOR"), "bin": st.just("nosuchbin")},
    ),
    "andon": Door(
        "andon", DEVICE | {"station": "ident", "reason": "ident", "at": "time"},
        frozenset({*DEVICE, "station"}),
        {"station": st.just("ST99"), "reason": st.just("NOPE")},
    ),
    "status": Door(
        "status",
        {"v": "version", "id": "text64", "request_id": "uuid", "status": "enum", "at": "time", "eta": "time?",
         "card": "ident?", "loop": "ident?", "by": "text64?", "reason": "text200?"},
        frozenset({"v", "id", "request_id", "status", "at"}), {},
    ),
    "request": Door(
        "request",
        {"v": "version", "id": "uuid", "site": "ident", "line": "ident", "terminal": "ident", "loop": "ident",
         "loop_seq": "int", "card": "ident", "part": "text40", "quantity": "int", "station": "ident",
         "point_of_use": "text200", "source": "ident", "raised_at": "time", "due_at": "time",
         "attempt": "int"},
        frozenset({"v", "id", "site", "line", "terminal", "loop", "loop_seq", "card", "part", "quantity",
                   "station", "point_of_use", "source", "raised_at", "due_at", "attempt"}), {},
    ),
}  # fmt: skip

LIMIT = {
    "int": 0,
    "version": 0,
    "ident": 64,
    "event_id": 200,
    "text40": 40,
    "text64": 64,
    "text200": 200,
    "uuid": 36,
    "enum": 20,
    "time": 40,
}
WRONG = st.sampled_from([0, -1, 1.5, 1e308, [], {}, [1], {"a": 1}, True, False])


def _wrong_value(kind: str) -> st.SearchStrategy[Any]:
    nullable = kind.endswith("?")
    base = kind.rstrip("?")
    if base in ("int", "version"):
        return st.sampled_from(["1", "x", 1.0, 0.5, [], {}, None, True, False])
    values = WRONG if nullable else WRONG | st.none()
    return values


def mutated(
    door: Door, valid: st.SearchStrategy[dict[str, Any]], now: datetime
) -> st.SearchStrategy[tuple[str, dict[str, Any], bytes]]:
    """(mutation, the valid base, the invalid payload)."""

    @st.composite
    def one(draw: st.DrawFn) -> tuple[str, dict[str, Any], bytes]:
        base = draw(valid)
        body = dict(base)
        present = sorted(body)
        names = [
            "wrong_type",
            "extra_field",
            "control_char",
            "oversize",
            "missing",
            "bad_version",
            "bad_json",
            "bad_time",
        ]
        if any(door.kinds[f] in ("int", "version") for f in present):
            names.append("bool_for_int")
        if door.refs:
            names.append("unknown_ref")
        if door.name in ("bin", "andon", "status", "request"):
            names.append("bad_id")
        name = draw(st.sampled_from(names))
        if name == "wrong_type":
            field = draw(st.sampled_from(present))
            body[field] = draw(_wrong_value(door.kinds[field]))
        elif name == "bool_for_int":
            field = draw(st.sampled_from([f for f in present if door.kinds[f] in ("int", "version")]))
            body[field] = draw(st.booleans())
        elif name == "extra_field":
            key = draw(PRINTABLE) + "~"  # never a field's name
            body[key] = draw(st.none() | st.integers() | st.text(max_size=5))
        elif name == "control_char":
            field = draw(
                st.sampled_from([f for f in present if isinstance(body[f], str) and door.kinds[f] != "enum"])
            )
            chars = (
                UNSAFE
                if door.kinds[field].startswith("text")
                else NOT_IDENT
                if door.kinds[field] == "ident"
                else UNSAFE
            )
            value = body[field]
            at = draw(st.integers(0, len(value)))
            body[field] = value[:at] + draw(st.sampled_from(chars)) + value[at:]
        elif name == "oversize":
            field = draw(st.sampled_from([f for f in present if isinstance(body[f], str)]))
            limit = LIMIT[door.kinds[field].rstrip("?")]
            body[field] = (body[field] or "x") * (limit // max(1, len(body[field])) + 2)
            if len(body[field]) <= limit:
                body[field] += "x" * (limit + 1 - len(body[field]))
        elif name == "missing":
            del body[draw(st.sampled_from(sorted(door.required)))]
        elif name == "bad_version":
            body["v"] = draw(st.sampled_from([0, 2, -1, 10**20]))
        elif name == "bad_time":
            field = draw(
                st.sampled_from(
                    [f for f in present if door.kinds[f].startswith("time") and body[f] is not None] or ["at"]
                )
            )
            bad = [
                "yesterday",
                "2026-11-23T10:00:00",
                "2026-11-23T10:00:00.000+02:00",
                "2026-13-45T99:00:00.000Z",
                "x" * 25,
            ]
            if door.name in ("bin", "andon"):
                bad += [utc_text(now + timedelta(minutes=6)), utc_text(now - timedelta(days=8))]
            body[field] = draw(st.sampled_from(bad))
        elif name == "unknown_ref":
            field = draw(st.sampled_from(sorted(door.refs)))
            if field == "reason" and body.get("type") == "andon_cancel":
                body["type"] = "andon_call"
            body[field] = draw(door.refs[field])
            if field == "device":
                body["id"] = f"{body['device']}:{body['boot']}:{body['seq']}"
        elif name == "bad_id":
            if door.name in ("bin", "andon"):
                body["id"] = draw(
                    st.sampled_from(
                        [
                            "x",
                            f"{body['device']}:{body['boot']}:{body['seq'] + 1}",
                            f"{body['device']}:{body['boot']}",
                        ]
                    )
                )
            else:
                field = "request_id" if door.name == "status" else "id"
                body[field] = draw(
                    st.sampled_from(
                        ["x", str(uuid.uuid4())[:-1], str(uuid.uuid4()) + "0", "{" + str(uuid.uuid4()) + "}"]
                    )
                )
        elif name == "bad_json":
            text = json.dumps(body)
            broken = draw(st.sampled_from(["truncate", "duplicate", "nan", "array"]))
            if broken == "truncate":
                cut = draw(st.integers(0, len(text) - 1))
                return name, base, text[:cut].encode()
            if broken == "duplicate":
                return name, base, (text[:-1] + ', "v": 1}').encode()
            if broken == "nan":
                return name, base, (text[:-1] + ', "x": NaN}').encode()
            return name, base, f"[{text}]".encode()
        return name, base, json.dumps(body).encode()

    return one()

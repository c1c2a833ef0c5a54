"""The same-work raw pipeline: `serve`'s SQL per signal, with paho + sqlite3 only (issue 19).

The minimal pipeline (bench/pipeline_proc.py `run_minimal`) commits 2 rows into 2 index-less tables;
`serve` stores a request with its indexes, three hash-chained card-log rows, the card's state, the
dedupe key and the previous request's PUBACK mark. Their ratio mixes "what is stored" with "our
code". This pipeline stores exactly what `serve` stores, in the minimal's shape (one process, paho's
`on_message` -> BEGIN IMMEDIATE -> statements -> COMMIT -> publish the request QoS 1, auto-ack), so:

* samework / minimal is what storing `serve`'s rows costs over storing two bare rows: the floor of
  any code that keeps the chained log, the request and the dedupe key;
* serve / samework is what `serve`'s own code adds on top (wire schema, domain decision, unit of
  work, SQLAlchemy, the relay's bookkeeping, threads and timers): the part code can still cut.

How it gets `serve`'s SQL: bench/same_work_capture.py `capture` runs the real `serve`, recording
every statement the thread inside `InboundWorker._handle` sends to the driver, over a few signals
at a paced rate, so every group is one signal and, from the second on, carries the previous request's
PUBACK mark. `Templates.build` turns the first group (no mark) and the last one (with mark) into
templates: same SQL text, each parameter a constant or a per-signal slot (device, card, loop,
request id, the previous request's id/card/loop, timestamps, the loop's sequence number from the
`RETURNING` of the loop's UPDATE, card-log hashes chained from the tail the group reads, HMAC-SHA256
with the terminal's log key, as `serve` computes them). `run` replays them per signal on a database
made by `Terminal.open` on the same line config (same schema, indexes and cards), and publishes a
request payload built from `serve`'s own (same fields, same size).

    python bench/same_work.py capture OUT.json               (serve and a broker of its own)
    python bench/same_work.py run PORT CONFIG DATA_DIR TEMPLATES.json LINE   (prints "ready")
    python bench/line_pc.py --kinds minimal,samework,serve ...               (beside the others)

Not the same as `serve` on purpose: no wire-schema decode (`json.loads` as the minimal), no grouping
of a burst (one commit a signal, as the minimal), SQLite's own autocheckpoint (1,000 pages, in the
commit, as the minimal) instead of `serve`'s background checkpointer; constants of the request
(part, station, point of use) are the captured loop's for every loop (same kind, same size).
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import json
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import tomllib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import pipeline_proc  # noqa: E402
from kanban_terminal.topics import LineTopics  # noqa: E402

_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
_INSERT = re.compile(r"^\s*INSERT INTO (\w+) \(([^)]*)\) VALUES", re.IGNORECASE)
_ORIGINAL = ("event", "card_id", "loop_id", "from_state", "to_state", "request_id", "actor", "source",
             "detail", "andon_id")  # fmt: skip
"""storage/card_log.py ORIGINAL_FIELDS: what a row's chain hash covers, after occurred/recorded."""


def _stamp(at: datetime) -> str:
    """Stored text of a timestamp (storage/types.py `to_text`'s format)."""
    return at.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- templates ----------------------------------------------------------------------------------


@dataclass
class Templates:
    """Two groups of statements with their parameters as specs, and the request payload's fields.

    A spec is `["c", value]` (a constant), `["s", slot]` (device, card, loop, req, seq, at, due,
    prev_card, prev_loop, prev_req, hash), `["now", k]` (the k-th distinct "now" of the group: each
    is a clock read in `serve`) or `["sub", slot, text]` (`text` with the slot's value for `{}`)."""

    first: list[list[Any]]
    steady: list[list[Any]]
    payload: dict[str, Any]
    lead: float
    """Seconds from a signal's time to its request's due time (the loop's lead time)."""

    @staticmethod
    def build(captured: dict[str, Any]) -> Templates:
        groups, published, devices = captured["groups"], captured["published"], captured["devices"]
        if len(groups) != len(devices) or any(g["signals"] != 1 for g in groups):
            raise RuntimeError(
                f"capture: want {len(devices)} one-signal groups, got {[g['signals'] for g in groups]}"
            )
        bodies = [json.loads(body) for _, body in published]
        if [b["card"] for b in bodies] != [f"C{d[2:]}" for d in devices]:
            raise RuntimeError("capture: requests not published in signal order")
        last = len(groups) - 1
        first = _specs(groups[0]["statements"], _known(bodies, devices, 0))
        steady = _specs(groups[last]["statements"], _known(bodies, devices, last))
        lead = (_parse(bodies[last]["due_at"]) - _parse(bodies[last]["raised_at"])).total_seconds()
        return Templates(first, steady, bodies[last], lead)

    def dump(self) -> str:
        return json.dumps(
            {"first": self.first, "steady": self.steady, "payload": self.payload, "lead": self.lead}
        )

    @staticmethod
    def load(text: str) -> Templates:
        d = json.loads(text)
        return Templates(d["first"], d["steady"], d["payload"], d["lead"])


def _known(bodies: list[dict[str, Any]], devices: list[str], k: int) -> dict[str, Any]:
    body = bodies[k]
    known = {
        "device": devices[k], "card": body["card"], "loop": body["loop"], "req": body["id"],
        "seq": body["loop_seq"], "at": _parse(body["raised_at"]), "due": _parse(body["due_at"]),
    }  # fmt: skip
    if k:
        prev = bodies[k - 1]
        known |= {"prev_card": prev["card"], "prev_loop": prev["loop"], "prev_req": prev["id"]}
    return known


def _specs(statements: list[list[Any]], known: dict[str, Any]) -> list[list[Any]]:
    """Each statement as [method, sql, specs]: which parameter is per signal, and which."""
    nows: dict[str, int] = {}
    by_value: dict[Any, str] = {
        known[s]: s for s in ("device", "card", "req", "prev_card", "prev_req") if s in known
    }
    out = []
    for method, sql, params in statements:
        if method in ("commit", "rollback"):
            out.append([method, None, None])
            continue
        if method != "execute" or isinstance(params, dict):
            raise RuntimeError(f"capture: cannot template {method} {sql[:60]} (not seen in a group so far)")
        m = _INSERT.match(sql)
        cols = [c.strip() for c in m.group(2).split(",")] if m else []
        specs = []
        for i, value in enumerate(params):
            col = cols[i % len(cols)] if cols else ""
            row = params[i - i % len(cols) : i - i % len(cols) + len(cols)] if cols else []
            specs.append(_spec(value, col, row, cols, known, by_value, nows))
        out.append([method, sql, specs])
    return out


def _spec(
    value: Any, col: str, row: list[Any], cols: list[str], known: dict[str, Any], by_value: dict[Any, str],
    nows: dict[str, int],
) -> list[Any]:  # fmt: skip
    if col == "hash":
        return ["s", "hash"]
    if col == "loop_seq":
        return ["s", "seq"]
    if isinstance(value, str):
        if value in by_value:
            return ["s", by_value[value]]
        if value == known["loop"]:
            # A card-log row of the previous request (the mark's) carries that request's loop.
            mine = row[cols.index("card_id")] if "card_id" in cols else None
            return ["s", "prev_loop" if mine is not None and mine == known.get("prev_card") else "loop"]
        if _TS.match(value):
            at = _parse(value)
            if at == known["at"]:
                return ["s", "at"]
            if at == known["due"]:
                return ["s", "due"]
            return ["now", nows.setdefault(value, len(nows))]
        if known["device"] in value:
            return ["sub", "device", value.replace(known["device"], "{}")]
    return ["c", value]


# -- the pipeline -------------------------------------------------------------------------------


class Replayer:
    """Runs a template group per signal on a raw sqlite3 connection (no SQLAlchemy, no ORM)."""

    def __init__(self, con: sqlite3.Connection, templates: Templates, secret: bytes, loops: dict[str, str]):
        self.con = con
        self.t = templates
        self._mac = hmac.new(secret, digestmod=hashlib.sha256)
        self.loops = loops
        """card id -> loop id (read once from the card table)."""
        self.prev: tuple[str, str, str] | None = None
        """(card, loop, request id) of the previous signal: its PUBACK is marked by the next group."""
        self._log_cols = {}
        for _, sql, _ in templates.first + templates.steady:
            m = _INSERT.match(sql or "")
            if m and m.group(1) == "card_log":
                self._log_cols[sql] = [c.strip() for c in m.group(2).split(",")]

    def chain(self, prev: str, row: list[Any], cols: list[str]) -> str:
        """The row's hash as storage/card_log.py `chain_hash` makes it (keyed, no andon facts)."""
        get = dict(zip(cols, row, strict=True))
        parts = [prev, get["occurred_at"], get["recorded_at"]]
        parts += ["" if get.get(f) is None else str(get[f]) for f in _ORIGINAL]
        h = self._mac.copy()
        h.update("\x1f".join(parts).encode())
        return "k1:" + h.hexdigest()

    def signal(self, device: str, card: str, at_text: str) -> dict[str, Any]:
        """One signal: its group's statements, committed; returns the request's payload fields."""
        at = _parse(at_text)
        loop = self.loops[card]
        vals: dict[str, Any] = {
            "device": device, "card": card, "loop": loop, "req": str(uuid.uuid4()), "at": _stamp(at),
            "due": _stamp(at + timedelta(seconds=self.t.lead)), "seq": None,
        }  # fmt: skip
        if self.prev is not None:
            vals["prev_card"], vals["prev_loop"], vals["prev_req"] = self.prev
        nows: dict[int, str] = {}
        tail = ""
        con = self.con
        for method, sql, specs in self.t.steady if self.prev is not None else self.t.first:
            if method == "commit":
                con.commit()
                continue
            if method == "rollback":
                con.rollback()
                continue
            params = []
            for spec in specs:
                kind = spec[0]
                if kind == "c":
                    params.append(spec[1])
                elif kind == "s":
                    params.append(vals[spec[1]] if spec[1] != "hash" else None)
                elif kind == "now":
                    if spec[1] not in nows:
                        nows[spec[1]] = _stamp(datetime.now(UTC))
                    params.append(nows[spec[1]])
                else:
                    params.append(spec[2].replace("{}", vals[spec[1]]))
            cols = self._log_cols.get(sql)
            if cols:
                n = len(cols)
                for i in range(0, len(params), n):
                    tail = self.chain(tail, params[i : i + n - 1], cols[:-1])
                    params[i + n - 1] = tail
            rows = con.execute(sql, params).fetchall()
            if "RETURNING" in sql:
                vals["seq"] = rows[0][0]
            elif sql.startswith("SELECT hash FROM card_log"):
                tail = rows[0][0] if rows else "0" * 64
        self.prev = (card, loop, vals["req"])
        return vals


def open_db(path: Path) -> sqlite3.Connection:
    """As `serve`'s write engine opens it (storage/db.py `_on_connect`), without SQLAlchemy."""
    con = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("PRAGMA busy_timeout=10000")
    con.execute("PRAGMA foreign_keys=ON")
    return con


def replayer_for(config: Path, data_dir: Path, templates: Templates) -> tuple[Replayer, dict[str, str]]:
    """A replayer on the terminal's file in `data_dir`, and the line's device -> card map."""
    con = open_db(data_dir / "terminal.db")
    secret = bytes.fromhex(json.loads((data_dir / "log-key.json").read_text())["key"])
    loops = dict(con.execute("SELECT id, loop_id FROM card").fetchall())
    bins = {b["device"]: b["card"] for b in tomllib.loads(config.read_text()).get("bins", [])}
    return Replayer(con, templates, secret, loops), bins


def run(port: int, config: Path, data_dir: Path, templates: Templates, line: str) -> None:
    """Subscribe to the line's bin signals; per signal, the replayed group, commit, publish, auto-ack."""
    topics = LineTopics("S1", line)
    replayer, bins = replayer_for(config, data_dir, templates)
    payload = dict(templates.payload, line=line, terminal=f"{line}-T1", attempt=1)
    worker = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{line}-samework", protocol=mqtt.MQTTv5)
    worker.max_inflight_messages_set(1000)
    worker.on_socket_open = lambda cl, u, s: s.setsockopt(6, 1, 1)  # TCP_NODELAY
    subscribed = threading.Event()

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        data = json.loads(msg.payload)
        card = bins[data["device"]]
        vals = replayer.signal(data["device"], card, data["at"])
        body = payload | {
            "id": vals["req"], "loop": vals["loop"], "loop_seq": vals["seq"], "card": card,
            "raised_at": vals["at"][:23] + "Z", "due_at": vals["due"][:23] + "Z",
        }  # fmt: skip
        c.publish(topics.requests, json.dumps(body, separators=(",", ":")), 1)

    worker.on_message = on_message
    worker.on_subscribe = lambda *a: subscribed.set()
    worker.connect("127.0.0.1", port, 30)
    worker.subscribe(topics.all_device_signals, 1)
    worker.loop_start()
    subscribed.wait(30)
    gc.collect()
    gc.freeze()  # as serve and the minimal do once started
    print("ready", flush=True)
    sys.stdin.read()  # until the bench closes our stdin
    worker.disconnect()
    worker.loop_stop()
    replayer.con.close()


@contextmanager
def same_work(
    port: int,
    home: Path,
    cards: int,
    line: str,
    templates: Path,
    *,
    launcher: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """The same-work pipeline in its own process on a line of `cards` bin sensors, its file made by
    `Terminal.open` on the line config `serving` writes; yielded once subscribed."""
    from tests.support.mqtt_lines import line_config

    home.mkdir(parents=True)
    cfg = home / "line.toml"
    cfg.write_text(line_config(loops=(cards + 99) // 100, cards=100, sensors=cards, line=line))
    subprocess.run(
        [sys.executable, "-c", pipeline_proc._CREATE, str(cfg), str(home / "data")],
        cwd=ROOT,
        check=True,
        env=env,
    )
    proc = subprocess.Popen(
        [*launcher, sys.executable, __file__, "run", str(port), str(cfg), str(home / "data"),
         str(templates), line],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != b"ready":
            raise RuntimeError("same-work pipeline did not start")
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        if proc.wait(30) is None:
            proc.send_signal(signal.SIGTERM)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "capture":
        import tempfile

        from bench.same_work_capture import capture
        from tests.support.mosquitto import Mosquitto

        with tempfile.TemporaryDirectory() as d:
            broker = Mosquitto(Path(d) / "broker").start()
            try:
                captured = capture(broker.port, Path(d) / "serve")
            finally:
                broker.stop()
        Path(sys.argv[2]).write_text(Templates.build(captured).dump())
    elif len(sys.argv) == 7 and sys.argv[1] == "run":
        templates = Templates.load(Path(sys.argv[5]).read_text())
        run(int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), templates, sys.argv[6])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()

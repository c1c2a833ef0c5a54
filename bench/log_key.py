"""What keying the card log costs a row: plain SHA-256 vs HMAC-SHA256 through `card_log.chain_hash`.

Prints per-row times of both in the same process and run (a busy box moves both alike, so read the
ratio), for the hash alone and for `verify-log`'s whole check (`ChainCheck.feed`).

    .venv/bin/python bench/log_key.py [rows]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from kanban_terminal.storage.card_log import GENESIS, ChainCheck, chain_hash
from kanban_terminal.storage.log_key import LogKey

AT = "2026-12-05T08:00:00.000000Z"
VALUES = ("request_raised", "C00001", "LP0", "empty", "queued", "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
          None, "keyboard", "", None)  # fmt: skip


def per_row(fn: object, rows: int) -> float:
    start = time.perf_counter()
    fn(rows)  # type: ignore[operator]
    return (time.perf_counter() - start) / rows * 1e6


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    key = LogKey(b"k" * 32, 0, "", Path("bench"))

    def hashes(keyed: bool) -> object:
        def run(n: int) -> None:
            prev = GENESIS
            for _ in range(n):
                prev = chain_hash(prev, AT, AT, VALUES, key=key if keyed else None)

        return run

    def checks(keyed: bool) -> object:
        stored: list[str] = []
        prev = GENESIS
        for _ in range(rows):
            prev = chain_hash(prev, AT, AT, VALUES, key=key if keyed else None)
            stored.append(prev)

        def run(n: int) -> None:
            check = ChainCheck(key if keyed else None)
            for i in range(n):
                assert check.feed(i + 1, stored[i], AT, AT, VALUES, backfilled=False, andon_id=None)

        return run

    for name, make in (("chain_hash", hashes), ("verify (ChainCheck.feed)", checks)):
        plain, keyed = per_row(make(False), rows), per_row(make(True), rows)
        print(f"{name:<26} plain {plain:5.2f} us/row  keyed {keyed:5.2f} us/row  ratio {keyed / plain:4.2f}")


if __name__ == "__main__":
    main()

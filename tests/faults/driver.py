"""A headless scanner in its own process, for the crash, fsync and I/O-fault tests.

    python tests/faults/driver.py --config F --data-dir D [--rate N] [--wait-go] CARD...

Calls `record_scan` (intent EMPTY) for each card and prints one line per outcome *after* it returned:
`ACCEPTED <card> <request_id>` or `REFUSED <card> <kind> <message>`, after a first `READY`. A line
on stdout is therefore the "reported" fact the reconciliation holds the terminal to. With `--wait-go`
it waits for a line on stdin before the first scan (so faults can be switched on after start-up).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kanban_terminal.config import load_config  # noqa: E402
from kanban_terminal.domain.scans import Intent  # noqa: E402
from kanban_terminal.services.scanning import record_scan  # noqa: E402
from kanban_terminal.services.terminal import Terminal  # noqa: E402


def _until_ok(step: object, attempts: int = 1000) -> object:
    for _ in range(attempts - 1):
        try:
            return step()  # type: ignore[operator]
        except OSError:
            continue
    return step()  # type: ignore[operator]


def _say(text: str) -> None:
    data = text.encode()
    while data:
        data = data[int(_until_ok(lambda chunk=data: os.write(1, chunk))) :]  # type: ignore[misc]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--rate", type=float, default=0.0, help="scans per second; 0 = as fast as possible")
    parser.add_argument("--wait-go", action="store_true")
    parser.add_argument("cards", nargs="+")
    args = parser.parse_args()
    terminal = Terminal.open(load_config(args.config), args.data_dir)
    print("READY", flush=True)
    if args.wait_go:
        # Under injected write faults stderr itself fails; logging's handleError then prints a
        # traceback to that same failing stream, and under libfiu's preload this was seen to end in
        # SIGFPE inside traceback.print (2 runs in 5). The pipe is the test's, not under test.
        logging.raiseExceptions = False
        sys.stdin.readline()
    start = time.monotonic()
    out = []
    for n, card in enumerate(args.cards):
        if args.rate:
            delay = start + n / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing a load generator, not waiting for a condition
        outcome = record_scan(terminal, card, source="driver", intent=Intent.EMPTY)
        if outcome.accepted:
            line = f"ACCEPTED {card} {outcome.request_id}"
        else:
            line = f"REFUSED {card} {outcome.kind.value} {outcome.message}"
        if args.wait_go:
            out.append(line)  # under injected write faults stdout itself may fail: report at the end
        else:
            print(line, flush=True)
    if args.wait_go:
        _say("DONE\n")  # the faults are still on: retry the pipe, it is not under test
        _until_ok(sys.stdin.readline)  # the test switches the faults off, then sends a line
        _say("\n".join(out) + "\n")
    terminal.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

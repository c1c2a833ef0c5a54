"""The `firmware-bridge` command: `run` the bridge, `simulate` a device, `check-config`.

Exit codes: 0 done, 2 configuration or usage error. Errors go to stderr as one readable message,
never as a traceback, because the operator reading them is at a line PC, not a debugger.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType as StackFrame

from firmware_bridge.config import ConfigError, load_config
from firmware_bridge.simulator import DeviceSimulator  # pure Python + pty: cheap to import
from kanban_terminal.domain.text import escape_external

_DESCRIPTION = "Bridge serial devices (bin sensors, andon buttons, stack lights, scanners) to MQTT."
"""A constant, not `__doc__`: under `python -OO` (PYTHONOPTIMIZE=2) docstrings are None."""

_INSTANCE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="firmware-bridge", description=_DESCRIPTION)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="bridge the configured serial devices to MQTT")
    run.add_argument("--config", type=Path, required=True, help="bridge TOML file")
    run.add_argument("--mqtt", metavar="URL", help="mqtt://host:port, overrides the broker in the file")
    run.add_argument(
        "--instance",
        default=os.environ.get("KANBAN_INSTANCE") or None,
        help="instance name (env KANBAN_INSTANCE), appended to the MQTT client id: two bridges from "
        "one config must not take each other's broker session over",
    )
    check = sub.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("--config", type=Path, required=True)
    sim = sub.add_parser("simulate", help="a simulated device on a pseudo-terminal (commands on stdin)")
    sim.add_argument(
        "--port",
        default="pty",
        help="'pty' prints the new pseudo-terminal's path; a PATH becomes a symlink to it, kept on replug",
    )
    sim.add_argument("--device", default="D1", help="device id (default D1)")
    sim.add_argument("--heartbeat", type=float, default=1.0, help="seconds between HB frames")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors; keep that, return instead of raise
        return int(exc.code or 0)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "simulate":
            return _simulate(args)
        config = load_config(args.config, mqtt_url=getattr(args, "mqtt", None))
    except ConfigError as exc:
        print(f"firmware-bridge: {exc}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        print(f"{args.config}: ok, {len(config.devices)} device(s)")
        return 0
    from firmware_bridge.bridge import Bridge  # paho and pyserial only for the verb that needs them

    if args.instance is not None and not _INSTANCE.match(args.instance):
        print(f"firmware-bridge: --instance {args.instance!r}: letters, digits, _ . - only", file=sys.stderr)
        return 2
    bridge = Bridge(config, instance=args.instance)
    stop = threading.Event()

    def _on_signal(signum: int, frame: StackFrame | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    bridge.start()
    stop.wait()
    bridge.stop()
    return 0


_HELP = """commands: press [call|stop|cancel] [station] [reason] | bin BIN [empty|full] | hello | hb |
          reboot | corrupt | unplug | replug | lights | quit"""


def _simulate(args: argparse.Namespace) -> int:
    device = DeviceSimulator(args.device, link=None if args.port == "pty" else Path(args.port))
    path = device.open()
    print(f"device {args.device} boot {device.boot} on {path}", flush=True)
    print(_HELP, flush=True)
    device.hello()
    device.start_heartbeat(args.heartbeat)
    try:
        for raw in sys.stdin:
            words = shlex.split(raw)
            if not words:
                continue
            verb, rest = words[0], words[1:]
            if verb == "quit":
                break
            try:
                _simulate_one(device, verb, rest)
            except (ValueError, IndexError) as exc:
                print(f"? {escape_external(str(exc))}", flush=True)
    finally:
        device.stop()
    return 0


def _simulate_one(device: DeviceSimulator, verb: str, rest: list[str]) -> None:
    if verb == "press":
        device.press(*(rest or ["call"]))
    elif verb == "bin":
        device.bin(*rest)
    elif verb in ("hello", "hb", "reboot", "corrupt"):
        {"hello": device.hello, "hb": device.heartbeat, "reboot": device.reboot, "corrupt": device.corrupt}[
            verb
        ]()
    elif verb == "unplug":
        device.close()
    elif verb == "replug":
        print(f"on {device.reopen()}", flush=True)
    elif verb == "lights":
        for frame in list(device.received)[-10:]:
            print(f"{frame.type} {' '.join(frame.args)}", flush=True)
        return
    else:
        raise ValueError(f"unknown command {verb!r}; {_HELP}")
    print(f"ok boot {device.boot} seq {device.seq}", flush=True)


if __name__ == "__main__":
    sys.exit(main())

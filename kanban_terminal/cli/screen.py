"""The long-running verbs of `kanban-terminal`: `run` and `demo` (the screen), `serve` and `upstream`.

Kept out of cli/__init__.py so the verbs that start the terminal's runtime live together; cli/__init__.py only
registers them. The screen and `serve` both start the runtime through `open_runtime`, so the screen
runs exactly the jobs `serve` runs and starts none of its own. Exit codes as in cli/__init__.py.

The screen opens the runtime after its first paint (tui/boot.py, issue 15): nothing on the way to
the App may import the runtime or the storage stack (tests/tui/test_launch.py checks it).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from kanban_terminal.config import MqttSettings, TerminalConfig, demo_config_path

if TYPE_CHECKING:
    from kanban_terminal.adapters.demo_hardware import SimulatedStation
    from kanban_terminal.runtime import Runtime

EXIT_OK, EXIT_USAGE = 0, 2

Common = Callable[[argparse.ArgumentParser], None]
Load = Callable[[argparse.Namespace], TerminalConfig]
DataDir = Callable[[argparse.Namespace], Path]

Broker = Callable[[ExitStack], MqttSettings | None]
"""Where the runtime connects, found on the boot thread; what it starts (the demo's broker) is entered
on the stack, closed after the runtime."""

DEMO_PIN = "4711"


def add_screen_parsers(verbs: argparse._SubParsersAction[argparse.ArgumentParser], common: Common) -> None:
    """`demo` and `run`, listed first in the help."""
    demo = verbs.add_parser("demo", help="run a demo line in a throw-away data dir (no setup, no network)")
    common(demo)
    demo.add_argument(
        "--simulated-hardware",
        action="store_true",
        help="also run a simulated microcontroller station (andon button, bin sensor, stack light) on a "
        "pseudo-terminal, served by the firmware bridge; its stack light shows on the status bar",
    )
    demo.add_argument(
        "--kiosk",
        action="store_true",
        help="as `run` does by default: no command palette; quitting or cancelling a call needs a team lead",
    )
    run = verbs.add_parser("run", help="run the terminal screen for a configured line")
    common(run)


def add_headless_parsers(verbs: argparse._SubParsersAction[argparse.ArgumentParser], common: Common) -> None:
    """`serve` and `upstream`."""
    serve = verbs.add_parser(
        "serve",
        help="run the terminal with no screen: MQTT link, relay, escalation, lost cards, serial scanners",
    )
    common(serve)
    upstream = verbs.add_parser(
        "upstream", help="run a supermarket / warehouse peer that answers requests over MQTT"
    )
    common(upstream)
    from kanban_terminal.peer_arguments import add_instance_arguments

    add_instance_arguments(upstream)


def cmd_run(args: argparse.Namespace, load: Load, data_dir: DataDir, *, demo: bool = False) -> int:
    from kanban_terminal.logging_setup import setup_logging

    cfg = load(args)
    setup_logging(data_dir(args), stderr=False)  # the screen owns the terminal: file only

    def broker(_stack: ExitStack) -> MqttSettings | None:  # on the boot thread, as the runtime's import
        from kanban_terminal.runtime import resolve_mqtt

        return resolve_mqtt(cfg, args.mqtt)  # its URL was checked before any verb ran (cli main)

    return run_screen(cfg, data_dir(args), broker, demo=demo)


def run_screen(
    cfg: TerminalConfig,
    data_dir: Path,
    mqtt: MqttSettings | None | Broker,
    *,
    demo: bool,
    device_view: Callable[[], tuple[tuple[str, str, str], ...]] | None = None,
    demo_hint: str = "",
    kiosk: bool = False,
) -> int:
    """The screen over the terminal's runtime: the same `open_runtime` as `serve`, opened on the
    boot thread once the scan screen is painted (`mqtt` may be a `Broker` called there). Kiosk
    mode: `[keys] kiosk` when the config says, else `run` on and `demo` off (a demo is for trying
    things out at a desk: it quits with Ctrl+Q; `demo --kiosk` shows the floor's behaviour). A
    runtime that cannot be opened is shown on the screen, then raised here as before."""
    from kanban_terminal.tui.app import KanbanApp
    from kanban_terminal.tui.boot import RuntimeBoot

    def opener(stack: ExitStack) -> Runtime:
        from kanban_terminal.runtime import open_runtime

        settings = mqtt(stack) if callable(mqtt) else mqtt
        runtime = stack.enter_context(open_runtime(cfg, data_dir, settings))
        if demo:
            _enrol_demo_team_leads(runtime.terminal)
        return runtime

    boot = RuntimeBoot(cfg, opener)
    app = KanbanApp(
        boot=boot,
        demo=demo,
        device_view=device_view,
        demo_hint=demo_hint,
        kiosk=kiosk or (cfg.keys.kiosk if cfg.keys.kiosk is not None else not demo),
    )
    try:
        # No gc.collect + freeze here: 0.18 s before the first paint on the shared box; the App does
        # it once the runtime is up (start_app.py `freeze_start_up`), the runtime's objects included.
        app.run()
    finally:
        boot.close()  # the runtime's jobs, then the database, as open_runtime's block did
    return EXIT_OK


def _enrol_demo_team_leads(terminal: object) -> None:
    """The demo line's team leads get PIN 4711 (shown on screen), so F6 works without setup."""
    from kanban_terminal.domain.auth import has_authority
    from kanban_terminal.services.auth import enroll
    from kanban_terminal.services.terminal import Terminal
    from kanban_terminal.storage.tables import CredentialRow

    assert isinstance(terminal, Terminal)
    for person in terminal.config.people:
        with terminal.db.reading() as session:
            known = session.get(CredentialRow, person.badge) is not None
        if has_authority(person.role) and not known:
            enroll(terminal, person.badge, DEMO_PIN, source="demo")


def cmd_demo(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    """A demo line: embedded broker, supermarket peer and simulated bin sensors, in a throw-away dir."""
    if args.config is None:
        args.config = demo_config_path()
    cfg = load(args)
    if not getattr(args, "simulated_hardware", False):
        return _demo_screen(args, cfg, hardware=False, hint="")
    # Imported only when asked for: the station's bridge brings paho and pyserial, ~0.1 s of CPU
    # before the first screen otherwise (issue 15).
    from kanban_terminal.adapters.demo_hardware import (
        BIN,
        DEVICE,
        MOSQUITTO_NEEDED,
        HardwareUnavailable,
        with_simulated_station,
    )

    try:
        if shutil.which("mosquitto") is None:  # before the screen: the embedded broker would be amqtt,
            raise HardwareUnavailable(MOSQUITTO_NEEDED)  # which the station refuses
        cfg, card = with_simulated_station(cfg)
        hint = f"Simulated station {DEVICE}: bin {BIN} holds card {card}; its lamp is on the status bar."
        return _demo_screen(args, cfg, hardware=True, hint=hint)
    except HardwareUnavailable as exc:
        print(f"kanban-terminal demo: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _demo_screen(args: argparse.Namespace, cfg: TerminalConfig, *, hardware: bool, hint: str) -> int:
    from kanban_terminal.logging_setup import setup_logging

    with tempfile.TemporaryDirectory(prefix="kanban-demo-") as tmp:
        data = Path(args.data_dir) if args.data_dir else Path(tmp)
        setup_logging(data, stderr=False)
        stations: list[SimulatedStation] = []

        def environment(stack: ExitStack) -> MqttSettings | None:
            # On the boot thread, after the first paint (tui/boot.py): the broker, the peer and the
            # simulators start there, and stop after the runtime, as when they wrapped it.
            from kanban_terminal.runtime import start_demo_environment

            env = stack.enter_context(start_demo_environment(cfg, data, hardware=hardware))
            stations.extend([env.station] if env.station else [])
            return env.mqtt

        def view() -> tuple[tuple[str, str, str], ...]:
            return stations[0].status_items() if stations else ()

        kiosk = bool(getattr(args, "kiosk", False))
        return run_screen(cfg, data, environment, demo=True, device_view=view, demo_hint=hint, kiosk=kiosk)


def cmd_serve(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    from kanban_terminal.logging_setup import setup_logging
    from kanban_terminal.runtime import run_serve
    from kanban_terminal.runtime.prepare_apart import prepare_apart

    cfg = load(args)
    setup_logging(data_dir(args))
    prepare_apart(args.config, data_dir(args))  # a first start's migration stays out of this process
    return run_serve(cfg, data_dir(args), args.mqtt)


def cmd_upstream(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    from kanban_terminal.logging_setup import setup_logging
    from kanban_terminal.runtime import run_upstream

    cfg = load(args)
    setup_logging(data_dir(args))
    return run_upstream(cfg, data_dir(args), args.mqtt, instance=args.instance, partition=args.partition)


COMMANDS: dict[str, Callable[[argparse.Namespace, Load, DataDir], int]] = {
    "demo": cmd_demo,
    "run": cmd_run,
    "serve": cmd_serve,
    "upstream": cmd_upstream,
}

"""The headless roots: `serve` (the terminal's runtime with no screen) and `upstream` (the peer).

`run_serve` starts exactly the runtime the screen starts (`open_runtime`), then waits for SIGTERM /
SIGINT or its `stop` event. `python -m kanban_terminal.runtime serve|upstream` runs them without the
CLI's argument handling (process tests and benchmarks use it). Nothing here starts a job itself.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from kanban_terminal.config import MqttSettings, TerminalConfig, UpstreamSettings, load_config
from kanban_terminal.peer_arguments import add_instance_arguments
from kanban_terminal.peer_settings import parse_partition
from kanban_terminal.runtime.start_up import freeze_start_up_objects
from kanban_terminal.topics import check_level

if TYPE_CHECKING:
    from kanban_terminal.adapters.demo import DemoEnvironment
    from kanban_terminal.runtime.terminal_runtime import RuntimeOptions

log = logging.getLogger(__name__)


def resolve_mqtt(config: TerminalConfig, mqtt_url: str | None) -> MqttSettings | None:
    """The broker to use: `--mqtt URL`, else KANBAN_MQTT_URL, else the config's [mqtt] section."""
    url = mqtt_url or os.environ.get("KANBAN_MQTT_URL")
    if url:
        from kanban_terminal.adapters.mqtt_client import parse_mqtt_url

        return parse_mqtt_url(url, config.mqtt)
    return config.mqtt


def _stop_on_signals(stop: threading.Event | None) -> threading.Event:
    """The event SIGTERM/SIGINT set, installed BEFORE anything starts: a SIGTERM that came during
    start-up (systemd stopping a unit that is still starting, a test on a busy box) used to find
    Python's default handler and kill the process before it could stop its jobs cleanly."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    return stop


def _wait(stop: threading.Event) -> None:
    # SIGTERM's handler sets `stop`, which ends the wait at once: no need to wake twice a second
    # to look (issue 19 counts every idle wake-up of `serve`; the timeout only bounds a lost wake).
    while not stop.wait(60):
        pass


def run_serve(
    config: TerminalConfig,
    data_dir: Path,
    mqtt_url: str | None = None,
    *,
    stop: threading.Event | None = None,
    clock: Callable[[], datetime] | None = None,
    options: RuntimeOptions | None = None,
    monotonic: Callable[[], float] | None = None,
) -> int:
    """`kanban-terminal serve`: the terminal's runtime with no screen, until SIGTERM/SIGINT or
    `stop` is set. Returns the process exit code.

    `clock` (default: the UTC wall clock), `monotonic` (default: time.monotonic) and `options` are
    for embedding (tests move both clocks; the fault suite's launcher gives an `after_group_commit`
    hook); the CLI passes none of them.
    """
    # Imported here, after the caller has read the config: the TOML's tables (10 MB for 20,000
    # bins) are freed by then and the storage stack's import fills that memory instead of adding
    # beside it (issue 19: -6.7 MB ready on a 20,000-card line, -2.1 MB on a 5,000-card one).
    from kanban_terminal.runtime.terminal_runtime import open_runtime
    from kanban_terminal.services.terminal import utc_now

    stop = _stop_on_signals(stop)
    settings = resolve_mqtt(config, mqtt_url)
    if settings is None:
        log.warning("no broker configured: requests wait in the outbox (use --mqtt URL)")
    mono = monotonic or time.monotonic
    with open_runtime(config, data_dir, settings, clock=clock or utc_now, options=options, monotonic=mono):
        freeze_start_up_objects()
        log.info("serving terminal %s (data in %s)", config.terminal.id, data_dir)
        _wait(stop)
    return 0


def run_upstream(
    config: TerminalConfig,
    data_dir: Path,
    mqtt_url: str | None = None,
    *,
    stop: threading.Event | None = None,
    instance: str | None = None,
    partition: str | None = None,
) -> int:
    """`kanban-terminal upstream`: the supermarket peer for every line of the config's site.

    `instance` (else KANBAN_INSTANCE) makes the client id and the data file this instance's own;
    `partition` ("I/N") serves only that share of the loops (docs/TOPOLOGIES.md).
    """
    from kanban_terminal.adapters.upstream import UpstreamPeer

    stop = _stop_on_signals(stop)
    settings = resolve_mqtt(config, mqtt_url) or MqttSettings()
    instance = instance or os.environ.get("KANBAN_INSTANCE") or None
    upstream = peer_settings(config, instance, partition)
    db = data_dir / (f"upstream-{instance}.db" if instance else "upstream.db")
    with UpstreamPeer(settings, config.site.id, upstream, db, instance=instance):
        _wait(stop)
    return 0


def peer_settings(config: TerminalConfig, instance: str | None, partition: str | None) -> UpstreamSettings:
    """The config's `[upstream]` with this instance's partition, if one was given.

    Raises:
        ValueError: the instance is not a valid id or the partition is not I/N (message for a person).
    """
    if instance is not None:
        check_level(instance)
    if partition is None:
        return config.upstream
    index, count = parse_partition(partition)
    ownership = config.upstream.ownership.model_copy(
        update={"mode": "partition", "partition": index, "partitions": count}
    )
    return config.upstream.model_copy(update={"ownership": ownership})


@contextmanager
def start_demo_environment(
    config: TerminalConfig, data_dir: Path, *, hardware: bool = False
) -> Iterator[DemoEnvironment]:
    """Embedded broker + supermarket peer + simulated bin sensors (+ a simulated station behind the
    firmware bridge with `hardware`); yields where to connect."""
    from kanban_terminal.adapters.demo import demo_environment

    with demo_environment(config, data_dir, hardware=hardware) as env:
        yield env


def main(argv: list[str] | None = None, *, options: RuntimeOptions | None = None) -> int:
    """`python -m kanban_terminal.runtime serve|upstream|prepare`: the headless roots without the CLI
    (`prepare`: the child of runtime/prepare_apart.py)."""
    parser = argparse.ArgumentParser(prog="python -m kanban_terminal.runtime")
    parser.add_argument("verb", choices=["serve", "upstream", "prepare"])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--mqtt", default=None)
    add_instance_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config(args.config)
    if args.verb == "prepare":  # runtime/prepare_apart.py's child: open (migrate, register), close
        from kanban_terminal.services.terminal import Terminal

        Terminal.open(config, args.data_dir).close()
        return 0
    if args.verb == "upstream":
        return run_upstream(
            config, args.data_dir, args.mqtt, instance=args.instance, partition=args.partition
        )
    from kanban_terminal.runtime.prepare_apart import prepare_apart

    prepare_apart(args.config, args.data_dir)
    return run_serve(config, args.data_dir, args.mqtt, options=options)

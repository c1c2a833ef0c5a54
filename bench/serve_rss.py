"""`serve`'s memory when ready, by card count, beside the minimal pipeline's (issue 19).

    python bench/serve_rss.py                        # demo config, 40, 1,000, 5,000, 20,000 cards
    python bench/serve_rss.py --cards 20000 --runs 3
    git archive COMMIT | tar -x -C /tmp/before && python bench/serve_rss.py --before /tmp/before
    python bench/serve_rss.py --cards demo --env OO:PYTHONOPTIMIZE=2 --env arena2:MALLOC_ARENA_MAX=2

Each `serve` runs as a plant runs it, a process of its own on a database created beforehand in
another process (a restart finds its file at the schema head with its cards registered), connected
to a real mosquitto on 127.0.0.1. Once it is online (its availability message: subscriptions are
granted by then) the bench reads its VmRSS ("ready") and VmHWM (the start-up's peak) from
/proc/PID/status. The floors are measured in the same run: a bare interpreter, the imports
`serve` needs (`SERVE_MODULES`) and the minimal one-commit pipeline
(bench/pipeline_proc.py: paho + sqlite3) once subscribed. `--before DIR` starts an older checkout's
`serve` on the same configs, interleaved with this one's, so a change is read in the same minutes.
`--env NAME:VAR=VALUE[,VAR=VALUE]` adds this checkout run with those environment variables (e.g.
`PYTHONOPTIMIZE=2`, what `python -OO` does; `MALLOC_ARENA_MAX`), interleaved the same way.

RSS is not disturbed by a busy neighbour the way timings are, but it moves by ~1 MB between runs
(allocator arenas, which thread touched what first): the median of `--runs` is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import pipeline_proc  # noqa: E402
from kanban_terminal.topics import LineTopics  # noqa: E402
from tests.support.mosquitto import Mosquitto  # noqa: E402
from tests.support.mqtt_lines import line_config  # noqa: E402

_CREATE = pipeline_proc._CREATE  # noqa: SLF001 - the same "restart" set-up as the other benches
_RSS = (
    "import sys, importlib\n"
    "try:\n"  # as `python -m kanban_terminal.runtime` starts (an older checkout may not have it)
    "    if sys.argv[1:]:  # the bare interpreter stays bare\n"
    "        from kanban_terminal.deferred_imports import defer_unused_stdlib; defer_unused_stdlib()\n"
    "except ImportError:\n"
    "    pass\n"
    "[importlib.import_module(m) for m in sys.argv[1:]]; "
    "print(next(int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmRSS')))"
)


SERVE_MODULES = ("kanban_terminal.runtime.serve", "kanban_terminal.runtime.terminal_runtime")
"""What a ready `serve` has imported (runtime.serve alone loads the runtime only once it has read its
config, since issue 19's memory branch)."""


def status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def import_mb(root: Path, *modules: str, env: dict[str, str] | None = None) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _RSS, *modules], cwd=root, check=True, capture_output=True, env=env
    )
    return int(out.stdout) / 1024


@contextmanager
def serving(
    port: int, home: Path, cfg: Path, root: Path, verb: tuple[str, ...], env: dict[str, str] | None = None
) -> Iterator[int]:
    """`serve` on `cfg`, yielding its pid once it is online (its database made first)."""
    data = tomllib.loads(cfg.read_text())
    topics = LineTopics(data["site"]["id"], data["line"]["id"])
    online = threading.Event()
    watch = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"watch-{home.name}", protocol=mqtt.MQTTv5
    )

    def on_availability(c: object, u: object, msg: mqtt.MQTTMessage) -> None:
        if not msg.retain and json.loads(msg.payload).get("state") == "online":
            online.set()

    watch.on_message = on_availability
    watch.connect("127.0.0.1", port, 30)
    watch.subscribe(topics.terminal_availability(data["terminal"]["id"]), 1)
    watch.loop_start()
    subprocess.run([sys.executable, "-c", _CREATE, str(cfg), str(home / "data")], cwd=root, check=True)
    log = open(home / "serve.log", "wb")  # noqa: SIM115 - closed below, after the process
    proc = subprocess.Popen(
        [sys.executable, "-m", *verb, "--config", str(cfg), "--data-dir", str(home / "data"),
         "--mqtt", f"mqtt://127.0.0.1:{port}"],
        cwd=root, stdout=log, stderr=log, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not online.wait(0.05):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not come online: {(home / 'serve.log').read_text()[-2000:]}")
        yield proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        log.close()
        watch.disconnect()
        watch.loop_stop()


def minimal_mb(port: int, tmp: Path, i: int) -> float:
    with pipeline_proc.minimal(port, tmp / f"minimal-{i}.db", f"bench/rss{i}") as proc:
        return status_mb(proc.pid, "VmRSS")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", default="demo,40,1000,5000,20000", help="'demo' or card counts")
    parser.add_argument("--runs", type=int, default=3, help="starts per case; the median is printed")
    parser.add_argument("--before", type=Path, default=None, help="an older checkout, run interleaved")
    parser.add_argument(
        "--cli", action="store_true", help="start `python -m kanban_terminal serve` (the CLI)"
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME:VAR=VALUE[,VAR=VALUE]",
        help="also run this checkout with these environment variables, as case NAME",
    )  # fmt: skip
    args = parser.parse_args()
    verb = ("kanban_terminal", "serve") if args.cli else ("kanban_terminal.runtime", "serve")
    roots = {"now": ROOT} | ({"before": args.before.resolve()} if args.before else {})
    envs: dict[str, dict[str, str] | None] = dict.fromkeys(roots)
    for spec in args.env:
        name, _, assignments = spec.partition(":")
        roots[name] = ROOT
        envs[name] = os.environ | dict(a.split("=", 1) for a in assignments.split(","))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        mosq = Mosquitto(tmp / "broker").start()
        try:
            print(
                f"`python -m {' '.join(verb)}`, median of {args.runs} starts, MB"
                f" ({time.strftime('%H:%M UTC', time.gmtime())})"
            )
            for name, root in roots.items():
                env = envs[name]
                bare = statistics.median(import_mb(root, env=env) for _ in range(args.runs))
                imports = statistics.median(
                    import_mb(root, *SERVE_MODULES, env=env) for _ in range(args.runs)
                )
                print(f"  {name:>6}: bare python {bare:.1f}, serve's imports {imports:.1f}")
            mini = statistics.median(minimal_mb(mosq.port, tmp, i) for i in range(args.runs))
            print(f"  minimal pipeline (paho + sqlite3) ready: {mini:.1f}")
            n = 0
            for case in args.cards.split(","):
                if case == "demo":
                    text = (ROOT / "config" / "demo.toml").read_text()
                else:
                    text = line_config(loops=(int(case) + 99) // 100, cards=100, sensors=int(case), line="L1")
                figures: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in roots}
                for _ in range(args.runs):
                    for name, root in roots.items():  # interleaved: the same minutes for both
                        n += 1
                        home = tmp / f"{n:03d}-{name}-{case}"
                        home.mkdir()
                        cfg = home / "line.toml"
                        cfg.write_text(text)
                        with serving(mosq.port, home, cfg, root, verb, envs[name]) as pid:
                            figures[name][0].append(status_mb(pid, "VmRSS"))
                            figures[name][1].append(status_mb(pid, "VmHWM"))
                        shutil.rmtree(home / "data")
                for name, (ready, peak) in figures.items():
                    print(
                        f"  {name:>6} {case:>6} cards: ready {statistics.median(ready):6.1f}"
                        f" (x{statistics.median(ready) / mini:.2f} minimal), start-up peak"
                        f" {statistics.median(peak):6.1f}   [ready {', '.join(f'{x:.1f}' for x in ready)}]",
                        flush=True,
                    )
        finally:
            mosq.stop()


if __name__ == "__main__":
    main()

"""Shipped systemd units pass `systemd-analyze verify` and keep their hardening; the kiosk loop restarts."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parent.parent.parent / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
INSTALLED_BIN = "/opt/kanban-terminal/bin/"


def _settings(unit: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_both_units_are_shipped() -> None:
    assert [u.name for u in UNITS] == ["firmware-bridge.service", "kanban-terminal-serve.service"]


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_unit_hardening_and_paths(unit: Path) -> None:
    s = _settings(unit)
    for key, value in {
        "User": "kanban",
        "Restart": "on-failure",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "UMask": "0077",
        "StateDirectoryMode": "0700",
        "EnvironmentFile": "/etc/kanban-terminal/secrets.env",
    }.items():
        assert s.get(key) == [value], f"{unit.name}: {key}"
    state = s["StateDirectory"][0]
    assert s["ReadWritePaths"] == [f"/var/lib/{state}"]
    assert s["Environment"][1] == f"KANBAN_DATA_DIR=/var/lib/{state}"
    assert s["Environment"][0].startswith("KANBAN_CONFIG=/etc/kanban-terminal/")
    assert s["ExecStart"][0].startswith(INSTALLED_BIN)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify insists that ExecStart exists: point the units at stand-ins, change nothing else.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("kanban-terminal", "firmware-bridge"):
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    copies = []
    for unit in UNITS:
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text().replace(INSTALLED_BIN, f"{bin_dir}/"))
        copies.append(str(copy))
    broken = tmp_path / "broken.service"
    broken.write_text(UNITS[0].read_text().replace(INSTALLED_BIN, f"{bin_dir}/") + "\nFrobnicate=yes\n")

    done = subprocess.run(
        ["systemd-analyze", "verify", *copies], capture_output=True, text=True, cwd=tmp_path
    )
    control = subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True, text=True)

    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stderr
    assert "Frobnicate" in control.stderr, "verify must be able to see a mistake, or this test proves nothing"


EXAMPLE_CONFIGS = {
    "/etc/kanban-terminal/terminal.toml": DEPLOY.parent / "config" / "plant.example.toml",
    "/etc/kanban-terminal/bridge.toml": DEPLOY.parent / "config" / "bridge.example.toml",
}
VENV_BIN = Path(sys.executable).parent


def _exec_start(unit: Path) -> list[str]:
    """The unit's ExecStart as argv, with ${VAR} / $VAR from its Environment= lines (as systemd does)."""
    s = _settings(unit)
    env = dict(e.split("=", 1) for e in s.get("Environment", []))
    argv = shlex.split(s["ExecStart"][0])
    return [re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env[m.group(1) or m.group(2)], a) for a in argv]


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_each_units_exec_start_runs_with_the_shipped_example_config(unit: Path, tmp_path: Path) -> None:
    """The unit's own command line, pointed at the installed program's stand-in (this venv) and the
    shipped example config, with its verb swapped for `check-config` and, separately, with `--help`:
    a unit that starts a program with no verb or no config (it exited 2 on every start) fails here."""
    argv = _exec_start(unit)
    program = VENV_BIN / Path(argv[0]).name
    assert argv[0].startswith(INSTALLED_BIN) and program.exists(), argv
    verb, rest = argv[1], argv[2:]
    assert verb in ("serve", "run"), f"{unit.name}: ExecStart names no verb: {argv}"
    s = _settings(unit)
    env = os.environ | dict(e.split("=", 1) for e in s.get("Environment", []))
    config = EXAMPLE_CONFIGS[env["KANBAN_CONFIG"]]
    env |= {"KANBAN_CONFIG": str(config), "KANBAN_DATA_DIR": str(tmp_path)}
    if "PYTHONPYCACHEPREFIX" in env:  # the unit's cache directory, here a temporary one
        env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "pycache")
    rest = [str(EXAMPLE_CONFIGS.get(a, a)) for a in rest]
    # Options that only `run`/`serve` take are dropped for check-config; the config stays.
    if "--config" not in rest:
        rest = ["--config", str(config), *rest]
    checked = subprocess.run(
        [str(program), "check-config", *rest], capture_output=True, text=True, env=env, timeout=60
    )
    assert checked.returncode == 0, f"{unit.name}: {checked.stdout}{checked.stderr}"
    helped = subprocess.run(
        [str(program), verb, "--help"], capture_output=True, text=True, env=env, timeout=60
    )
    assert helped.returncode == 0 and "usage" in helped.stdout.lower(), helped.stderr
    # The control: the command the bridge unit shipped before (no verb, no config) fails the same checks.
    bare = subprocess.run([str(program)], capture_output=True, text=True, env=env, timeout=60)
    assert bare.returncode != 0


def test_serve_runs_optimized_with_its_bytecode_in_its_own_cache_directory() -> None:
    """PYTHONOPTIMIZE=2 saves `serve` ~4 MB of docstrings (issue 19), but only with its -OO bytecode
    cached: /opt is read-only under ProtectSystem=strict and compiling every module at each start
    cost more memory than it saved (68.5 against 65.5 MB). The cache must be a directory systemd
    makes writable for the unit."""
    s = _settings(DEPLOY / "systemd" / "kanban-terminal-serve.service")
    env = dict(e.split("=", 1) for e in s["Environment"])
    assert env["PYTHONOPTIMIZE"] == "2"
    assert Path(env["PYTHONPYCACHEPREFIX"]).is_relative_to(Path("/var/cache") / s["CacheDirectory"][0])


def test_kiosk_loop_restarts_the_screen_until_told_to_stop(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    runs = tmp_path / "runs"
    stub = tmp_path / "kanban-terminal"
    # A screen that exits at once with status 3; on the third start it asks the loop to stop.
    stub.write_text(
        "#!/bin/sh\n"
        f'echo "$1 $KANBAN_CONFIG $KANBAN_DATA_DIR" >> {runs}\n'
        f'[ "$(wc -l < {runs})" -ge 3 ] && touch "$KANBAN_DATA_DIR/kiosk.stop"\n'
        "exit 3\n"
    )
    stub.chmod(0o755)
    env = {
        "PATH": os.environ["PATH"],
        "KANBAN_BIN": str(stub),
        "KANBAN_DATA_DIR": str(data),
        "KANBAN_CONFIG": "/etc/kanban-terminal/terminal.toml",
        "KANBAN_KIOSK_MIN_DELAY": "0",
    }
    done = subprocess.run(
        ["sh", str(DEPLOY / "kiosk" / "kanban-kiosk")], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert runs.read_text().splitlines() == [f"run /etc/kanban-terminal/terminal.toml {data}"] * 3
    assert done.stdout.count("exited with status 3") == 3 and "kiosk stopped" in done.stdout


def test_autologin_override_is_for_tty1_and_user_kanban() -> None:
    text = (DEPLOY / "kiosk" / "autologin.conf").read_text()
    assert "ExecStart=\n" in text and "--autologin kanban" in text
    assert 'if [ "$(tty)" = "/dev/tty1" ]' in (DEPLOY / "kiosk" / "bash_profile").read_text()

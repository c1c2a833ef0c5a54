"""The CLI as a person or a script uses it: a real subprocess, real files, exit codes and words."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kanban_terminal.config import demo_config_path

DEMO = str(demo_config_path())


def cli(*args: str, data: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "KANBAN_CONFIG"}
    full_env.update({"KANBAN_DATA_DIR": str(data), **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "kanban_terminal", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
    )


def test_scan_exit_codes_follow_the_outcome(tmp_path: Path) -> None:
    # A debounce window no process start-up can outlast: on a loaded CI box one CLI run took 5 s,
    # and the demo's 3 s window let the repeat through as an (early) delivery.
    config = tmp_path / "long-debounce.toml"
    config.write_text(Path(DEMO).read_text().replace("debounce_seconds = 3", "debounce_seconds = 60"))
    ok = cli("scan", "--config", str(config), "B1001Z", data=tmp_path)
    assert ok.returncode == 0 and ok.stdout.startswith("ACCEPTED: Bin empty. Refill requested")
    repeat = cli("scan", "--config", str(config), "B1001Z", data=tmp_path)
    assert repeat.returncode == 3 and "repeat read is ignored" in repeat.stdout
    bad = cli("scan", "--config", DEMO, "B1001Y", data=tmp_path)
    assert bad.returncode == 1 and "Y and Z swapped" in bad.stdout
    assert "Traceback" not in ok.stderr + repeat.stderr + bad.stderr


def test_early_delivery_is_refused_headless_unless_confirmed(tmp_path: Path) -> None:
    config = tmp_path / "no-debounce.toml"
    config.write_text(Path(DEMO).read_text().replace("debounce_seconds = 3", "debounce_seconds = 0"))
    env = {"KANBAN_CONFIG": str(config)}
    assert cli("scan", "B1002X", data=tmp_path, env=env).returncode == 0
    early = cli("scan", "B1002X", data=tmp_path, env=env)
    assert early.returncode == 3
    assert "requested only" in early.stdout and "--confirm" in early.stdout
    confirmed = cli("scan", "--confirm", "B1002X", data=tmp_path, env=env)
    assert confirmed.returncode == 0 and "Delivered" in confirmed.stdout


def test_status_json_lists_loops_and_open_requests(tmp_path: Path) -> None:
    cli("scan", "--config", DEMO, "B1001Z", data=tmp_path)
    out = cli("status", "--json", "--config", DEMO, data=tmp_path)
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert status["terminal"] == "L1-T1" and status["queued"] == 1
    [request] = status["open_requests"]
    assert request["card"] == "B1001Z" and request["status"] == "queued" and not request["overdue"]
    bolt = next(loop for loop in status["loops"] if loop["loop"] == "ST10-BOLT")
    assert bolt["by_state"] == {"in_use": 2, "queued": 1}
    text = cli("status", "--config", DEMO, data=tmp_path)
    assert "Refill requested" in text.stdout and "B1001Z" in text.stdout


def test_check_config_lists_every_problem_with_path_and_line(tmp_path: Path) -> None:
    broken = Path(DEMO).read_text().replace("container_quantity = 500", "container_quantity = 0", 1)
    broken = broken.replace("debounce_seconds = 3", 'debounce_seconds = "soon"')
    path = tmp_path / "broken.toml"
    path.write_text(broken)
    out = cli("check-config", str(path), data=tmp_path / "d")
    assert out.returncode == 2
    line = broken.splitlines().index('debounce_seconds = "soon"') + 1
    assert f"terminal.debounce_seconds (line {line})" in out.stderr
    assert "loops[0].container_quantity (line" in out.stderr
    assert "Traceback" not in out.stderr
    good = cli("check-config", DEMO, data=tmp_path / "d")
    assert good.returncode == 0 and "39 cards" in good.stdout
    assert not (tmp_path / "d").exists(), "checking a config must not create anything"


def test_no_config_says_what_to_do(tmp_path: Path) -> None:
    out = cli("scan", "B1001Z", data=tmp_path)
    assert out.returncode == 2 and "--config" in out.stderr and "kanban-terminal demo" in out.stderr


def test_rejected_input_is_listed_for_maintenance_escaped(tmp_path: Path) -> None:
    cli("scan", "--config", DEMO, "B10\x1b[2J01Z", data=tmp_path)
    cli("scan", "--config", DEMO, "B1001Y", data=tmp_path)
    out = cli("rejected", "--config", DEMO, data=tmp_path)
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    assert "B1001Y" in lines[0] and "Y and Z swapped" in lines[0]
    assert "B10\\x1b[2J01Z" in lines[1] and "\x1b" not in out.stdout


@pytest.mark.parametrize(
    ("verb", "how", "url", "says"),
    [
        ("serve", "flag", "mqtt://10.20.30.40:1883", "plain mqtt:// to 10.20.30.40 refused"),
        ("upstream", "env", "mqtt://broker.plant-a.example", "use mqtts://broker.plant-a.example:8883"),
        ("serve", "env", "ftp://localhost", "must start with mqtt:// or mqtts://"),
        ("serve", "flag", "mqtt://[::1:1883", "Invalid IPv6 URL"),
        ("serve", "flag", "mqtts://user:pw@localhost", "do not put the password in the URL"),
    ],
)
def test_an_unusable_broker_url_is_refused_before_anything_starts(
    tmp_path: Path, verb: str, how: str, url: str, says: str
) -> None:
    data = tmp_path / "data"
    argv = [verb, "--config", DEMO, *(["--mqtt", url] if how == "flag" else [])]
    out = cli(*argv, data=data, env={"KANBAN_MQTT_URL": url} if how == "env" else {})
    source = "--mqtt" if how == "flag" else "KANBAN_MQTT_URL"
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith(f"kanban-terminal {verb}: {source}: ") and says in out.stderr, out.stderr
    assert len(out.stderr.splitlines()) == 1 and "Traceback" not in out.stderr
    assert not data.exists(), "a refused URL must not create the data dir"


LONG_NAME = "b" * 300
"""Longer than NAME_MAX (255 bytes on ext4, tmpfs, xfs): the OS refuses it with ENAMETOOLONG."""


def _one_clear_line(out: subprocess.CompletedProcess[str], verb: str) -> str:
    """The failure is one line on stderr, from the verb, and not the catch-all."""
    assert len(out.stderr.splitlines()) == 1, out.stderr
    assert out.stderr.startswith(f"kanban-terminal {verb}: "), out.stderr
    assert "unexpected error" not in out.stderr and "Traceback" not in out.stderr
    return out.stderr


def test_restore_of_a_file_name_longer_than_the_system_allows_says_so(tmp_path: Path) -> None:
    out = cli("restore", str(tmp_path / LONG_NAME), data=tmp_path / "data")
    assert out.returncode == 4, out.stderr
    assert "cannot open the backup file: File name too long" in _one_clear_line(out, "restore")
    assert not (tmp_path / "data").exists(), "a refused restore must not create the data dir"


def test_restore_into_a_data_dir_that_is_a_regular_file_is_a_usage_error(tmp_path: Path) -> None:
    assert cli("scan", "--config", DEMO, "B1001Z", data=tmp_path / "data").returncode == 0
    backup = tmp_path / "backup.db"
    assert cli("backup", str(backup), data=tmp_path / "data").returncode == 0
    not_a_dir = tmp_path / "notes.txt"
    not_a_dir.write_text("keep me")
    out = cli("restore", "--data-dir", str(not_a_dir), str(backup), data=tmp_path / "data")
    assert out.returncode == 2, out.stderr
    line = _one_clear_line(out, "restore")
    assert f"--data-dir / KANBAN_DATA_DIR: {not_a_dir} is a file, not a directory" in line
    assert not_a_dir.read_text() == "keep me"


@pytest.mark.parametrize(
    ("argv", "code", "says"),
    [
        (["restore", "{tmp}/missing.db"], 4, "missing.db: no such backup file"),
        (["restore", "{tmp}"], 4, "is a directory; give the backup file itself"),
        (["restore", ""], 4, ". is a directory"),
        (["restore", "{tmp}/plain-file/x.db"], 4, "cannot open the backup file: Not a directory"),
        (
            ["restore", "--data-dir", "{tmp}/plain-file/sub", "{tmp}/missing.db"],
            2,
            "plain-file is a file, so",
        ),
        (["backup", "{tmp}"], 4, "is a directory; give the backup's file name"),
        (["backup", ""], 4, ". is a directory"),
        (["backup", "{tmp}/" + LONG_NAME], 4, "cannot write the backup"),
        (["backup", "{tmp}/plain-file/x.db"], 4, "plain-file is a file, so"),
        (["backup", "/proc/kanban-backup.db"], 4, "cannot write the backup /proc/kanban-backup.db"),
        (
            ["backup", "--data-dir", "{tmp}/plain-file", "{tmp}/b.db"],
            2,
            "plain-file is a file, not a directory",
        ),
        (["status", "--config", DEMO, "--data-dir", "{tmp}/plain-file"], 2, "is a file, not a directory"),
    ],
)
def test_odd_backup_and_restore_arguments_get_a_clear_line(
    tmp_path: Path, argv: list[str], code: int, says: str
) -> None:
    (tmp_path / "plain-file").write_text("")
    data = tmp_path / "data"
    if argv[0] == "backup":  # something to back up, so only the destination can be wrong
        assert cli("scan", "--config", DEMO, "B1001Z", data=data).returncode == 0
    out = cli(*(a.replace("{tmp}", str(tmp_path)) for a in argv), data=data)
    assert out.returncode == code, out.stderr
    assert says in _one_clear_line(out, argv[0]), out.stderr
    assert not list(tmp_path.glob(".*partial*")), "a failed backup must not leave its temporary file"


def test_a_backup_name_that_fits_is_not_refused_for_its_temporary_name(tmp_path: Path) -> None:
    """250 bytes fit NAME_MAX; only the temporary '.<name>.partial-<pid>' would not."""
    assert cli("scan", "--config", DEMO, "B1001Z", data=tmp_path / "data").returncode == 0
    dest = tmp_path / ("c" * 250)
    out = cli("backup", str(dest), data=tmp_path / "data")
    assert out.returncode == 0, out.stderr
    assert dest.is_file()


@pytest.mark.parametrize("verb", ["verify-log", "status", "rejected", "export", "metrics", "sizing"])
def test_a_read_only_verb_refuses_a_data_dir_without_a_database(tmp_path: Path, verb: str) -> None:
    """Before: `verify-log --config ...` with no --data-dir made an empty database in the default dir
    and said "hash chain intact", exit 0. A read-only verb must report on a terminal, not make one."""
    empty = tmp_path / "no-terminal-here"
    empty.mkdir()
    argv = [verb, "--config", DEMO, "--data-dir", str(empty)]
    if verb == "export":
        argv += ["--out", str(tmp_path / "log.csv")]
    out = cli(*argv, data=empty)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "no terminal database in" in _one_clear_line(out, verb)
    assert list(empty.iterdir()) == [], "nothing was created in the data dir"


def _under_umask_000(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    """The CLI as a kiosk session with umask 000 runs it."""
    env = {k: v for k, v in os.environ.items() if k != "KANBAN_CONFIG"} | {"KANBAN_DATA_DIR": str(data)}
    launcher = (
        "import os, sys, runpy; os.umask(0); sys.argv = ['kanban-terminal', *sys.argv[1:]];"
        " runpy.run_module('kanban_terminal', run_name='__main__')"
    )
    return subprocess.run(
        [sys.executable, "-c", launcher, *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_export_and_backup_keep_their_files_private_under_umask_000(tmp_path: Path) -> None:
    """Before: `export --out` wrote 0666 and `backup` made its missing folders 0777 under umask 000;
    both hold every actor's badge (a backup the PIN hashes too)."""
    data = tmp_path / "data"
    assert cli("scan", "--config", DEMO, "B1001Z", data=data).returncode == 0
    out = _under_umask_000("export", "--config", DEMO, "--out", str(tmp_path / "log.csv"), data=data)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "log.csv").stat().st_mode & 0o777 == 0o600
    dest = tmp_path / "usb" / "backups" / "terminal.db"
    out = _under_umask_000("backup", "--config", DEMO, str(dest), data=data)
    assert out.returncode == 0, out.stderr
    for folder in (tmp_path / "usb", tmp_path / "usb" / "backups"):
        assert folder.stat().st_mode & 0o777 == 0o700, folder
    assert dest.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("verb", [["scan", "B1001Z"], ["status"]])
@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("mqtt://user:pw@10.1.2.3", "do not put the password in the URL"),
        ("nonsense://10.1.2.3", "must start with mqtt:// or mqtts://"),
        ("mqtt://10.1.2.3:1883", "plain"),
    ],
)
def test_a_bad_broker_url_exits_2_before_anything_starts_on_every_verb(
    tmp_path: Path, verb: list[str], url: str, words: str
) -> None:
    """Before (issue 17): `scan` and `status` took `--mqtt mqtt://user:pw@10.1.2.3` and exited 0."""
    data = tmp_path / "data"
    done = cli(*verb, "--config", DEMO, "--mqtt", url, data=data)
    assert done.returncode == 2, done.stdout + done.stderr
    assert words in done.stderr.lower() or words in done.stderr, done.stderr
    assert "pw" not in done.stderr.replace("password", "")
    assert not data.exists()  # refused before a data dir was made


def test_a_code_starting_with_a_dash_reaches_the_scan_and_is_refused_as_a_misread(tmp_path: Path) -> None:
    """Before (issue 17): argparse read `-B1101T` as an option and exited 2; it never reached the scan."""
    for args in (["-B1101T"], ["--", "-B1101T"]):
        done = cli("scan", "--config", DEMO, *args, data=tmp_path)
        assert done.returncode == 1 and "REJECTED: Misread: -B1101T" in done.stdout, done.stdout + done.stderr
    kept = cli("rejected", "--config", DEMO, data=tmp_path)
    assert kept.stdout.count("Misread: -B1101T") == 2, kept.stdout
    extra = cli("scan", "--config", DEMO, "B1001Z", "-X", data=tmp_path)
    assert extra.returncode == 2 and "unrecognized arguments: -X" in extra.stderr


def test_scanning_a_lost_card_exits_0_with_the_screens_warning(tmp_path: Path) -> None:
    """Before (issue 17): the card was found and back in use, the screen showed amber, the CLI exited 1."""
    from kanban_terminal.config import load_config
    from kanban_terminal.services.lost_cards import flag_lost
    from kanban_terminal.services.terminal import Terminal

    terminal = Terminal.open(load_config(Path(DEMO)), tmp_path)
    assert flag_lost(terminal, ["B1001Z"], source="cli") == ["B1001Z"]
    terminal.close()
    found = cli("scan", "--config", DEMO, "B1001Z", data=tmp_path)
    assert found.returncode == 0 and found.stdout.startswith("WARNING: Card B1001Z was listed as missing")

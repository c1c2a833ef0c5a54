"""`doctor` names each broken thing correctly, and only that thing."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kanban_terminal import cli
from kanban_terminal.cli.doctor import DoctorOptions, Level, run_checks
from kanban_terminal.config import demo_config_path
from tests.support.mosquitto import Mosquitto, free_port, running_mosquitto


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    assert cli.main(["scan", "B1001Z", "--config", str(demo_config_path()), "--data-dir", str(d)]) == 0
    return d


@pytest.fixture
def serial_port() -> Iterator[Path]:
    """A pseudo-terminal stands in for a USB serial scanner."""
    master, slave = os.openpty()
    yield Path(os.ttyname(slave))
    os.close(master)
    os.close(slave)


def _doctor(
    capsys: pytest.CaptureFixture[str], data_dir: Path, *extra: str, config: Path | None = None
) -> tuple[int, dict[str, list[str]]]:
    capsys.readouterr()
    rc = cli.main(
        ["doctor", "--config", str(config or demo_config_path()), "--data-dir", str(data_dir), *extra]
    )
    by_level: dict[str, list[str]] = {"OK": [], "WARN": [], "FAIL": []}
    lines = capsys.readouterr().out.splitlines()
    for line in lines:
        level, name, _ = line.split(maxsplit=2)
        by_level[level].append(name)
    return rc, {**by_level, "lines": lines}


def _line(result: dict[str, list[str]], name: str) -> str:
    return next(line for line in result["lines"] if line.split()[1] == name)


@pytest.mark.broker
def test_a_healthy_terminal_passes(
    capsys: pytest.CaptureFixture[str], data_dir: Path, serial_port: Path, mosquitto: Mosquitto
) -> None:
    rc, result = _doctor(capsys, data_dir, "--mqtt", mosquitto.url, "--serial", str(serial_port))
    assert rc == cli.EXIT_OK, result["lines"]
    assert result["FAIL"] == [] and result["WARN"] == []
    assert set(result["OK"]) == {"config", "data-dir", "database", "broker", "serial", "clock", "disk"}
    assert "card log verified" in _line(result, "database")


def test_broken_config(capsys: pytest.CaptureFixture[str], data_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        demo_config_path().read_text().replace("debounce_seconds = 3", 'debounce_seconds = "soon"')
    )
    rc, result = _doctor(capsys, data_dir, "--mqtt", f"mqtt://127.0.0.1:{free_port()}", config=bad)
    assert rc == cli.EXIT_FAILED
    assert "config" in result["FAIL"]
    assert "terminal.debounce_seconds" in _line(result, "config") and "check-config" in _line(
        result, "config"
    )


def test_dead_broker_is_refused(capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    rc, result = _doctor(capsys, data_dir, "--mqtt", f"mqtt://127.0.0.1:{free_port()}")
    assert rc == cli.EXIT_FAILED and result["FAIL"] == ["broker"]
    assert "refused: nothing listens" in _line(result, "broker")


def test_plain_mqtt_to_another_machine_fails_like_the_terminal_would(
    capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    rc, result = _doctor(capsys, data_dir, "--mqtt", "mqtt://10.20.30.40:1883", "--broker-timeout", "0.3")
    assert rc == cli.EXIT_FAILED and result["FAIL"] == ["broker"]
    assert "only to a broker on this machine" in _line(result, "broker")
    assert "mqtts://10.20.30.40:8883" in _line(result, "broker")


def test_silent_broker_times_out(capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    with socket.socket() as silent:  # accepts TCP (kernel backlog) but never speaks MQTT
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        rc, result = _doctor(
            capsys, data_dir, "--mqtt", f"mqtt://127.0.0.1:{port}", "--broker-timeout", "0.3"
        )
    assert rc == cli.EXIT_FAILED and result["FAIL"] == ["broker"]
    assert _line(result, "broker").split(maxsplit=2)[2].startswith("timeout:")


@pytest.mark.broker
def test_tls_to_a_plain_listener_is_a_tls_error(
    capsys: pytest.CaptureFixture[str], data_dir: Path, mosquitto: Mosquitto
) -> None:
    rc, result = _doctor(capsys, data_dir, "--mqtt", mosquitto.url.replace("mqtt://", "mqtts://"))
    assert rc == cli.EXIT_FAILED and result["FAIL"] == ["broker"]
    assert "TLS error" in _line(result, "broker")


@pytest.fixture
def locked_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """mosquitto with a password file and no anonymous access, as a plant runs it."""
    # mosquitto reads the password file after dropping to its own user, and pytest's tmp_path is
    # private to root: the file lives in a world-traversable temporary dir instead.
    with tempfile.TemporaryDirectory(prefix="kanban-mqtt-pw-") as shared:
        os.chmod(shared, 0o755)
        passwords = Path(shared) / "passwd"
        passwords.write_text("L1-T1:right-one\n")
        subprocess.run(["mosquitto_passwd", "-U", str(passwords)], check=True)
        os.chmod(passwords, 0o644)
        extra = f"allow_anonymous false\npassword_file {passwords}"
        with running_mosquitto(tmp_path / "locked", extra=extra) as broker:
            yield broker


@pytest.mark.broker
@pytest.mark.parametrize(("password", "ok"), [("wrong", False), ("right-one", True)])
def test_credentials_are_checked(
    capsys: pytest.CaptureFixture[str],
    data_dir: Path,
    locked_broker: Mosquitto,
    monkeypatch: pytest.MonkeyPatch,
    password: str,
    ok: bool,
) -> None:
    monkeypatch.setenv("KANBAN_MQTT_URL", locked_broker.url.replace("mqtt://", "mqtt://L1-T1@"))
    monkeypatch.setenv("KANBAN_MQTT_PASSWORD", password)
    rc, result = _doctor(capsys, data_dir)
    if ok:
        assert rc == cli.EXIT_OK and "broker" in result["OK"]
    else:
        assert rc == cli.EXIT_FAILED and result["FAIL"] == ["broker"]
        assert "not authorized" in _line(result, "broker") and "KANBAN_MQTT_PASSWORD" in _line(
            result, "broker"
        )
    assert password not in "\n".join(result["lines"])


def test_missing_serial_port(
    capsys: pytest.CaptureFixture[str], data_dir: Path, serial_port: Path, tmp_path: Path
) -> None:
    gone = tmp_path / "ttyUSB7"
    rc, result = _doctor(capsys, data_dir, "--serial", str(serial_port), "--serial", str(gone))
    assert rc == cli.EXIT_FAILED and result["FAIL"] == ["serial"]
    assert result["OK"].count("serial") == 1
    assert f"{gone} is missing" in "\n".join(result["lines"])


def test_full_disk_by_threshold(capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    rc, result = _doctor(capsys, data_dir, "--min-free-mb", str(10**9))  # a petabyte: never free
    assert rc == cli.EXIT_FAILED and result["FAIL"] == ["disk"]
    assert "free under" in _line(result, "disk")


@contextlib.contextmanager
def _tiny_tmpfs(where: Path) -> Iterator[Path]:
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def test_full_disk_on_a_real_full_filesystem(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with _tiny_tmpfs(tmp_path / "tiny") as tiny:
        with contextlib.suppress(OSError), open(tiny / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 65536)
        rc, result = _doctor(capsys, tiny / "data", "--min-free-mb", "1")
    assert rc == cli.EXIT_FAILED and result["FAIL"] == ["disk"]
    assert "only 0 MB free" in _line(result, "disk")


def test_clock_behind_the_log_and_implausible_year(data_dir: Path) -> None:
    base = DoctorOptions(config=demo_config_path(), data_dir=data_dir)
    behind = run_checks(DoctorOptions(**{**base.__dict__, "now": lambda: datetime(2025, 6, 1, tzinfo=UTC)}))
    assert [c.name for c in behind if c.level is Level.FAIL] == ["clock"]
    assert "behind the newest log row" in next(c.message for c in behind if c.name == "clock")
    flat_battery = run_checks(
        DoctorOptions(**{**base.__dict__, "now": lambda: datetime(2000, 1, 1, tzinfo=UTC)})
    )
    assert "the clock says 2000-01-01" in next(c.message for c in flat_battery if c.name == "clock")


def test_edited_log_fails_the_database_check(capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    conn = sqlite3.connect(data_dir / "terminal.db")
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("UPDATE card_log SET actor = 'someone-else' WHERE id = (SELECT max(id) FROM card_log)")
    conn.commit()
    conn.close()
    rc, result = _doctor(capsys, data_dir)
    assert rc == cli.EXIT_FAILED and result["FAIL"] == ["database"]
    assert "does not follow from the rows before it" in _line(result, "database")

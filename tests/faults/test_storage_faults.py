"""R2-R4: durability before "accepted", injected I/O errors, and a full disk.

* R2: `strace` proves a `fdatasync` of the WAL precedes every "ACCEPTED" the scanner writes, for the
  scan use case in a loop and for the real `kanban-terminal scan` verb.
* R3: `fiu-run` injects 1 % read/write and 2 % fsync failures into a scanning process (switched on
  with `fiu-ctrl` after start-up, so Python's own imports are spared): no false "accepted", the
  process lives, every failure has a reason, the database is intact.
* R4: the database on a 2 MiB tmpfs: the first scan that cannot be saved is refused in red with
  "disk full", nothing is corrupted, and scanning comes back by itself when space returns.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kanban_terminal.domain.scans import Intent, OutcomeKind
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from tests.faults import support
from tests.faults.support import integrity, query
from tests.support.mqtt_lines import make_config

SCANS_FIU = 500


def _cards(n: int, first: int = 1) -> list[str]:
    return [f"C{i:05d}" for i in range(first, first + n)]


def _prepared(tmp_path: Path, cards: int = 600) -> tuple[Path, Path]:
    config, config_path = make_config(tmp_path, loops=4, cards=cards // 4, sensors=0)
    data = tmp_path / "data"
    Terminal.open(config, data).close()
    return config_path, data


# -- R2: fsync before "accepted" ---------------------------------------------------------------------

_SYNC = re.compile(r"^\d+\s+f(?:data)?sync\((\d+)<([^>]*)>\)\s+=\s+0")
_OUT = re.compile(r'^\d+\s+write\(1<[^>]*>, "(ACCEPTED|REFUSED)')


def _syncs_before_each_accept(trace: Path) -> list[int]:
    """For each ACCEPTED written to stdout: WAL syncs since the previous ACCEPTED."""
    counts: list[int] = []
    syncs = 0
    for line in trace.read_text(errors="replace").splitlines():
        if (m := _SYNC.match(line)) and m.group(2).endswith("terminal.db-wal"):
            syncs += 1
        elif (m := _OUT.match(line)) and m.group(1) == "ACCEPTED":
            counts.append(syncs)
            syncs = 0
    return counts


def test_every_accepted_scan_is_fsynced_before_it_is_reported(tmp_path: Path) -> None:
    strace = support.need("strace", "strace")
    config_path, data = _prepared(tmp_path, cards=104)
    trace = tmp_path / "trace.txt"
    proc = support.driver(
        "--config", str(config_path), "--data-dir", str(data), *_cards(100, first=2),
        prefix=[strace, "-f", "-y", "-s", "64", "-e", "trace=fsync,fdatasync,write", "-o", str(trace)],
    )  # fmt: skip
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.count("ACCEPTED") == 100
    counts = _syncs_before_each_accept(trace)
    assert len(counts) == 100
    assert min(counts) >= 1, f"an ACCEPTED was written with no WAL fsync before it: {counts}"
    # The real CLI verb, one process per scan as an operator's script would run it.
    cli_trace = tmp_path / "cli.txt"
    run = subprocess.run(
        [strace, "-f", "-y", "-s", "64", "-e", "trace=fsync,fdatasync,write", "-o", str(cli_trace),
         sys.executable, "-m", "kanban_terminal", "scan", "C00001", "--config", str(config_path),
         "--data-dir", str(data)],
        env=support.env(), capture_output=True, text=True, timeout=60, cwd=support.ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    cli_counts = _syncs_before_each_accept(cli_trace)
    assert len(cli_counts) == 1 and cli_counts[0] >= 1, cli_counts


# -- R3: injected I/O errors -------------------------------------------------------------------------


def _fiu_ctrl(pid: int, ctrl: Path, command: str) -> None:
    subprocess.run(["fiu-ctrl", "-f", str(ctrl), "-c", command, str(pid)], check=True, timeout=10)


def run_fiu_scans(tmp_path: Path, scans: int) -> dict[str, int]:
    """Scans under injected faults; returns the figures. Shared by the CI test and the soak."""
    fiu_run = support.need("fiu-run", "fiu-utils")
    support.need("fiu-ctrl", "fiu-utils")
    config_path, data = _prepared(tmp_path, cards=scans)
    ctrl = tmp_path / "fiu"
    proc = support.driver(
        "--config", str(config_path), "--data-dir", str(data), "--wait-go", *_cards(scans),
        stdin=subprocess.PIPE, prefix=[fiu_run, "-x", "-f", str(ctrl)], stderr=tmp_path / "driver.log",
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    assert proc.stdout.readline().strip() == "READY"
    _fiu_ctrl(proc.pid, ctrl, "enable_random name=posix/io/rw/*,probability=0.01")
    _fiu_ctrl(proc.pid, ctrl, "enable_random name=posix/io/sync/*,probability=0.02")
    proc.stdin.write("go\n")
    proc.stdin.flush()
    done = proc.stdout.readline().strip()
    if done != "DONE":
        support.stop(proc)
        log = (tmp_path / "driver.log").read_text(errors="replace")
        pytest.fail(f"the scanning process died under I/O faults (rc {proc.returncode}): {log[-1500:]}")
    _fiu_ctrl(proc.pid, ctrl, "disable name=posix/io/rw/*")
    _fiu_ctrl(proc.pid, ctrl, "disable name=posix/io/sync/*")
    out, _ = proc.communicate("report\n", timeout=120)
    err = (tmp_path / "driver.log").read_text(errors="replace")
    assert proc.returncode == 0, f"the scanning process died under I/O faults: {err[-2000:]}"
    assert "Traceback" not in err or "Logging error" in err, err[-2000:]
    lines = out.splitlines()
    accepted = {line.split()[1]: line.split()[2] for line in lines if line.startswith("ACCEPTED")}
    refused = [line for line in lines if line.startswith("REFUSED")]
    assert len(accepted) + len(refused) == scans
    db = data / "terminal.db"
    assert integrity(db) == "ok"
    rows = dict(query(db, "SELECT card_id, id FROM replenishment_request"))
    false_accepts = [c for c, rid in accepted.items() if rows.get(c) != rid]
    assert not false_accepts, f"ACCEPTED but not stored: {false_accepts}"
    for line in refused:
        _, _card, kind, message = line.split(" ", 3)
        assert kind == OutcomeKind.FAILED.value, line
        assert re.search(r"\((disk error|disk full|database busy|storage error)\)", message), line
    return {
        "scans": scans,
        "accepted": len(accepted),
        "refused": len(refused),
        "rows": len(rows),
        "stored_but_refused": len(set(rows) - set(accepted)),
    }


def test_injected_io_errors_never_give_a_false_accepted(tmp_path: Path) -> None:
    figures = run_fiu_scans(tmp_path, SCANS_FIU)
    assert figures["refused"] > 0, "no fault was injected: the test proved nothing"
    assert figures["rows"] == figures["accepted"], figures


# -- R4: disk full -----------------------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "2m") -> Iterator[Path]:
    path.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
        ).returncode
    ):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    with contextlib.suppress(OSError), open(filler, "wb") as f:
        for _ in range(2048):  # at most 2 MiB: the whole tmpfs
            try:
                f.write(b"\0" * 1024)
                f.flush()
                os.fsync(f.fileno())
            except OSError:
                break
    return filler


def test_disk_full_refuses_in_red_and_recovers_without_restart(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small") as small:
        config, _ = make_config(tmp_path, loops=4, cards=150, sensors=0)
        terminal = Terminal.open(config, small / "data")
        try:
            filler = _fill(small)
            cards = iter(_cards(600))
            accepted = 0
            for card in cards:  # the WAL may still have room: scan until the first refusal
                start = time.monotonic()
                outcome = record_scan(terminal, card, source="test", intent=Intent.EMPTY)
                took = time.monotonic() - start
                if not outcome.accepted:
                    break
                accepted += 1
            else:
                pytest.fail("600 scans fitted in a full tmpfs?")
            assert outcome.kind is OutcomeKind.FAILED, outcome
            assert "NOT recorded" in outcome.message and "disk full" in outcome.message, outcome.message
            # Generous bound the issue asks for ("within a second"); measured figures go to the soak.
            assert took < 1.0, took
            db = terminal.db.path
            assert integrity(db) == "ok"
            filler.unlink()
            deadline = time.monotonic() + 5  # the bound: recovers within 5 s, no restart
            recovered = None
            for card in cards:
                if record_scan(terminal, card, source="test", intent=Intent.EMPTY).accepted:
                    recovered = time.monotonic()
                    accepted += 1
                    break
                if time.monotonic() > deadline:
                    break
            assert recovered is not None, "scanning did not recover within 5 s of space returning"
            assert integrity(db) == "ok"
            assert query(db, "SELECT count(*) FROM replenishment_request") == [(accepted,)]
        finally:
            terminal.close()


@pytest.mark.parametrize(("step", "failing_call"), [("take_loop_seq", 2), ("flush", 1)])
def test_a_storage_error_inside_a_signal_group_acknowledges_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str, failing_call: int
) -> None:
    """A storage error while a scan of the group is decided (record_scan turns it into a FAILED
    refusal) or while the group's rows are written must roll the whole group back (no dedupe key
    without its effect), so the broker redelivers it."""
    import sqlite3
    from datetime import UTC, datetime

    from sqlalchemy.exc import SQLAlchemyError

    from kanban_terminal.services.signals import BinSignal, SignalApplier
    from kanban_terminal.storage.scan_repo import ScanStore

    config, _ = make_config(tmp_path, loops=1, cards=5, sensors=2)
    terminal = Terminal.open(config, tmp_path / "data")
    try:
        applier = SignalApplier(terminal)
        now = datetime.now(UTC)
        signals = [BinSignal(f"s{i}", f"BS0000{i}", "b1", 0, "empty", now) for i in (1, 2)]
        real = getattr(ScanStore, step)
        calls = {"n": 0}

        def full_once(*args: object, **kwargs: object) -> object:
            calls["n"] += 1
            if calls["n"] == failing_call:
                raise sqlite3.OperationalError("database or disk is full")
            return real(*args, **kwargs)

        monkeypatch.setattr(ScanStore, step, full_once)
        log_rows = query(terminal.db.path, "SELECT count(*) FROM card_log")  # the cards' registration
        with pytest.raises((SQLAlchemyError, sqlite3.Error)):
            applier.apply(signals)
        assert calls["n"] == failing_call
        db = terminal.db.path
        assert query(db, "SELECT count(*) FROM inbound_signal") == [(0,)]
        assert query(db, "SELECT count(*) FROM replenishment_request") == [(0,)]
        assert query(db, "SELECT count(*) FROM card_log") == log_rows
        results = applier.apply(signals)  # the redelivery after the space came back
        assert [r.outcome.kind.value for r in results if r.outcome] == ["request_raised"] * 2
    finally:
        terminal.close()

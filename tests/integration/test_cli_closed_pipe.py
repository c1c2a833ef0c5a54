"""`kanban-terminal VERB | head -1`: when the reader goes away, the printing verbs exit with the
shell's status for a writer killed by SIGPIPE (141) and print nothing: no traceback, no "Exception
ignored", and never 0 (issue 15, known gap after stop 21: every verb exited 0, even `handover`, whose
status is 3 while the shift is not taken over, and `verify-log`, 1 when the chain is broken).

The pipe's read end is closed before the process starts, so every write fails whatever the timing:
that is `head -1` having read its line and left, without the race of a real `head`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kanban_terminal.cli.closed_pipe import EXIT_PIPE_CLOSED
from kanban_terminal.config import demo_config_path

DEMO = str(demo_config_path())

VERBS = [
    "verify-log",
    "status",
    "status --json",
    "rejected",
    "export --out -",
    "metrics",
    "runway",
    "handover",
    "lost-cards",
    "check-config",
]


def run(args: list[str], data: Path, *, closed: bool) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("KANBAN_CONFIG", "KANBAN_DEBUG")}
    command = [sys.executable, "-m", "kanban_terminal", *args, "--config", DEMO, "--data-dir", str(data)]
    if not closed:
        return subprocess.run(command, capture_output=True, env=env, timeout=60)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(command, stdout=write_end, stderr=subprocess.PIPE, env=env, timeout=60)
    finally:
        os.close(write_end)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("pipe")
    for code in ("B1001Z", "B1201X"):  # a recorded scan and a misread: rows for every verb to print
        assert run(["scan", code], data, closed=False).returncode in (0, 1)
    return data


@pytest.mark.parametrize("verb", VERBS)
def test_a_verb_whose_reader_went_away_exits_141_quietly(data: Path, verb: str) -> None:
    done = run(verb.split(), data, closed=True)
    assert (done.returncode, done.stderr.decode()) == (EXIT_PIPE_CLOSED, "")


def test_with_its_reader_there_a_verb_keeps_its_own_status(data: Path) -> None:
    """The control: the same verbs to a reader that reads print and exit as before."""
    handover = run(["handover"], data, closed=False)
    assert handover.returncode == 3 and handover.stdout
    verified = run(["verify-log"], data, closed=False)
    assert verified.returncode == 0 and b"hash chain intact" in verified.stdout


def test_head_in_a_shell_gets_one_line_and_no_noise(data: Path) -> None:
    """As a person types it: `... | head -1` shows one line and nothing on stderr."""
    command = (
        f"{sys.executable} -m kanban_terminal export --out - --config {DEMO} --data-dir {data} | head -1"
    )
    done = subprocess.run(["bash", "-c", command], capture_output=True, timeout=60)
    assert done.stdout.decode().count("\n") == 1 and done.stderr == b""

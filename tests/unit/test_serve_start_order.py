"""`serve` reads its config before it imports the storage stack (issue 19).

The TOML parse of a big line frees ~10 MB of tables once validated; imported afterwards, SQLAlchemy
and the runtime fill that memory instead of adding beside it (RSS ready -6.7 MB with 20,000 cards).
That holds only while neither the runtime package, nor `runtime.serve`, nor the CLI's parser
imports them, which is what these check; and every name the package exports still resolves.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import kanban_terminal.runtime as runtime

STORAGE_STACK = ("sqlalchemy", "sqlmodel", "alembic", "paho", "textual")


@pytest.mark.parametrize(
    "code",
    [
        "import kanban_terminal.runtime.serve",
        "from kanban_terminal.runtime import run_serve",
        "from kanban_terminal.cli import build_parser; build_parser()",
    ],
)
def test_the_serve_entry_points_import_no_storage_stack_before_the_config_is_read(code: str) -> None:
    loaded = f"sorted({{m.split('.')[0] for m in sys.modules}} & {set(STORAGE_STACK)!r})"
    probe = f"import sys\n{code}\nprint(','.join({loaded}))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{code!r} loads {out.stdout.strip()}"


def test_every_exported_name_resolves() -> None:
    for name in runtime.__all__:
        assert getattr(runtime, name) is not None, name
    with pytest.raises(AttributeError):
        runtime.no_such_name  # noqa: B018

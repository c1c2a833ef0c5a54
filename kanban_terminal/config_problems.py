"""How a configuration problem is reported: its key path and, where it can be found, its line.

Shared by every TOML file the terminal reads, so each problem reads the same way: `loops[2].part
(line 41): unknown part 'P-9'`. It knows nothing of what the file holds; it must not validate.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration file."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return f"{self.path or '<file>'}{where}: {self.message}"


class ConfigError(Exception):
    """A configuration that cannot be used; `problems` lists every reason."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  {p}" for p in problems))


def path_text(loc: tuple[str | int, ...]) -> str:
    """`loops[2].part` for the location ("loops", 2, "part")."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_SAME_WORDS = {
    # pydantic words these two differently for a dataclass (config_bins.BinSensor) than for a model.
    "unexpected_keyword_argument": "Extra inputs are not permitted",
    "dataclass_type": "Input should be a valid dictionary or instance of {class_name}",
}


def message_of(error: Mapping[str, Any]) -> str:
    """The message of one pydantic error, worded the same for every section of the file."""
    words = _SAME_WORDS.get(error["type"])
    if words is None:
        return str(error["msg"])
    return words.format(class_name=(error.get("ctx") or {}).get("class_name", "it"))


def key_lines(text: str) -> dict[tuple[str | int, ...], int]:
    """Map key paths to the line they are written on (a best effort; TOML parsers keep no positions)."""
    found: dict[tuple[str | int, ...], int] = {}
    counters: dict[str, int] = defaultdict(int)
    table: tuple[str | int, ...] = ()
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("[["):
            name = line[2:].split("]]", 1)[0].strip()
            table = (*name.split("."), counters[name])
            counters[name] += 1
            found[table] = lineno
        elif line.startswith("["):
            name = line[1:].split("]", 1)[0].strip()
            table = tuple(name.split("."))
            found[table] = lineno
        elif match := re.match(r"^([A-Za-z0-9_-]+)\s*=", line):
            found.setdefault((*table, match.group(1)), lineno)
    return found


def line_of(lines: dict[tuple[str | int, ...], int], loc: tuple[str | int, ...]) -> int | None:
    """The line of `loc`, or of the nearest table above it that has one."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None

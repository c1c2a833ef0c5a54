"""The upstream peer's `--instance` and `--partition` arguments, for the CLI and `python -m
kanban_terminal.runtime`.

Apart from runtime/serve.py so that building the CLI's parser imports no runtime: importing the
runtime package imports the storage stack, which `run` must not wait for before its first screen
(issue 15, tui/boot.py). Imports no layer.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from kanban_terminal.peer_settings import parse_partition
from kanban_terminal.topics import check_level


def _argument(check: Callable[[str], object]) -> Callable[[str], str]:
    """An argparse type: `check` raises ValueError with the message; argparse exits 2 with it."""

    def typed(text: str) -> str:
        try:
            check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    return typed


def add_instance_arguments(parser: argparse.ArgumentParser) -> None:
    """`--instance` and `--partition` of the upstream peer (several peers from one config)."""
    parser.add_argument(
        "--instance",
        default=None,
        type=_argument(check_level),
        help="instance name (env KANBAN_INSTANCE): appended to the client id and the data file, so "
        "peers run from one config do not take each other's broker session over",
    )
    parser.add_argument(
        "--partition",
        default=None,
        metavar="I/N",
        type=_argument(parse_partition),
        help="serve only share I of N of the loops (no claims)",
    )

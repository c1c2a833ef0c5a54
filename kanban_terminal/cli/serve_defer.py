"""Imported first by the CLI's package: for the `serve` verb, the standard-library packages a
headless terminal never runs stay out until used (kanban_terminal/deferred_imports.py; issue 19,
-4 MB of RSS ready). It has to run before the CLI's own imports bring in pydantic, so it is an
import, not a call in `main`."""

import sys

from kanban_terminal.deferred_imports import defer_when_serving

defer_when_serving(sys.argv)

"""`python -m kanban_terminal.runtime serve|upstream --config FILE --data-dir DIR [--mqtt URL]`."""

from kanban_terminal.deferred_imports import defer_unused_stdlib

defer_unused_stdlib()  # before pydantic and SQLAlchemy are imported (issue 19: -4 MB ready)

from kanban_terminal.runtime.serve import main  # noqa: E402

raise SystemExit(main())

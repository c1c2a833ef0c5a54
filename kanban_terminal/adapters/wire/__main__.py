"""`python -m kanban_terminal.adapters.wire --write docs/schema` (or `--check docs/schema`)."""

from kanban_terminal.adapters.wire.schema import main

raise SystemExit(main())

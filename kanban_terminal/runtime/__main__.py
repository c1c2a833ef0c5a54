"""`python -m kanban_terminal.runtime serve|upstream --config FILE --data-dir DIR [--mqtt URL]`."""

from kanban_terminal.runtime.serve import main

raise SystemExit(main())

from kanban_terminal.cli import main

raise SystemExit(main())

"""kanban-terminal: a line-side e-kanban and andon terminal that keeps working with no network."""

__version__ = "0.1.0"

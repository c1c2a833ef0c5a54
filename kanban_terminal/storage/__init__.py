"""Storage: the terminal's one SQLite file, through SQLModel. The only package that knows SQL."""

"""Alembic environment: migrations run on the connection `storage.db.migrate` hands over."""

from alembic import context
from sqlmodel import SQLModel

from kanban_terminal.storage import tables  # noqa: F401  (registers the tables on the metadata)

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=SQLModel.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

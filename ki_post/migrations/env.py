"""Alembic environment for KI-Post (run through Flask-Migrate: `flask --app app db upgrade`)."""
from alembic import context
from flask import current_app
from sqlalchemy import text

from ki_post.models import metadata

# Any number whose lock all KI-Post processes agree on: concurrent starts migrate one after another.
MIGRATION_LOCK_ID = 0x4B49_506F


def run_migrations_online() -> None:
    engine = current_app.extensions["migrate"].db.engine
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
            connection.commit()
        try:
            context.configure(
                connection=connection,
                target_metadata=metadata,
                **current_app.extensions["migrate"].configure_args,
            )
            with context.begin_transaction():
                context.run_migrations()
        finally:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
                connection.commit()


if context.is_offline_mode():
    raise SystemExit("KI-Post unterstützt nur Online-Migrationen (flask --app app db upgrade).")
run_migrations_online()

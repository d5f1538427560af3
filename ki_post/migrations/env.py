"""Alembic environment for KI-Post (run through Flask-Migrate: `flask --app app db upgrade`)."""
from alembic import context
from flask import current_app
from sqlalchemy import text

from ki_post.models import metadata

# Any number whose lock all KI-Post processes agree on: concurrent starts migrate one after another.
MIGRATION_LOCK_ID = 0x4B49_506F


def _sqlite_foreign_keys(connection, on: bool) -> None:
    """SQLite adds a constraint only by rebuilding a table, and dropping the old table with foreign keys
    on deletes every row that references it (ON DELETE CASCADE). Migrations run with them off; the
    switch works only outside a transaction, so it is checked rather than trusted."""
    connection.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    connection.commit()
    if bool(connection.exec_driver_sql("PRAGMA foreign_keys").scalar()) != on:
        connection.invalidate()  # never hand a connection in the wrong mode back to the pool
        raise RuntimeError("SQLite: Fremdschlüssel ließen sich für die Migration nicht umschalten.")
    connection.commit()


def run_migrations_online() -> None:
    engine = current_app.extensions["migrate"].db.engine
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
            connection.commit()
        if sqlite:
            _sqlite_foreign_keys(connection, on=False)
        try:
            context.configure(
                connection=connection,
                target_metadata=metadata,
                **current_app.extensions["migrate"].configure_args,
            )
            with context.begin_transaction():
                context.run_migrations()
            if sqlite:
                connection.rollback()  # nothing left open: the check below must see committed tables
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"SQLite: Nach der Migration verweisen Zeilen ins Leere: {broken[:10]}")
        finally:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
                connection.commit()
            if sqlite:
                connection.rollback()
                _sqlite_foreign_keys(connection, on=True)


if context.is_offline_mode():
    raise SystemExit("KI-Post unterstützt nur Online-Migrationen (flask --app app db upgrade).")
run_migrations_online()

"""SQLite needs foreign keys switched on per connection; WAL lets the worker write while pages read.

secure_delete=ON: freed space is overwritten with zeros, so an erased person's data does not linger in
the file (recipients/erasure.py also empties the write-ahead log after an erasure).

synchronous=FULL: every commit reaches the disk before it returns. With NORMAL a power loss may
undo the last commits, and a message recorded as claimed or sent could be sent a second time.
"""
import sqlite3

from sqlalchemy import event
from sqlalchemy.engine import Engine


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        # Deleted and overwritten content is zeroed, not left in free space of the file (erased means
        # erased); many builds do this by default, not all.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

"""outbox: topic, facts, revision and expiry of a message

A message waiting in the outbox is a promise about the present: the queueing package can rewrite it
(``revision`` guards the worker's claim), read back what a topic told (``facts``), keep the messages of a
topic in order (``topic``) and let it lapse (``expires_at``). Existing rows: revision 0, no topic.

Revision ID: 5b0c1e7a9d21
Revises: 1541dc0797b7
Create Date: 2026-12-01 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import ki_post.db_types


# revision identifiers, used by Alembic.
revision = '5b0c1e7a9d21'
down_revision = '1541dc0797b7'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ALTERs, no batch: on SQLite a batch would rebuild outbox_messages with DROP TABLE, and with
    # foreign keys on that deletes every attachment row (ON DELETE CASCADE).
    op.add_column('outbox_messages', sa.Column('topic', sa.String(length=100), nullable=True))
    op.add_column('outbox_messages', sa.Column('facts', sa.JSON(), nullable=True))
    op.add_column('outbox_messages', sa.Column('revision', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('outbox_messages', sa.Column('expires_at', ki_post.db_types.UTCDateTime(), nullable=True))
    op.create_index('ix_outbox_messages_topic', 'outbox_messages', ['topic', 'id'], unique=False)


def downgrade():
    op.drop_index('ix_outbox_messages_topic', table_name='outbox_messages')
    for column in ('expires_at', 'revision', 'facts', 'topic'):
        if op.get_bind().dialect.name == "sqlite":  # in place (SQLite 3.35+), see upgrade
            op.execute(f"ALTER TABLE outbox_messages DROP COLUMN {column}")
        else:
            op.drop_column('outbox_messages', column)

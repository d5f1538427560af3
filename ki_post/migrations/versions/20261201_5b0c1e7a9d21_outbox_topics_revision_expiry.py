"""outbox: topic, facts, revision and expiry of a message

A message waiting in the outbox is a promise about the present: the queueing package can rewrite it
(``revision`` guards the worker's claim), read back what a topic told (``facts``), keep the messages of a
topic in order (``topic``) and let it lapse (``expires_at``). Existing rows: revision 0, no topic.

Revision ID: 5b0c1e7a9d21
Revises: 35f1e490368d
Create Date: 2026-12-01 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import ki_post.db_types


# revision identifiers, used by Alembic.
revision = '5b0c1e7a9d21'
down_revision = '35f1e490368d'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('topic', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('facts', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('revision', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('expires_at', ki_post.db_types.UTCDateTime(), nullable=True))
        batch_op.create_index('ix_outbox_messages_topic', ['topic', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_messages_topic')
        batch_op.drop_column('expires_at')
        batch_op.drop_column('revision')
        batch_op.drop_column('facts')
        batch_op.drop_column('topic')

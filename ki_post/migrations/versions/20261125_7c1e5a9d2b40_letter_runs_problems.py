"""letters: recipients left out of a production run, with the reason

Revision ID: 7c1e5a9d2b40
Revises: 35f1e490368d
Create Date: 2026-11-25 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7c1e5a9d2b40'
down_revision = '35f1e490368d'
branch_labels = None
depends_on = None


def upgrade():
    # Existing runs left nobody out: the server default fills them with an empty list.
    with op.batch_alter_table('letter_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('problems', sa.JSON(), server_default='[]', nullable=False))


def downgrade():
    with op.batch_alter_table('letter_runs', schema=None) as batch_op:
        batch_op.drop_column('problems')

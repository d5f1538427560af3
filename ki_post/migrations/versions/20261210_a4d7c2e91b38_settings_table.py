"""settings: values edited under Verwaltung → Einstellungen (passwords encrypted)

Revision ID: a4d7c2e91b38
Revises: b0c3e5f7a9d1
Create Date: 2026-12-10 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import ki_post.db_types


# revision identifiers, used by Alembic.
revision = 'a4d7c2e91b38'
down_revision = 'b0c3e5f7a9d1'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('settings',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('secret', sa.Boolean(), nullable=False),
    sa.Column('updated_at', ki_post.db_types.UTCDateTime(), nullable=False),
    sa.Column('updated_by', sa.String(length=254), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_settings'))
    )


def downgrade():
    op.drop_table('settings')

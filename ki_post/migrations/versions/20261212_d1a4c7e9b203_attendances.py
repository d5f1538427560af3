"""attendances: check-in on the day (Einlass), walk-ins and the personal check-in code

Revision ID: d1a4c7e9b203
Revises: d8a3f1c7e2b4
Create Date: 2026-12-12 05:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import ki_post.db_types


# revision identifiers, used by Alembic.
revision = 'd1a4c7e9b203'
down_revision = "d8a3f1c7e2b4"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('attendances',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('invitation_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('organisation_name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=True),
    sa.Column('checked_in_at', ki_post.db_types.UTCDateTime(), nullable=True),
    sa.Column('companions_present', sa.Integer(), nullable=False),
    sa.Column('checked_in_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', ki_post.db_types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_attendances_event_id_events'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['invitation_id'], ['invitations.id'], name=op.f('fk_attendances_invitation_id_invitations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['checked_in_by_id'], ['users.id'], name=op.f('fk_attendances_checked_in_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attendances')),
    sa.UniqueConstraint('invitation_id', name='uq_attendances_invitation_id'),
    sa.UniqueConstraint('token', name=op.f('uq_attendances_token'))
    )
    op.create_index(op.f('ix_attendances_event_id'), 'attendances', ['event_id'], unique=False)


def downgrade():
    op.drop_table('attendances')

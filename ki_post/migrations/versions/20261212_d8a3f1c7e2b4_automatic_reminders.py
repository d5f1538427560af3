"""automatic reminders: per event, days before the deadline / the start; one row per reminder that ran

Revision ID: d8a3f1c7e2b4
Revises: c5e8a1f3d902
Create Date: 2026-12-12 05:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import ki_post.db_types


# revision identifiers, used by Alembic.
revision = 'd8a3f1c7e2b4'
down_revision = 'c5e8a1f3d902'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN (no batch rebuild): on SQLite a table rebuild of events would cascade into invitations.
    op.add_column('events', sa.Column('remind_open_days', sa.Integer(), nullable=True))
    op.add_column('events', sa.Column('remind_participants_days', sa.Integer(), nullable=True))
    op.create_table('event_automatic_reminders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('offene', 'teilnehmende', name='reminder_kind', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('due_at', ki_post.db_types.UTCDateTime(), nullable=False),
    sa.Column('sent_at', ki_post.db_types.UTCDateTime(), nullable=False),
    sa.Column('recipients', sa.Integer(), nullable=False),
    sa.Column('skipped', sa.Integer(), nullable=False),
    sa.Column('mailing_id', sa.Integer(), nullable=True),
    sa.Column('problem', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_event_automatic_reminders_event_id_events'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['mailing_id'], ['outbox_mailings.id'], name=op.f('fk_event_automatic_reminders_mailing_id_outbox_mailings'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_event_automatic_reminders')),
    sa.UniqueConstraint('event_id', 'kind', name='uq_event_automatic_reminders_event_kind')
    )
    op.create_index(op.f('ix_event_automatic_reminders_event_id'), 'event_automatic_reminders', ['event_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_event_automatic_reminders_event_id'), table_name='event_automatic_reminders')
    op.drop_table('event_automatic_reminders')
    # SQLite >= 3.35 drops a column in place (no rebuild that would cascade into invitations).
    op.drop_column('events', 'remind_participants_days')
    op.drop_column('events', 'remind_open_days')

"""letter_jobs: "Briefe erstellen" and "Als Aussendung vorbereiten" as background jobs

Revision ID: c5e8a1f3d902
Revises: c6e1f3a8b2d5
Create Date: 2026-12-11 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import ki_post.db_types


# revision identifiers, used by Alembic.
revision = 'c5e8a1f3d902'
down_revision = 'c6e1f3a8b2d5'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('letter_jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('briefe', 'aussendung', name='job_kind', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('input_hash', sa.String(length=64), nullable=False),
    sa.Column('state', sa.Enum('wartend', 'laeuft', 'fertig', 'fehlgeschlagen', name='job_state', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('phase', sa.String(length=200), nullable=False),
    sa.Column('result_blob', sa.String(length=64), nullable=True),
    sa.Column('result_filename', sa.String(length=255), nullable=False),
    sa.Column('result_mimetype', sa.String(length=100), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('mailing_id', sa.Integer(), nullable=True),
    sa.Column('problems', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=254), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('claimed_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', ki_post.db_types.UTCDateTime(), nullable=False),
    sa.Column('started_at', ki_post.db_types.UTCDateTime(), nullable=True),
    sa.Column('heartbeat_at', ki_post.db_types.UTCDateTime(), nullable=True),
    sa.Column('finished_at', ki_post.db_types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_letter_jobs_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['mailing_id'], ['outbox_mailings.id'], name=op.f('fk_letter_jobs_mailing_id_outbox_mailings'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['run_id'], ['letter_runs.id'], name=op.f('fk_letter_jobs_run_id_letter_runs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_letter_jobs'))
    )
    op.create_index(op.f('ix_letter_jobs_created_at'), 'letter_jobs', ['created_at'], unique=False)
    op.create_index(op.f('ix_letter_jobs_input_hash'), 'letter_jobs', ['input_hash'], unique=False)
    op.create_index(op.f('ix_letter_jobs_state'), 'letter_jobs', ['state'], unique=False)

def downgrade():
    op.drop_table('letter_jobs')

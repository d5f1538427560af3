"""event_questions: an event's own questions and their options (answers on invitations.answers)

Revision ID: d1a4f7c2e8b3
Revises: d1a4c7e9b203
Create Date: 2026-12-12 05:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import ki_post.db_types


# revision identifiers, used by Alembic.
revision = 'd1a4f7c2e8b3'
down_revision = 'd1a4c7e9b203'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('event_questions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('text', 'janein', 'einfachauswahl', 'mehrfachauswahl', name='question_kind', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('label', sa.String(length=300), nullable=False),
    sa.Column('help_text', sa.Text(), nullable=False),
    sa.Column('required', sa.Boolean(), nullable=False),
    sa.Column('created_at', ki_post.db_types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_event_questions_event_id_events'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_event_questions'))
    )
    op.create_index(op.f('ix_event_questions_event_id'), 'event_questions', ['event_id'], unique=False)
    op.create_table('event_question_options',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('question_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['question_id'], ['event_questions.id'], name=op.f('fk_event_question_options_question_id_event_questions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_event_question_options'))
    )
    op.create_index(op.f('ix_event_question_options_question_id'), 'event_question_options', ['question_id'], unique=False)


def downgrade():
    op.drop_table('event_question_options')
    op.drop_table('event_questions')

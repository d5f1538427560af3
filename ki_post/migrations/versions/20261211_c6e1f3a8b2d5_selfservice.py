""""Angaben prüfen": personal links, proposals for the review queue, contacts.confirmed_at

Revision ID: c6e1f3a8b2d5
Revises: c7e2b9d4f6a1
Create Date: 2026-12-11 03:00:00.000000

New tables and one nullable column added in place (no batch rebuild: contacts has children).
"""
from alembic import op
import sqlalchemy as sa

import ki_post.db_types


revision = 'c6e1f3a8b2d5'
down_revision = 'c7e2b9d4f6a1'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('contacts', sa.Column('confirmed_at', ki_post.db_types.UTCDateTime(), nullable=True))
    op.create_table('contact_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('created_at', ki_post.db_types.UTCDateTime(), nullable=False),
    sa.Column('expires_at', ki_post.db_types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_contact_links_contact_id_contacts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_links')),
    sa.UniqueConstraint('token', name=op.f('uq_contact_links_token'))
    )
    op.create_index(op.f('ix_contact_links_contact_id'), 'contact_links', ['contact_id'], unique=False)
    op.create_table('contact_proposals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('korrektur', 'uebergabe', name='proposal_kind', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('state', sa.Enum('offen', 'uebernommen', 'abgelehnt', name='proposal_state', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('old', sa.JSON(), nullable=False),
    sa.Column('new', sa.JSON(), nullable=False),
    sa.Column('successor', sa.JSON(), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_at', ki_post.db_types.UTCDateTime(), nullable=False),
    sa.Column('decided_at', ki_post.db_types.UTCDateTime(), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('successor_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_contact_proposals_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_contact_proposals_decided_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['successor_id'], ['contacts.id'], name=op.f('fk_contact_proposals_successor_id_contacts'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_proposals'))
    )
    op.create_index(op.f('ix_contact_proposals_contact_id'), 'contact_proposals', ['contact_id'], unique=False)
    op.create_index(op.f('ix_contact_proposals_state'), 'contact_proposals', ['state'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_contact_proposals_state'), table_name='contact_proposals')
    op.drop_index(op.f('ix_contact_proposals_contact_id'), table_name='contact_proposals')
    op.drop_table('contact_proposals')
    op.drop_index(op.f('ix_contact_links_contact_id'), table_name='contact_links')
    op.drop_table('contact_links')
    if op.get_bind().dialect.name == "sqlite":  # in place (SQLite 3.35+): contacts has children
        op.execute("ALTER TABLE contacts DROP COLUMN confirmed_at")
    else:
        op.drop_column('contacts', 'confirmed_at')

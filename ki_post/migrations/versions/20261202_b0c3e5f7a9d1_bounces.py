"""bounces: reports about sent messages, a token header per message, the contact's undeliverable flag

Delivery status notifications and automatic replies read from the functional mailbox are kept in
``outbox_bounces``; a message that bounced for good gets the state ``unzustellbar`` (added to the state's
CHECK constraint); ``bounce_token`` is the X-KI-Post-Nachricht header of each new message
(existing messages have none and are found by Message-ID or address); ``contacts.undeliverable_since`` and
``undeliverable_reason`` flag an address that bounced.

Revision ID: b0c3e5f7a9d1
Revises: a3f5c8e1d704
Create Date: 2026-12-02 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import ki_post.db_types


# revision identifiers, used by Alembic.
revision = 'b0c3e5f7a9d1'
down_revision = 'a3f5c8e1d704'
branch_labels = None
depends_on = None


MESSAGE_STATES = ("wartend", "in_arbeit", "gesendet", "fehlgeschlagen", "unklar", "abgebrochen", "zurueckgezogen",
                  "uebersprungen")
STATE_CHECK = "ck_outbox_messages_message_state"


def _message_state_check(codes: tuple[str, ...]) -> None:
    """Replace the CHECK constraint of outbox_messages.state. SQLite can only do that by rebuilding the
    table; migrations/env.py runs migrations with foreign keys off, so the rebuild deletes no attachment."""
    condition = "state IN (" + ", ".join(f"'{code}'" for code in codes) + ")"
    if op.get_bind().dialect.name == "sqlite":
        if op.get_bind().exec_driver_sql("PRAGMA foreign_keys").scalar():
            raise RuntimeError("SQLite: Fremdschlüssel sind eingeschaltet; ein Tabellenumbau würde abhängige Zeilen "
                               "löschen. Bitte mit `flask --app app db upgrade` migrieren.")
        with op.batch_alter_table("outbox_messages", recreate="always") as batch:
            batch.drop_constraint(op.f(STATE_CHECK), type_="check")
            batch.create_check_constraint(op.f(STATE_CHECK), condition)
    else:
        op.drop_constraint(op.f(STATE_CHECK), "outbox_messages", type_="check")
        op.create_check_constraint(op.f(STATE_CHECK), "outbox_messages", condition)


def upgrade():
    # Plain ALTERs, no batch: on SQLite a batch rebuilds the table with DROP TABLE, and with foreign keys on
    # that deletes every attachment (outbox_messages) or list membership (contacts) by ON DELETE CASCADE.
    op.add_column('outbox_messages', sa.Column('bounce_token', sa.String(length=32), nullable=True))
    op.create_index(op.f('ix_outbox_messages_bounce_token'), 'outbox_messages', ['bounce_token'], unique=True)
    op.add_column('contacts', sa.Column('undeliverable_since', ki_post.db_types.UTCDateTime(), nullable=True))
    op.add_column('contacts', sa.Column('undeliverable_reason', sa.Text(), nullable=False, server_default=''))
    op.create_table('outbox_bounces',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('source', sa.String(length=60), nullable=False),
    sa.Column('recipient', sa.String(length=254), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('diagnostic', sa.Text(), nullable=False),
    sa.Column('matched_by', sa.String(length=20), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('received_at', ki_post.db_types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['outbox_messages.id'], name=op.f('fk_outbox_bounces_message_id_outbox_messages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_bounces')),
    sa.UniqueConstraint('key', name=op.f('uq_outbox_bounces_key'))
    )
    op.create_index(op.f('ix_outbox_bounces_message_id'), 'outbox_bounces', ['message_id'], unique=False)
    _message_state_check(MESSAGE_STATES + ("unzustellbar",))


def downgrade():
    op.execute("UPDATE outbox_messages SET state = 'gesendet' WHERE state = 'unzustellbar'")
    _message_state_check(MESSAGE_STATES)
    op.drop_index(op.f('ix_outbox_bounces_message_id'), table_name='outbox_bounces')
    op.drop_table('outbox_bounces')
    op.drop_index(op.f('ix_outbox_messages_bounce_token'), table_name='outbox_messages')
    for table, column in (('outbox_messages', 'bounce_token'), ('contacts', 'undeliverable_reason'),
                          ('contacts', 'undeliverable_since')):
        if op.get_bind().dialect.name == "sqlite":  # in place (SQLite 3.35+), see upgrade
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        else:
            op.drop_column(table, column)

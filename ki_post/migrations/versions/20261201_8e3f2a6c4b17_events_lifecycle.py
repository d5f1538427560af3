"""events: cancellation reason and time; mail signature in the sender profile; event mails get topics

An event's mails now carry the topic of their invitation and the facts they told, so that updates say
what changed for each person and cancellations reach exactly those who may have the event. Mails
queued before this version get both here: the topic from their invitation (same event, same
address) and, as what they told, the event as it stands now (the best that can be known).
``update_pending`` is gone: a change now prepares its update mails at once.

Revision ID: 8e3f2a6c4b17
Revises: 5b0c1e7a9d21
Create Date: 2026-12-01 12:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import ki_post.db_types


# revision identifiers, used by Alembic.
revision = '8e3f2a6c4b17'
down_revision = '5b0c1e7a9d21'
branch_labels = None
depends_on = None


def _location(row) -> str:
    return ", ".join(part for part in (row.place_name, row.room, row.place_address) if part)


def _backfill_event_mails(connection) -> None:
    events = sa.table("events", sa.column("id"), sa.column("uid"), sa.column("sequence"), sa.column("title"),
                      sa.column("start_at", ki_post.db_types.UTCDateTime()), sa.column("end_at", ki_post.db_types.UTCDateTime()),
                      sa.column("place_name"), sa.column("place_address"), sa.column("room"), sa.column("description"))
    invitations = sa.table("invitations", sa.column("id"), sa.column("event_id"), sa.column("email"))
    mailings = sa.table("outbox_mailings", sa.column("id"), sa.column("event_id"), sa.column("kind"))
    messages = sa.table("outbox_messages", sa.column("id"), sa.column("mailing_id"), sa.column("to_email"),
                        sa.column("topic"), sa.column("facts", sa.JSON()))
    for event in connection.execute(sa.select(events)).all():
        facts = {"uid": event.uid, "sequence": event.sequence, "title": event.title,
                 "start": event.start_at.isoformat(), "end": event.end_at.isoformat(), "location": _location(event),
                 "description": event.description}
        by_email = {row.email: row.id for row in connection.execute(
            sa.select(invitations.c.id, invitations.c.email).where(invitations.c.event_id == event.id))}
        rows = connection.execute(
            sa.select(messages.c.id, messages.c.to_email, mailings.c.kind)
            .join(mailings, mailings.c.id == messages.c.mailing_id)
            .where(mailings.c.event_id == event.id, messages.c.topic.is_(None))).all()
        for row in rows:
            invitation_id = by_email.get((row.to_email or "").strip().lower())
            if invitation_id is None:
                continue
            connection.execute(messages.update().where(messages.c.id == row.id).values(
                topic=f"veranstaltung-{event.id}/einladung-{invitation_id}", facts={"kind": row.kind, **facts}))


def _drop_column(table: str, column: str) -> None:
    """Without batch mode: on SQLite a batch rebuilds the table with DROP TABLE, and with foreign keys
    on that deletes every invitation of every event (ON DELETE CASCADE). SQLite 3.35+ drops a column
    in place."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    else:
        op.drop_column(table, column)


def upgrade():
    op.add_column('events', sa.Column('cancel_reason', sa.Text(), nullable=False, server_default=''))
    op.add_column('events', sa.Column('cancelled_at', ki_post.db_types.UTCDateTime(), nullable=True))
    _drop_column('events', 'update_pending')
    op.add_column('letter_sender_profiles', sa.Column('funktion', sa.String(length=200), nullable=False, server_default=''))
    op.add_column('letter_sender_profiles', sa.Column('organisationseinheit', sa.String(length=200), nullable=False,
                                                      server_default=''))
    _backfill_event_mails(op.get_bind())


def downgrade():
    _drop_column('letter_sender_profiles', 'organisationseinheit')
    _drop_column('letter_sender_profiles', 'funktion')
    op.add_column('events', sa.Column('update_pending', sa.Boolean(), nullable=False, server_default=sa.false()))
    _drop_column('events', 'cancelled_at')
    _drop_column('events', 'cancel_reason')

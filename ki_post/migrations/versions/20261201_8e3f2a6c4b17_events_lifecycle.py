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


def upgrade():
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cancel_reason', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('cancelled_at', ki_post.db_types.UTCDateTime(), nullable=True))
        batch_op.drop_column('update_pending')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.alter_column('cancel_reason', server_default=None)
    with op.batch_alter_table('letter_sender_profiles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('funktion', sa.String(length=200), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('organisationseinheit', sa.String(length=200), nullable=False, server_default=''))
    _backfill_event_mails(op.get_bind())


def downgrade():
    with op.batch_alter_table('letter_sender_profiles', schema=None) as batch_op:
        batch_op.drop_column('organisationseinheit')
        batch_op.drop_column('funktion')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('update_pending', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.drop_column('cancelled_at')
        batch_op.drop_column('cancel_reason')

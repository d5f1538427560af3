"""The migration to topics and facts converts the mails of existing events, so that a change or a
cancellation after the upgrade still reaches the people invited before it; and it keeps every row
(on SQLite a table rebuild would have cascaded into invitations and attachments)."""
from __future__ import annotations

from datetime import datetime, timezone

from flask_migrate import upgrade
from sqlalchemy import text

from ki_post import create_app, prepare_instance
from ki_post.extensions import db
from tests import helpers


def test_existing_event_mails_get_topic_and_facts(tmp_path, backend):
    app = prepare_instance(create_app(helpers.build_config(tmp_path, backend), instance_path=str(tmp_path / "instance")))
    with app.app_context():
        if backend == "postgresql":
            helpers.empty_postgres_schema(app)
            helpers._postgres_ready = False  # the next test recreates the test schema
        upgrade(revision="35f1e490368d")  # the schema before this change
        start = datetime(2037, 2, 8, 10, tzinfo=timezone.utc)
        statements = [
            ("INSERT INTO events (id, title, description, start_at, end_at, place_name, place_address, room, organizer_email,"
             " organizer_name, companions_allowed, ask_remarks, ask_dietary, state, uid, sequence, update_pending, created_at,"
             " updated_at) VALUES (1, 'Feierstunde', '', :start, :end, 'Ministerium', '', 'Raum 1', 'v@m.example', '', 0,"
             " true, false, 'published', '4b1f7d2e-3c6a-4e8b-9f0a-2d5c7e9a1b3c', 1, false, :start, :start)"),
            ("INSERT INTO invitations (id, event_id, name, email, organisation_name, token, state, companions, remark,"
             " dietary, answers, channel, created_at) VALUES (7, 1, 'Erika Muster', 'erika@kreis.example', '', 'tok',"
             " 'open', 0, '', '', '{}', '', :start)"),
            ("INSERT INTO outbox_mailings (id, kind, title, state, pause_reason, failures_in_a_row, event_id, created_at)"
             " VALUES (3, 'einladung', 'Einladung', 'aktiv', '', 0, 1, :start)"),
            ("INSERT INTO outbox_messages (id, mailing_id, from_header, reply_to, to_email, to_name, subject, message_id,"
             " date, text, calendar_method, state, attempts, next_attempt_at, server_reply, eml_file, created_at) VALUES"
             " (5, 3, 'v@m.example', '', 'erika@kreis.example', 'Erika Muster', 'Einladung', '<1@m>', :start, 'x',"
             " 'REQUEST', 'gesendet', 1, :start, '', '', :start)"),
            "INSERT INTO blobs (sha256, size, data, created_at) VALUES ('ab', 1, :data, :start)",
            ("INSERT INTO outbox_attachments (id, message_id, position, filename, mimetype, blob_sha256, size)"
             " VALUES (9, 5, 0, 'rundschreiben.pdf', 'application/pdf', 'ab', 1)"),
            ("INSERT INTO calendar_replies (id, key, message_id, from_email, uid, attendee_email, attendee_name, partstat,"
             " sequence, comment, status, event_id, invitation_id, received_at) VALUES (4, 'k', '<r@x>', 'erika@kreis.example',"
             " '4b1f7d2e-3c6a-4e8b-9f0a-2d5c7e9a1b3c', 'erika@kreis.example', '', 'ACCEPTED', 1, '', 'applied', 1, 7, :start)"),
        ]
        for statement in statements:
            db.session.execute(text(statement), {"start": start, "end": start.replace(hour=12), "data": b"x"})
        db.session.commit()
        upgrade()
        counts = [db.session.scalar(text(f"SELECT count(*) FROM {table}"))
                  for table in ("events", "invitations", "outbox_messages", "outbox_attachments")]
        assert counts == [1, 1, 1, 1]
        assert db.session.execute(text("SELECT event_id, invitation_id FROM calendar_replies")).one() == (1, 7)
        topic, revision = db.session.execute(text("SELECT topic, revision FROM outbox_messages WHERE id = 5")).one()
        assert (topic, revision) == ("veranstaltung-1/einladung-7", 0)
        db.session.commit()
        from ki_post.events import services
        from ki_post.events.models import Event

        event = db.session.get(Event, 1)
        delivery = services.deliveries(event)[7]
        assert delivery.may_have_event and delivery.went_out and delivery.told_sequence == 1
        assert delivery.told.title == "Feierstunde" and delivery.told.location == "Ministerium, Raum 1"
        assert event.cancel_reason == ""
        db.session.remove()
        db.engine.dispose()

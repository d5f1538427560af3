"""One vocabulary for states: German codes with labels, refused by the database when unknown, and an
upgrade that converts what older versions stored (rows, audit keys, facts of queued mails) without
losing a row to a table rebuild."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import Enum, text
from sqlalchemy.exc import IntegrityError, StatementError

from ki_post import create_app
from ki_post.events.models import Channel, Event, InvitationState
from ki_post.extensions import db
from ki_post.models import metadata
from ki_post.outbox.models import MessageState
from ki_post.states import LabelledEnum
from tests import helpers

BEFORE = "8e3f2a6c4b17"  # the schema with English codes and no CHECK constraints
STATE_COLUMNS = {("users", "role"), ("outbox_mailings", "state"), ("outbox_mailings", "kind"), ("outbox_messages", "state"),
                 ("events", "state"), ("invitations", "state"), ("invitations", "channel"), ("calendar_replies", "status"),
                 ("contact_proposals", "kind"), ("contact_proposals", "state"),
                 ("letter_jobs", "state"), ("letter_jobs", "kind"), ("event_questions", "kind"),
                 ("event_automatic_reminders", "kind")}


def enums() -> list[type[LabelledEnum]]:
    found = {column.type.enum_class for table in metadata.tables.values() for column in table.columns
             if isinstance(column.type, Enum)}
    return sorted(found, key=lambda enum: enum.__name__)


def test_labels_and_codes():
    assert MessageState.UNKLAR == "unklar" and MessageState.ZURUECKGEZOGEN.label == "zurückgezogen"
    assert InvitationState.labels()["zugesagt"] == "Zusage"
    assert InvitationState.label_of("warteliste") == "Warteliste"
    assert InvitationState.label_of("accepted") == "accepted" and InvitationState.label_of(None) == ""
    assert Channel.label_of(None, "–") == "–" and Channel.parse("kalender") is Channel.KALENDER and Channel.parse("x") is None
    assert f"antwort.{InvitationState.ZUGESAGT}" == "antwort.zugesagt"  # audit keys are built from codes
    assert json.dumps({"state": InvitationState.OFFEN}) == '{"state": "offen"}'


def test_every_state_column_is_an_enum_with_german_ascii_codes():
    columns = {(table.name, column.name) for table in metadata.tables.values() for column in table.columns
               if isinstance(column.type, Enum)}
    assert columns == STATE_COLUMNS
    for enum in enums():
        for member in enum:
            assert member.value.isascii() and member.value == member.value.lower(), member
            assert member.label, member
        assert len(set(enum.labels().values())) == len(enum), f"{enum.__name__}: two codes read the same"


def test_the_database_refuses_an_unknown_state(app, backend):
    with app.app_context():
        db.session.execute(text(
            "INSERT INTO events (title, description, start_at, end_at, place_name, place_address, room, organizer_email,"
            " organizer_name, companions_allowed, ask_remarks, ask_dietary, state, uid, sequence, cancel_reason, created_at,"
            " updated_at) VALUES ('T', '', :t, :t, '', '', '', '', '', 0, true, false, 'veroeffentlicht', 'u1', 0, '', :t, :t)"),
            {"t": datetime(2030, 1, 1)})
        db.session.commit()
        with pytest.raises(IntegrityError):
            db.session.execute(text("UPDATE events SET state = 'published'"))
        db.session.rollback()
        event = db.session.scalar(db.select(Event))
        event.state = "published"  # an English code from old code is refused before it reaches the database
        with pytest.raises(StatementError):
            db.session.flush()
        db.session.rollback()


OLD_ROWS = [
    ("INSERT INTO users (id, email, name, password_hash, role, active, created_at) VALUES"
     " (1, 'a@m.example', 'A', 'x', 'admin', true, :t)"),
    "INSERT INTO user_sessions (id, user_id, token_hash, created_at, last_seen_at) VALUES (2, 1, 'h', :t, :t)",
    ("INSERT INTO events (id, title, description, start_at, end_at, place_name, place_address, room, organizer_email,"
     " organizer_name, companions_allowed, ask_remarks, ask_dietary, state, uid, sequence, cancel_reason, created_at,"
     " updated_at) VALUES (1, 'Feierstunde', '', :t, :t, '', '', '', 'v@m.example', '', 0, true, false, 'published',"
     " 'uid-1', 1, '', :t, :t)"),
    ("INSERT INTO events (id, title, description, start_at, end_at, place_name, place_address, room, organizer_email,"
     " organizer_name, companions_allowed, ask_remarks, ask_dietary, state, uid, sequence, cancel_reason, created_at,"
     " updated_at) VALUES (2, 'Entwurf', '', :t, :t, '', '', '', '', '', 0, true, false, 'draft', 'uid-2', 0, '', :t, :t)"),
    ("INSERT INTO invitations (id, event_id, name, email, organisation_name, token, state, companions, remark, dietary,"
     " answers, channel, created_at) VALUES (7, 1, 'E', 'e@k.example', '', 't7', 'accepted', 0, '', '', '{}', 'calendar', :t)"),
    ("INSERT INTO invitations (id, event_id, name, email, organisation_name, token, state, companions, remark, dietary,"
     " answers, channel, created_at) VALUES (8, 1, 'F', 'f@k.example', '', 't8', 'open', 0, '', '', '{}', '', :t)"),
    ("INSERT INTO invitations (id, event_id, name, email, organisation_name, token, state, companions, remark, dietary,"
     " answers, channel, created_at) VALUES (9, 1, 'G', 'g@k.example', '', 't9', 'waiting', 0, '', '', '{}', 'link', :t)"),
    ("INSERT INTO calendar_replies (id, key, message_id, from_email, uid, attendee_email, attendee_name, partstat, sequence,"
     " comment, status, event_id, invitation_id, received_at) VALUES (4, 'k', '<r@x>', 'e@k.example', 'uid-1',"
     " 'e@k.example', '', 'ACCEPTED', 1, '', 'applied', 1, 7, :t)"),
    ("INSERT INTO calendar_replies (id, key, message_id, from_email, uid, attendee_email, attendee_name, partstat, sequence,"
     " comment, status, event_id, invitation_id, received_at) VALUES (5, 'k2', '<s@x>', 'z@k.example', 'uid-x',"
     " 'z@k.example', '', 'ACCEPTED', 0, '', 'unmatched', NULL, NULL, :t)"),
    ("INSERT INTO outbox_mailings (id, kind, title, state, pause_reason, failures_in_a_row, created_by_id, event_id,"
     " created_at) VALUES (3, 'erinnerung', 'Erinnerung', 'aktiv', '', 0, 1, 1, :t)"),
    ("INSERT INTO outbox_messages (id, mailing_id, from_header, reply_to, to_email, to_name, subject, message_id, date,"
     " text, calendar_method, topic, facts, revision, state, attempts, next_attempt_at, server_reply, eml_file, created_at)"
     " VALUES (5, 3, 'v@m.example', '', 'f@k.example', 'F', 'Erinnerung', '<1@m>', :t, 'x', NULL,"
     " 'veranstaltung-1/einladung-8', :facts, 0, 'wartend', 0, :t, '', '', :t)"),
    "INSERT INTO blobs (sha256, size, data, created_at) VALUES ('ab', 1, :data, :t)",
    ("INSERT INTO outbox_attachments (id, message_id, position, filename, mimetype, blob_sha256, size)"
     " VALUES (9, 5, 0, 'a.pdf', 'application/pdf', 'ab', 1)"),
]
OLD_AUDIT = [  # action, details
    ("outbox.mark-sent", {}),
    ("outbox.retry-failed", {"count": 2}),
    ("outbox.unklar-resend", {"count": 1}),
    ("antwort.accepted", {"kanal": "phone", "event_id": 1}),
    ("antwort.waiting", {"kanal": "link", "event_id": 1}),
    ("kalenderantwort.applied", {"event_id": 1}),
    ("kalenderantwort.unzugeordnet", {}),
    ("kontakte.importiert", {"new": 3, "changed": 1, "unchanged": 0, "invalid": 2, "organisations_new": 1}),
    ("veranstaltung.angelegt", {}),
]
NEW_AUDIT = [
    ("nachricht.als-gesendet-markiert", {}),
    ("aussendung.fehlgeschlagene-erneut", {"count": 2}),
    ("aussendung.unklare-erneut", {"count": 1}),
    ("antwort.zugesagt", {"kanal": "telefon", "event_id": 1}),
    ("antwort.warteliste", {"kanal": "link", "event_id": 1}),
    ("kalenderantwort.uebernommen", {"event_id": 1}),
    ("kalenderantwort.unzugeordnet", {}),
    ("kontakte.importiert", {"neu": 3, "geaendert": 1, "unveraendert": 0, "ungueltig": 2, "organisations_new": 1}),
    ("veranstaltung.angelegt", {}),
]
TABLES = ("users", "user_sessions", "events", "invitations", "calendar_replies", "outbox_mailings", "outbox_messages",
          "outbox_attachments", "audit_log")


def _rows(query: str) -> list[tuple]:
    return [tuple(row) for row in db.session.execute(text(query))]


def _details(value):
    return value if isinstance(value, dict) else json.loads(value)


def test_upgrade_converts_every_code_and_keeps_every_row(tmp_path, backend):
    app = create_app(helpers.build_config(tmp_path, backend), instance_path=str(tmp_path / "instance"))
    with app.app_context():
        if backend == "postgresql":
            helpers.empty_postgres_schema(app)
            helpers._postgres_ready = False  # the next test recreates the test schema
        upgrade(revision=BEFORE)
        t = datetime(2037, 2, 8, 10, tzinfo=timezone.utc)
        facts = json.dumps({"kind": "erinnerung", "uid": "uid-1", "sequence": 1, "state": "open",
                            "audience": ["open", "accepted"]})
        for statement in OLD_ROWS:
            db.session.execute(text(statement), {"t": t, "data": b"x", "facts": facts})
        for number, (action, details) in enumerate(OLD_AUDIT, start=1):
            db.session.execute(text("INSERT INTO audit_log (id, at, user_id, actor, action, object_type, details) VALUES"
                                    " (:id, :t, 1, '', :action, '', :details)"),
                               {"id": number, "t": t, "action": action, "details": json.dumps(details)})
        db.session.commit()
        counts = {table: db.session.scalar(text(f"SELECT count(*) FROM {table}")) for table in TABLES}
        db.session.commit()  # on PostgreSQL an open read would block the migration's ALTER TABLE

        upgrade()

        assert {table: db.session.scalar(text(f"SELECT count(*) FROM {table}")) for table in TABLES} == counts
        assert _rows("SELECT id, state FROM events ORDER BY id") == [(1, "veroeffentlicht"), (2, "entwurf")]
        assert _rows("SELECT id, state, channel FROM invitations ORDER BY id") == [
            (7, "zugesagt", "kalender"), (8, "offen", None), (9, "warteliste", "link")]
        assert _rows("SELECT id, status, event_id, invitation_id FROM calendar_replies ORDER BY id") == [
            (4, "uebernommen", 1, 7), (5, "unzugeordnet", None, None)]
        assert _rows("SELECT user_id FROM user_sessions") == [(1,)]
        assert _rows("SELECT created_by_id, state, kind FROM outbox_mailings") == [(1, "aktiv", "erinnerung")]
        assert _rows("SELECT message_id, blob_sha256 FROM outbox_attachments") == [(5, "ab")]
        stored = _details(db.session.scalar(text("SELECT facts FROM outbox_messages WHERE id = 5")))
        assert (stored["state"], stored["audience"]) == ("offen", ["offen", "zugesagt"])
        audit = [(action, _details(details), user_id)
                 for action, details, user_id in _rows("SELECT action, details, user_id FROM audit_log ORDER BY id")]
        assert audit == [(action, details, 1) for action, details in NEW_AUDIT]
        if backend == "sqlite":
            assert db.session.scalar(text("PRAGMA foreign_keys")) == 1  # back on for the application
        db.session.commit()

        # The database itself refuses what the enums do not know, old codes included.
        for statement in ("UPDATE events SET state = 'published' WHERE id = 1",
                          "UPDATE invitations SET state = 'accepted' WHERE id = 7",
                          "UPDATE invitations SET channel = '' WHERE id = 7",
                          "UPDATE calendar_replies SET status = 'applied' WHERE id = 4",
                          "UPDATE outbox_messages SET state = 'waiting' WHERE id = 5",
                          "UPDATE outbox_mailings SET kind = 'reminder' WHERE id = 3",
                          "UPDATE outbox_mailings SET state = 'active' WHERE id = 3",
                          "UPDATE users SET role = 'root' WHERE id = 1"):
            with pytest.raises(IntegrityError):
                db.session.execute(text(statement))
            db.session.rollback()

        # The models read what the upgrade wrote.
        from ki_post.events import services

        event = db.session.get(Event, 1)
        assert [(i.state, i.channel) for i in event.invitations] == [
            (InvitationState.ZUGESAGT, Channel.KALENDER), (InvitationState.OFFEN, None), (InvitationState.WARTELISTE, Channel.LINK)]
        assert services.deliveries(event)[8].unsent[0].state == MessageState.WARTEND
        db.session.commit()

        downgrade(revision=BEFORE)
        assert {table: db.session.scalar(text(f"SELECT count(*) FROM {table}")) for table in TABLES} == counts
        assert _rows("SELECT id, state, channel FROM invitations ORDER BY id") == [
            (7, "accepted", "calendar"), (8, "open", ""), (9, "waiting", "link")]
        assert [action for (action,) in _rows("SELECT action FROM audit_log ORDER BY id")] == [a for a, _ in OLD_AUDIT]
        db.session.execute(text("UPDATE events SET state = 'published' WHERE id = 2"))  # no constraint any more
        db.session.commit()
        db.session.remove()
        db.engine.dispose()

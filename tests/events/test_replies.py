"""RPLY-T1…: iTIP REPLY fixtures from Exchange (base64, QP, no ORGANIZER), Google, Thunderbird and the bad cases."""
from __future__ import annotations

import mailbox
from pathlib import Path

from sqlalchemy import select

from ki_post.auth.models import AuditEntry
from ki_post.events import services
from ki_post.events.models import CalendarReply, Invitation
from ki_post.events.replies import iter_mail_source, parse_mail
from ki_post.extensions import db
from ki_post.recipients.models import Contact
from tests.events.conftest import FIXTURE_UID

FIXTURES = Path(__file__).parent / "fixtures"


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_parse_exchange_base64_without_organizer_RPLY_01_03_09():
    parsed = parse_mail(raw("exchange_base64.eml"))
    assert parsed.message_id == "<exch-b64@mail.stadt-beispiel.example>"
    [reply] = parsed.replies
    assert reply.uid == FIXTURE_UID
    assert reply.attendee_email == "max.mueller@stadt-beispiel.example"  # MAILTO: upper case, lower-cased
    assert reply.partstat == "ACCEPTED"
    assert reply.attendee_name == "Müller, Max"
    assert reply.comment == "Ich komme gern, mit Begleitung."  # unescaped COMMENT


def test_parse_exchange_quoted_printable():
    [reply] = parse_mail(raw("exchange_qp.eml")).replies
    assert reply.partstat == "DECLINED" and reply.comment == "Leider verhindert; Vertretung folgt."


def test_parse_google_x_response_comment_RPLY_07():
    replies = parse_mail(raw("google.eml")).replies
    assert {r.key for r in replies} == {replies[0].key}  # same calendar inline and as application/ics
    assert replies[0].comment == "Ich bringe eine Kollegin mit."
    assert replies[0].attendee_email == "erika.beispiel@kreis-beispiel.example"


def test_parse_non_reply_is_skipped_RPLY_02():
    parsed = parse_mail(raw("not_a_reply.eml"))
    assert parsed.replies == [] and parsed.skipped == ["METHOD REQUEST"]


def _setup(published, make_contacts):
    event = published(0)
    event.uid = FIXTURE_UID
    people = [
        Contact(first_name="Max", last_name="Müller", email="max.mueller@stadt-beispiel.example"),
        Contact(first_name="Erika", last_name="Beispiel", email="erika.beispiel@kreis-beispiel.example"),
        Contact(first_name="Hans", last_name="Tentativ", email="hans.tentativ@stadt-zwei.example"),
    ]
    db.session.add_all(people)
    db.session.flush()
    services.add_invitations(event, people)
    db.session.commit()
    return event


def invitation(event, email) -> Invitation:
    return db.session.scalar(select(Invitation).where(Invitation.event_id == event.id, Invitation.email == email))


def test_apply_exchange_then_qp_decline_and_idempotency_RPLY_04_08(published, make_contacts):
    event = _setup(published, make_contacts)
    [record] = services.apply_reply_mail(raw("exchange_base64.eml"))
    db.session.commit()
    max_ = invitation(event, "max.mueller@stadt-beispiel.example")
    assert record.status == "applied" and max_.state == "accepted" and max_.channel == "calendar"
    assert max_.remark == "Ich komme gern, mit Begleitung."
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "kalenderantwort.applied")) is not None
    # The same mail again changes nothing (RPLY-08).
    assert services.apply_reply_mail(raw("exchange_base64.eml")) == []
    assert db.session.scalar(select(db.func.count(CalendarReply.id))) == 1
    # A newer reply (later DTSTAMP) declines.
    [second] = services.apply_reply_mail(raw("exchange_qp.eml"))
    db.session.commit()
    assert second.status == "applied" and invitation(event, max_.email).state == "declined"


def test_apply_google_and_thunderbird(published, make_contacts):
    event = _setup(published, make_contacts)
    event.sequence = 1
    db.session.commit()
    records = services.apply_reply_mail(raw("google.eml"))
    assert len(records) == 1
    # Google answered SEQUENCE 0 while the event is at 1: outdated, recorded but not applied (RPLY-06).
    assert records[0].status == "stale" and invitation(event, "erika.beispiel@kreis-beispiel.example").state == "open"
    [tb] = services.apply_reply_mail(raw("thunderbird.eml"))
    db.session.commit()
    assert tb.status == "applied" and invitation(event, "hans.tentativ@stadt-zwei.example").state == "tentative"


def test_stale_sequence_is_recorded_not_applied_RPLY_06(published, make_contacts):
    event = _setup(published, make_contacts)
    event.sequence = 1
    db.session.commit()
    [record] = services.apply_reply_mail(raw("stale_sequence.eml"))
    db.session.commit()
    assert record.status == "stale"
    assert invitation(event, "hans.tentativ@stadt-zwei.example").state == "open"


def test_unknown_attendee_goes_to_review_list_and_can_be_assigned(published, make_contacts):
    event = _setup(published, make_contacts)
    [record] = services.apply_reply_mail(raw("unknown_attendee.eml"))
    db.session.commit()
    assert record.status == "unmatched"
    assert [r.id for r in services.unmatched_replies()] == [record.id]
    target = invitation(event, "max.mueller@stadt-beispiel.example")
    services.assign_reply(record.id, target.id)
    db.session.commit()
    assert target.state == "accepted" and services.unmatched_replies() == []


def test_needs_action_is_ignored_RPLY_05(published, make_contacts):
    event = _setup(published, make_contacts)
    [record] = services.apply_reply_mail(raw("needs_action.eml"))
    db.session.commit()
    assert record.status == "ignored"
    assert invitation(event, "max.mueller@stadt-beispiel.example").state == "open"


def test_non_reply_changes_nothing(published, make_contacts):
    event = _setup(published, make_contacts)
    assert services.apply_reply_mail(raw("not_a_reply.eml")) == []
    assert invitation(event, "max.mueller@stadt-beispiel.example").state == "open"


def test_mail_sources_eml_mbox_maildir(tmp_path):
    names = ["exchange_base64.eml", "google.eml", "thunderbird.eml"]
    box = mailbox.mbox(str(tmp_path / "antworten.mbox"))
    maildir = mailbox.Maildir(str(tmp_path / "Maildir"))
    for name in names:
        box.add(raw(name))
        maildir.add(raw(name))
    box.flush()
    for source in (tmp_path / "antworten.mbox", tmp_path / "Maildir"):
        ids = sorted(parse_mail(m).message_id for m in iter_mail_source(source))
        assert ids == sorted(parse_mail(raw(n)).message_id for n in names)
    assert list(iter_mail_source(FIXTURES / "google.eml")) == [raw("google.eml")]

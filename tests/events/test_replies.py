"""RPLY-T1…: iTIP REPLY fixtures from Exchange (base64, QP, no ORGANIZER), Google, Thunderbird and the bad cases."""
from __future__ import annotations

import mailbox
from pathlib import Path

import pytest
from sqlalchemy import select

from ki_post.auth.models import AuditEntry
from ki_post.errors import ValidationError
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
    assert record.status == "uebernommen" and max_.state == "zugesagt" and max_.channel == "kalender"
    assert max_.remark == "Ich komme gern, mit Begleitung."
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "kalenderantwort.uebernommen")) is not None
    # The same mail again changes nothing (RPLY-08).
    assert services.apply_reply_mail(raw("exchange_base64.eml")) == []
    assert db.session.scalar(select(db.func.count(CalendarReply.id))) == 1
    # A newer reply (later DTSTAMP) declines.
    [second] = services.apply_reply_mail(raw("exchange_qp.eml"))
    db.session.commit()
    assert second.status == "uebernommen" and invitation(event, max_.email).state == "abgesagt"


def _told_sequence_1(app, event) -> None:
    """Invitation (SEQUENCE 0) and an update (SEQUENCE 1) went out to everyone."""
    from ki_post.outbox.worker import Worker

    app.config["MAIL_RATE_PER_MINUTE"] = 0
    services.invite(event, contact_ids=[i.contact_id for i in event.invitations], start=True)
    db.session.commit()
    Worker(app).run(once=True)
    services.update_event(event, services.change_fields(event, room="Saal 3"), start=True)
    db.session.commit()
    Worker(app).run(once=True)
    db.session.expire_all()
    assert event.sequence == 1


def test_apply_google_and_thunderbird(app, published, make_contacts):
    event = _setup(published, make_contacts)
    _told_sequence_1(app, event)
    records = services.apply_reply_mail(raw("google.eml"))
    assert len(records) == 1
    # Google answered SEQUENCE 0 after SEQUENCE 1 had been sent to her: outdated, recorded, not applied.
    assert records[0].status == "veraltet" and invitation(event, "erika.beispiel@kreis-beispiel.example").state == "offen"
    [tb] = services.apply_reply_mail(raw("thunderbird.eml"))
    db.session.commit()
    assert tb.status == "uebernommen" and invitation(event, "hans.tentativ@stadt-zwei.example").state == "vorlaeufig"


def test_stale_sequence_is_recorded_not_applied(app, published, make_contacts):
    event = _setup(published, make_contacts)
    _told_sequence_1(app, event)
    [record] = services.apply_reply_mail(raw("stale_sequence.eml"))
    db.session.commit()
    assert record.status == "veraltet"
    assert invitation(event, "hans.tentativ@stadt-zwei.example").state == "offen"


def test_reply_to_the_last_version_sent_is_not_stale(app, published, make_contacts):
    """A changed event whose update still waits as a draft: the person answers the version they have."""
    event = _setup(published, make_contacts)
    from ki_post.outbox.worker import Worker

    app.config["MAIL_RATE_PER_MINUTE"] = 0
    services.invite(event, contact_ids=[i.contact_id for i in event.invitations], start=True)
    db.session.commit()
    Worker(app).run(once=True)
    result = services.update_event(event, services.change_fields(event, room="Saal 3"))  # draft, not sent
    db.session.commit()
    assert event.sequence == 1 and result.updates == 3
    [record] = services.apply_reply_mail(raw("stale_sequence.eml"))  # SEQUENCE 0, DECLINED
    db.session.commit()
    assert record.status == "uebernommen" and invitation(event, "hans.tentativ@stadt-zwei.example").state == "abgesagt"


def test_reply_after_the_deadline_waits_for_staff(published, make_contacts):
    event = _setup(published, make_contacts)
    event.deadline = services.parse_local("2000-01-01T00:00", "deadline")
    db.session.commit()
    [record] = services.apply_reply_mail(raw("exchange_base64.eml"))
    db.session.commit()
    max_ = invitation(event, "max.mueller@stadt-beispiel.example")
    assert record.status == "verspaetet" and max_.state == "offen" and services.unmatched_replies() == [record]
    with pytest.raises(ValidationError, match="Antwortfrist"):
        services.assign_reply(record.id, max_.id)
    db.session.rollback()
    services.assign_reply(record.id, max_.id, override_deadline=True)
    db.session.commit()
    assert max_.state == "zugesagt" and services.unmatched_replies() == []


def test_assignment_only_to_the_replys_own_event(published, make_contacts, make_event):
    """A reply for one event can never be saved as an answer at another event."""
    event = _setup(published, make_contacts)
    other = make_event(title="Andere Veranstaltung")
    services.publish_event(other)
    services.add_invitations(other, make_contacts(1, "andere"))
    db.session.commit()
    [record] = services.apply_reply_mail(raw("unknown_attendee.eml"))
    db.session.commit()
    assert record.event_id == event.id and record.partstat_label == "Zusage"
    assert [i.event_id for i in services.assignable(record)] == [event.id] * 3
    with pytest.raises(ValidationError, match="nicht eingeladen"):
        services.assign_reply(record.id, other.invitations[0].id)
    db.session.rollback()
    assert other.invitations[0].state == "offen"


def test_reply_for_an_unknown_event_can_only_be_dismissed(published, make_contacts):
    event = _setup(published, make_contacts)
    event.uid = "00000000-0000-4000-8000-000000000000"
    db.session.commit()
    [record] = services.apply_reply_mail(raw("exchange_base64.eml"))
    db.session.commit()
    assert record.status == "unzugeordnet" and record.event_id is None and services.assignable(record) == []
    with pytest.raises(ValidationError, match="unbekannte UID"):
        services.assign_reply(record.id, event.invitations[0].id)
    services.dismiss_reply(record.id)
    db.session.commit()
    assert services.unmatched_replies() == []


def test_unknown_attendee_goes_to_review_list_and_can_be_assigned(published, make_contacts):
    event = _setup(published, make_contacts)
    [record] = services.apply_reply_mail(raw("unknown_attendee.eml"))
    db.session.commit()
    assert record.status == "unzugeordnet"
    assert [r.id for r in services.unmatched_replies()] == [record.id]
    target = invitation(event, "max.mueller@stadt-beispiel.example")
    services.assign_reply(record.id, target.id)
    db.session.commit()
    assert target.state == "zugesagt" and services.unmatched_replies() == []


def test_needs_action_is_ignored_RPLY_05(published, make_contacts):
    event = _setup(published, make_contacts)
    [record] = services.apply_reply_mail(raw("needs_action.eml"))
    db.session.commit()
    assert record.status == "ignoriert"
    assert invitation(event, "max.mueller@stadt-beispiel.example").state == "offen"


def test_non_reply_changes_nothing(published, make_contacts):
    event = _setup(published, make_contacts)
    assert services.apply_reply_mail(raw("not_a_reply.eml")) == []
    assert invitation(event, "max.mueller@stadt-beispiel.example").state == "offen"


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


def _reply_mail(uid: str, attendee: str, partstat: str) -> bytes:
    import icalendar
    from datetime import datetime, timezone
    from email.message import EmailMessage
    from email import policy

    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Test//DE")
    calendar.add("version", "2.0")
    calendar.add("method", "REPLY")
    vevent = icalendar.Event()
    vevent.add("uid", uid)
    vevent.add("sequence", 0)
    vevent.add("dtstamp", datetime.now(timezone.utc))
    vevent.add("attendee", f"MAILTO:{attendee}", parameters={"PARTSTAT": partstat})
    calendar.add_component(vevent)
    message = EmailMessage()
    message["From"] = "kalender@example.org"
    message["To"] = "veranstaltungen@example.org"
    message["Subject"] = "Antwort"
    message["Message-ID"] = "<idn-reply@example.org>"
    message.set_content("Antwort")
    message.add_alternative(calendar.to_ical(), maintype="text", subtype="calendar", params={"method": "REPLY"})
    return message.as_bytes(policy=policy.SMTP)


def test_reply_matches_an_address_whatever_the_spelling_of_its_domain(published):
    """Invited as anna.schaefer@münster.example; the calendar answers as ANNA.Schaefer@xn--mnster-3ya.example."""
    event = published(0)
    person = Contact(first_name="Anna", last_name="Schäfer", email="anna.schaefer@münster.example")
    db.session.add(person)
    db.session.flush()
    services.add_invitations(event, [person])
    db.session.commit()
    [record] = services.apply_reply_mail(_reply_mail(event.uid, "ANNA.Schaefer@xn--mnster-3ya.example", "ACCEPTED"))
    db.session.commit()
    invited = invitation(event, "anna.schaefer@münster.example")
    assert record.status == "uebernommen" and record.invitation_id == invited.id
    assert invited.state == "zugesagt" and invited.channel == "kalender"

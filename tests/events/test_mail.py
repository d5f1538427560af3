"""MIME-T1…: invitation, update and cancel mails sent by the outbox worker to a real aiosmtpd on 127.0.0.1."""
from __future__ import annotations

import icalendar
from ical.calendar_stream import IcsCalendarStream
from sqlalchemy import select

from ki_post.events import services
from ki_post.events.models import Invitation
from ki_post.extensions import db
from ki_post.outbox.worker import Worker
from ki_post.recipients.models import Contact
from tests.events.conftest import future
from tests.outbox.conftest import smtp, smtp_app  # noqa: F401  (fixtures)


def send_all(app) -> None:
    db.session.commit()
    Worker(app).run(once=True)


def calendar_part(message):
    alternative = [p for p in message.walk() if p.get_content_type() == "multipart/alternative"]
    assert len(alternative) == 1
    parts = alternative[0].get_payload()
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html", "text/calendar"]  # MIME-01
    return parts[-1]


def test_invitation_update_cancel_over_smtp(smtp_app, smtp):
    contacts = [Contact(first_name="Erika", last_name=f"Muster{k}", email=f"smtp{k}@stadt.example") for k in range(2)]
    db.session.add_all(contacts)
    db.session.flush()
    event = services.create_event(services.EventData(title="Feierstunde; Kommunen, NRW", start=future(20), end=future(20, 13),
                                                     place_name="Ministerium", place_address="Fürstenwall 25, 40219 Düsseldorf"))
    services.invite(event, contact_ids=[c.id for c in contacts], start=True)
    send_all(smtp_app)
    services.update_event(event, services.EventData(title=event.title, start=future(21), end=future(21, 13),
                                                    place_name="Ministerium", place_address=event.place_address), start=True)
    send_all(smtp_app)
    services.cancel_event(event, "Terminkonflikt", start=True)
    send_all(smtp_app)

    received = smtp.messages()
    assert len(received) == 6
    assert sorted(smtp.recipients()) == sorted([c.email for c in contacts] * 3)  # one recipient per message
    seen = {}
    for message in received:
        to = message["To"].addresses
        assert len(to) == 1 and message["Cc"] is None  # MIME-07
        part = calendar_part(message)
        assert part["Content-Disposition"] is None  # MIME-03
        assert part["Content-Transfer-Encoding"].lower() in ("base64", "8bit")  # MIME-04
        assert part.get_param("charset").upper() == "UTF-8"
        data = part.get_payload(decode=True)
        assert data.endswith(b"END:VCALENDAR\r\n") and b"\r\n" in data  # MIME-05 CRLF kept
        cal = icalendar.Calendar.from_ical(data)
        assert part.get_param("method").upper() == str(cal["METHOD"])  # MIME-02
        vevent = cal.walk("VEVENT")[0]
        organizer = str(vevent["ORGANIZER"]).lower().removeprefix("mailto:")
        assert organizer == message["From"].addresses[0].addr_spec.lower() == "veranstaltungen@ministerium.example"  # MIME-06
        assert str(vevent["ATTENDEE"]).lower() == f"mailto:{to[0].addr_spec.lower()}" != f"mailto:{organizer}"
        strict = IcsCalendarStream.calendar_from_ics(data.decode("utf-8")).events[0]
        seen.setdefault(to[0].addr_spec, []).append((str(cal["METHOD"]), strict.sequence, strict.uid))
        invitation = db.session.scalar(select(Invitation).where(Invitation.email == to[0].addr_spec))
        if cal["METHOD"] == "REQUEST":
            assert services.rsvp_link(invitation) in message.get_body(("plain",)).get_content()
        if strict.sequence == 1:  # the update says what changed, with what the person was told before
            assert "Neues Datum: " in message.get_body(("plain",)).get_content() and "(bisher " in message.get_body(("plain",)).get_content()
    for history in seen.values():
        assert [(m, s) for m, s, _ in history] == [("REQUEST", 0), ("REQUEST", 1), ("CANCEL", 2)]  # ITIP-T1 state machine
        assert {uid for _, _, uid in history} == {event.uid}

"""A message on its way while its addressee is erased: beyond recall, but never tried again."""
from __future__ import annotations

from sqlalchemy import select

from ki_post.extensions import db
from ki_post.outbox.models import OutboxMessage
from ki_post.outbox.services import create_mailing, enqueue, start_mailing
from ki_post.outbox.worker import Worker
from ki_post.recipients.addresses import ANONYMISED_ADDRESS
from ki_post.recipients.models import Contact
from ki_post.recipients.services import anonymise_contact


def test_a_message_in_flight_that_comes_back_after_the_erasure_is_withdrawn(smtp_app, smtp):
    person = Contact(first_name="Erika", last_name="Unterwegs", email="erika.unterwegs@kreis.example")
    db.session.add(person)
    db.session.flush()
    mailing = create_mailing("rundschreiben", "Rundschreiben 4/2026")
    enqueue(mailing, to_email=person.email, to_name=person.full_name, contact_id=person.id, subject="Rundschreiben",
            text="Sehr geehrte Frau Unterwegs,\n")
    start_mailing(mailing)
    db.session.commit()
    person_id = person.id

    def erase_while_in_flight(rcpt: str) -> None:
        with smtp_app.app_context():
            anonymise_contact(db.session.get(Contact, person_id))
            db.session.commit()

    smtp.handler.on_data = erase_while_in_flight
    smtp.handler.temporary_failures[person.email] = 1  # 451: the message comes back
    Worker(smtp_app).run(once=True)
    smtp.handler.on_data = None
    db.session.expire_all()
    message = db.session.scalar(select(OutboxMessage))
    assert message.state == "zurueckgezogen" and message.to_email == ANONYMISED_ADDRESS
    assert "anonymisiert" in message.server_reply
    Worker(smtp_app).run(once=True)
    assert smtp.messages() == []

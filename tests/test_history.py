"""A contact's page and data export show what KI-Post did with that contact across all domains."""
import json

from sqlalchemy import select

from ki_post.events.models import Event
from ki_post.events.services import invite
from ki_post.extensions import db
from ki_post.recipients.models import Contact


def test_contact_page_and_data_export_show_invitations_and_mails(staff_client, demo):
    from ki_post.events.demo import load_demo

    load_demo()
    event = db.session.scalar(select(Event))
    event.start_at, event.end_at = event.start_at.replace(year=2037), event.end_at.replace(year=2037)  # not over yet
    contact = db.session.scalar(select(Contact).order_by(Contact.id))
    invite(event, contact_ids=[contact.id])
    db.session.commit()

    page = staff_client.get(f"/verteiler/kontakte/{contact.id}").get_data(as_text=True)
    assert "Noch keine Briefe" not in page
    assert event.title in page
    assert "Einladung" in page and "wartend" in page  # the queued invitation mail

    response = staff_client.submit(f"/verteiler/kontakte/{contact.id}/auskunft", form_url=f"/verteiler/kontakte/{contact.id}")
    data = json.loads(response.get_data(as_text=True))
    assert data["einladungen"][0]["veranstaltung"] == event.title
    assert data["nachrichten"][0]["an"] == contact.email


def test_contact_without_history_says_so(staff_client):
    contact = Contact(anrede="frau", first_name="Eva", last_name="Neu", email="eva.neu@kreis.example")
    db.session.add(contact)
    db.session.commit()
    page = staff_client.get(f"/verteiler/kontakte/{contact.id}").get_data(as_text=True)
    assert "Noch keine Briefe, E-Mails oder Einladungen." in page

""""Angaben prüfen": the officer's page behind her personal link, the review queue, and a handover to a
successor end to end (real aiosmtpd, both databases)."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from ki_post.auth.models import AuditEntry
from ki_post.db_types import utcnow
from ki_post.events import services as events
from ki_post.events.models import Invitation
from ki_post.extensions import db
from ki_post.outbox.models import Mailing, OutboxMessage
from ki_post.recipients.models import Contact, ContactLink, ContactProposal, Organisation, Verteiler
from ki_post.recipients.selfservice import link_token
from tests.core.test_access_walk import snapshot
from tests.events.test_lifecycle import by_kind, method, new_event, send, text
from tests.outbox.conftest import smtp, smtp_app  # noqa: F401,F811  (fixtures)


def officer(email: str = "erika.muster@kreis-lippe.example", **values) -> Contact:
    organisation = db.session.scalar(select(Organisation).where(Organisation.name == "Kreis Lippe"))
    if organisation is None:
        organisation = Organisation(name="Kreis Lippe", kind="kreis", authority="Kreis Lippe – Der Landrat",
                                    street="Felix-Fechenbach-Straße 5", postcode="32756", town="Detmold")
        db.session.add(organisation)
    contact = Contact(anrede="frau", first_name="Erika", last_name="Muster", function="Dezernentin",
                      phone="05231 62-0", email=email, organisation=organisation, extra={}, **values)
    db.session.add(contact)
    db.session.commit()
    return contact


def actions() -> list[str]:
    return [entry.action for entry in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def page_url(contact: Contact) -> str:
    url = f"/angaben/{link_token(contact)}"
    db.session.commit()
    return url


def propose(client, url: str, **changes) -> None:
    contact_page = client.get(url).get_data(as_text=True)
    values = {name: re.search(rf'id="{name}"[^>]*value="([^"]*)"', contact_page).group(1)
              for name in ("academic_title", "function", "phone", "authority", "street", "postcode", "town")}
    values["anrede"] = "frau"
    values.update(changes)
    response = client.submit(f"{url}/korrektur", values, form_url=url)
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]


# --- Links ---------------------------------------------------------------------------------------------

def test_forged_and_expired_links_show_a_german_page_and_change_nothing(app, client):
    contact = officer()
    url = page_url(contact)
    token = url.rsplit("/", 1)[1]
    csrf = client.csrf_token(url)
    before = snapshot()
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    for link in (forged, "x" * 43, "x" * 200):
        response = client.get(f"/angaben/{link}")
        assert response.status_code == 404 and 'lang="de"' in response.get_data(as_text=True)
        response = client.post(f"/angaben/{link}/korrektur", data={"csrf_token": csrf, "function": "Hacker"})
        assert response.status_code == 404
    link = db.session.scalar(select(ContactLink).where(ContactLink.token == token))
    link.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    before = snapshot()
    response = client.get(url)
    assert response.status_code == 410
    assert "Dieser Link zum Prüfen Ihrer Angaben ist abgelaufen" in response.get_data(as_text=True)
    assert "Erika" not in response.get_data(as_text=True)
    for action in ("korrektur", "bestaetigen", "nachfolge"):
        response = client.post(f"{url}/{action}", data={"csrf_token": csrf, "function": "Neu", "last_name": "Neu",
                                                         "email": "neu@kreis-lippe.example"})
        assert response.status_code == 410
    assert snapshot() == before
    assert db.session.scalar(select(ContactProposal.id)) is None


def test_links_are_unguessable_reused_while_fresh_and_renewed_when_old(app):
    contact = officer()
    first = link_token(contact)
    assert len(first) >= 43 and link_token(contact) == first  # a mail written anew says the same link
    db.session.scalar(select(ContactLink)).expires_at = utcnow() + timedelta(days=10)
    second = link_token(contact)
    assert second != first  # less than half the time left: a new link; the old one still works until it expires
    assert len(set(db.session.scalars(select(ContactLink.token)))) == 2


def test_get_of_the_public_page_changes_nothing_and_shows_the_data_in_plain_words(app, client):
    contact = officer()
    url = page_url(contact)
    before = snapshot()
    response = client.get(url)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"] and response.headers["Referrer-Policy"] == "no-referrer"
    for words in ("erika.muster@kreis-lippe.example", "Dezernentin", "Felix-Fechenbach-Straße 5", "Zweck",
                  "Rechtsgrundlage", "Empfänger", "Dauer", "Ihre Rechte", "noch nie"):
        assert words in page, words
    assert snapshot() == before


def test_alles_richtig_records_the_confirmation(app, client):
    contact = officer()
    url = page_url(contact)
    response = client.submit(f"{url}/bestaetigen", form_url=url)
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Contact, contact.id).confirmed_at is not None
    assert "kontakt.bestaetigt" in actions()
    assert db.session.scalar(select(ContactProposal.id)) is None  # a confirmation is no proposal


# --- Review queue ---------------------------------------------------------------------------------------

def test_correction_rejected_changes_nothing_and_is_audited(app, client, make_user, runner):
    contact = officer()
    url = page_url(contact)
    propose(client, url, function="Beigeordnete", street="Postfach 1234")
    db.session.expire_all()
    proposal = db.session.scalar(select(ContactProposal))
    assert proposal.state == "offen"
    assert proposal.new == {"function": "Beigeordnete", "organisation.street": "Postfach 1234"}
    assert proposal.old == {"function": "Dezernentin", "organisation.street": "Felix-Fechenbach-Straße 5"}
    assert db.session.get(Contact, contact.id).function == "Dezernentin"  # nothing changed yet
    listed = runner.invoke(args=["recipients", "review"])
    assert listed.exit_code == 0 and "Funktion: Dezernentin → Beigeordnete" in listed.output
    assert listed.output.strip().splitlines()[-1] == "1 offener Vorschlag."

    make_user("admin", "admin@ministerium.example")
    make_user("sachbearbeitung")
    staff = app.test_client()
    staff.login("sachbearbeitung@ministerium.example")
    queue = staff.get("/verteiler/vorschlaege").get_data(as_text=True)
    assert "<del>Dezernentin</del>" in queue and "<ins>Beigeordnete</ins>" in queue
    assert "1 offener Vorschlag" in staff.get("/").get_data(as_text=True)
    before = snapshot()["contacts"], snapshot()["organisations"]
    response = staff.submit(f"/verteiler/vorschlaege/{proposal.id}/ablehnen", {"reason": "Bitte schriftlich."},
                            form_url="/verteiler/vorschlaege")
    assert response.status_code == 302
    db.session.expire_all()
    assert (snapshot()["contacts"], snapshot()["organisations"]) == before
    proposal = db.session.get(ContactProposal, proposal.id)
    assert proposal.state == "abgelehnt" and proposal.reason == "Bitte schriftlich." and proposal.decided_by_id
    assert {"vorschlag.eingegangen", "vorschlag.abgelehnt"} <= set(actions())
    assert "kontakt.geaendert" not in actions()
    # Decided once: a second decision is refused.
    staff.submit(f"/verteiler/vorschlaege/{proposal.id}/uebernehmen", form_url="/verteiler/vorschlaege")
    db.session.expire_all()
    assert db.session.get(ContactProposal, proposal.id).state == "abgelehnt"
    assert "Es liegen keine offenen Vorschläge vor." in staff.get("/verteiler/vorschlaege").get_data(as_text=True)


def test_correction_accepted_updates_the_contact_and_rewrites_waiting_mail(app, client, make_user):
    contact = officer()
    event = new_event()
    events.invite(event, contact_ids=[contact.id])  # a draft: the invitation waits
    db.session.commit()
    waiting = by_kind("einladung")[0]
    assert "Sehr geehrte Frau Muster," in waiting.text
    url = page_url(contact)
    propose(client, url, academic_title="Dr.", phone="05231 62-100", postcode="32758")
    make_user("admin", "admin@ministerium.example")
    make_user("sachbearbeitung")
    staff = app.test_client()
    staff.login("sachbearbeitung@ministerium.example")
    proposal = db.session.scalar(select(ContactProposal))
    response = staff.submit(f"/verteiler/vorschlaege/{proposal.id}/uebernehmen", form_url="/verteiler/vorschlaege")
    assert response.status_code == 302
    db.session.expire_all()
    contact = db.session.get(Contact, contact.id)
    assert (contact.academic_title, contact.phone, contact.organisation.postcode) == ("Dr.", "05231 62-100", "32758")
    assert contact.confirmed_at is not None
    assert db.session.get(ContactProposal, proposal.id).state == "uebernommen"
    assert {"kontakt.geaendert", "kommune.geaendert", "vorschlag.uebernommen"} <= set(actions())
    assert "Sehr geehrte Frau Dr. Muster," in db.session.get(OutboxMessage, waiting.id).text  # contacts_changed


def test_handover_accepted_end_to_end(smtp_app, smtp):
    """The successor is created, gets the Verteiler and a fresh invitation to each coming event the
    predecessor has not answered (sent through aiosmtpd); what still waited for her is withdrawn; an
    answer she gave and past events stay as they are; everything is audited."""
    app = smtp_app
    from ki_post.auth.services import create_user
    from tests.helpers import PASSWORD

    create_user("admin@ministerium.example", "Admin", "admin", PASSWORD)
    create_user("sachbearbeitung@ministerium.example", "Sachbearbeitung", "sachbearbeitung", PASSWORD)
    predecessor = officer()
    colleague = officer("kollege@kreis-lippe.example")
    alle = Verteiler(name="Alle KI-Dezernate", members=[predecessor, colleague])
    fachtag = Verteiler(name="Fachtag", members=[predecessor])
    db.session.add_all([alle, fachtag])
    sent_event = new_event(title="Fachtag Teilhabe")
    waiting_event = new_event(title="Jahrestreffen")
    answered_event = new_event(title="Festakt")
    events.invite(sent_event, contact_ids=[predecessor.id, colleague.id], start=True)
    events.invite(answered_event, contact_ids=[predecessor.id], start=True)
    send(app)
    events.answer(db.session.scalar(select(Invitation).where(Invitation.event_id == answered_event.id)), "zugesagt")
    send(app)  # her confirmation
    events.invite(waiting_event, contact_ids=[predecessor.id], start=True)  # released, not sent yet
    db.session.commit()
    waiting = [m.id for m in by_kind("einladung") if m.state == "wartend"]
    assert len(waiting) == 1
    received_before = len(smtp.handler.received)

    client = app.test_client()
    url = page_url(predecessor)
    response = client.submit(f"{url}/nachfolge", {"first_name": "Max", "last_name": "Nachfolger",
                                                   "email": "Max.Nachfolger@Kreis-Lippe.example",
                                                   "function": "Dezernent für Integration"}, form_url=url)
    assert response.status_code == 302
    db.session.expire_all()
    proposal = db.session.scalar(select(ContactProposal))
    assert proposal.kind == "uebergabe" and db.session.get(Contact, predecessor.id).active  # nothing changed yet
    assert db.session.scalar(select(Contact).where(Contact.email == "max.nachfolger@kreis-lippe.example")) is None

    staff = app.test_client()
    staff.login("sachbearbeitung@ministerium.example")
    queue = staff.get("/verteiler/vorschlaege").get_data(as_text=True)
    assert "<ins>Max Nachfolger</ins>" in queue
    response = staff.submit(f"/verteiler/vorschlaege/{proposal.id}/uebernehmen", form_url="/verteiler/vorschlaege")
    assert response.status_code == 302
    db.session.expire_all()

    successor = db.session.scalar(select(Contact).where(Contact.email == "max.nachfolger@kreis-lippe.example"))
    predecessor = db.session.get(Contact, predecessor.id)
    assert successor.active and successor.organisation_id == predecessor.organisation_id
    assert successor.function == "Dezernent für Integration"
    assert not predecessor.active
    assert {c.id for c in db.session.get(Verteiler, alle.id).members} == {colleague.id, successor.id}
    assert [c.id for c in db.session.get(Verteiler, fachtag.id).members] == [successor.id]
    withdrawn = db.session.get(OutboxMessage, waiting[0])
    assert withdrawn.state == "zurueckgezogen" and "Max Nachfolger" in withdrawn.server_reply
    invited_events = {i.event_id for i in db.session.scalars(select(Invitation).where(Invitation.contact_id == successor.id))}
    assert invited_events == {sent_event.id, waiting_event.id}  # not the event she accepted

    send(app)
    after = smtp.messages()[received_before:]
    assert sorted(m["To"].addresses[0].addr_spec for m in after) == [successor.email, successor.email]
    assert all(method(m) == "REQUEST" for m in after)
    assert {re.search(r"Veranstaltung: (.+)", text(m)).group(1) for m in after} == {"Fachtag Teilhabe", "Jahrestreffen"}
    assert predecessor.email not in [m["To"].addresses[0].addr_spec for m in after]  # nothing more for her
    log = actions()
    for action in ("vorschlag.eingegangen", "kontakt.angelegt", "veranstaltung.uebergeben", "kontakt.uebergeben",
                   "kontakt.deaktiviert", "vorschlag.uebernommen"):
        assert action in log, action
    reminded = {i.email for i in events.reminder_recipients(db.session.get(type(sent_event), sent_event.id))}
    assert reminded == {colleague.email, successor.email}  # no reminder to whom handed over
    # Her link no longer opens her page: she is off the Verteiler.
    assert client.get(url).status_code == 410


def test_handover_reactivates_a_known_successor(app):
    from ki_post.recipients.selfservice import accept, propose_handover

    predecessor = officer()
    known = officer("max@kreis-lippe.example", active=False)
    proposal = propose_handover(predecessor, {"last_name": "Nachfolger", "email": "MAX@kreis-lippe.example"})
    result = accept(proposal)
    db.session.commit()
    assert result.successor.id == known.id and known.active and not predecessor.active
    assert db.session.scalar(select(Contact.id).where(Contact.last_name == "Nachfolger")) is None  # not a second row


def test_yearly_mailing_carries_a_working_personal_link(app, client, runner):
    contact = officer()
    officer("zweite@kreis-lippe.example")
    db.session.add(Verteiler(name="Nur Erika", members=[contact]))
    db.session.commit()
    result = runner.invoke(args=["recipients", "confirm-mailing", "--list", "Nur Erika"])
    assert result.exit_code == 0, result.output
    mailing = db.session.get(Mailing, int(result.output.strip().splitlines()[-1]))
    assert mailing.state == "aktiv" and len(mailing.messages) == 1
    message = mailing.messages[0]
    assert message.subject == "Bitte prüfen Sie Ihre Angaben im Verteiler"
    assert message.to_email == contact.email and "Sehr geehrte Frau Muster," in message.text
    link = re.search(r"Angaben prüfen: http://[^/]+(/angaben/\S+)", message.text).group(1)
    assert link in message.html
    assert client.get(link).status_code == 200
    draft = runner.invoke(args=["recipients", "confirm-mailing", "--entwurf"])
    assert draft.exit_code == 0
    assert db.session.get(Mailing, int(draft.output.strip().splitlines()[-1])).state == "entwurf"
    assert link_token(contact) in link  # the same link in both mails while it is fresh


@pytest.mark.parametrize("kind", ["korrektur", "nachfolge"])
def test_bad_input_is_a_german_message_and_no_proposal(app, client, kind):
    contact = officer()
    url = page_url(contact)
    data = ({"anrede": "frau", "function": "Dezernentin", "phone": "05231 62-0", "postcode": "ABC"} if kind == "korrektur"
            else {"last_name": "Nachfolger", "email": contact.email})
    response = client.submit(f"{url}/{kind}", data, form_url=url)
    assert response.status_code == 422
    assert "Bitte korrigieren Sie" in response.get_data(as_text=True)
    assert db.session.scalar(select(ContactProposal.id)) is None


def test_invitation_template_may_carry_the_personal_link(app, tmp_path, monkeypatch):
    """``{{ angaben_pruefen_link }}`` in an event mail template gives each invited person her own link;
    templates without it make no links at all."""
    import shutil

    from ki_post.outbox import services as outbox

    contact = officer()
    event = new_event()
    events.invite(event, contact_ids=[contact.id])
    db.session.commit()
    assert db.session.scalar(select(ContactLink.id)) is None  # the shipped templates do not use it

    templates = tmp_path / "mail"
    shutil.copytree(outbox.MAIL_TEMPLATE_DIR, templates)
    with (templates / "einladung.txt").open("a") as handle:
        handle.write("\nIhre Angaben prüfen: {{ angaben_pruefen_link }}\n")
    monkeypatch.setattr(outbox, "MAIL_TEMPLATE_DIR", templates)
    monkeypatch.setattr(outbox, "_environments", {})
    other = officer("zweite@kreis-lippe.example")
    events.invite(event, contact_ids=[other.id])
    db.session.commit()
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.to_email == other.email))
    token = re.search(r"Ihre Angaben prüfen: http://\S+/angaben/(\S+)", message.text).group(1)
    assert db.session.scalar(select(ContactLink.contact_id).where(ContactLink.token == token)) == other.id

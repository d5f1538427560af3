"""The bugs of "Veranstaltungen über Wochen", one focused test each (real aiosmtpd, both databases):
what officers' mailboxes get stays true through changes, cancellation, renames and failures."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from email import message_from_bytes, policy

import icalendar
from sqlalchemy import select

from ki_post.events import services
from ki_post.events.models import Event, Invitation
from ki_post.extensions import db
from ki_post.outbox.models import Mailing, OutboxMessage
from ki_post.outbox.worker import Worker
from ki_post.recipients.models import Contact, Organisation
from tests.events.conftest import future
from tests.helpers import claim
from tests.outbox.conftest import smtp, smtp_app  # noqa: F401,F811  (fixtures)


def people(*names: str) -> list[Contact]:
    organisation = db.session.scalar(select(Organisation).where(Organisation.name == "Kreis Lebenslauf"))
    if organisation is None:
        organisation = Organisation(name="Kreis Lebenslauf", kind="kreis")
        db.session.add(organisation)
    contacts = []
    for name in names:
        first, last = name.split()
        contact = Contact(anrede="frau", first_name=first, last_name=last, organisation=organisation,
                          email=f"{first.lower()}.{last.lower()}@kreis.example")
        db.session.add(contact)
        contacts.append(contact)
    db.session.commit()
    return contacts


def new_event(**overrides) -> Event:
    values = dict(title="Fachtag Integration", start=future(30, 10), end=future(30, 12), place_name="Ministerium",
                  room="Raum 101", capacity=None, companions_allowed=1)
    values.update(overrides)
    event = services.create_event(services.EventData(**values))
    db.session.commit()
    return event


def send(app) -> None:
    db.session.commit()
    Worker(app).run(once=True)
    db.session.expire_all()


def mails(smtp, address: str | None = None) -> list:
    found = smtp.messages()
    return [m for m in found if address is None or m["To"].addresses[0].addr_spec == address]


def text(message) -> str:
    return message.get_body(("plain",)).get_content().replace("\r\n", "\n")


def method(message) -> str | None:
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            return str(icalendar.Calendar.from_ical(part.get_payload(decode=True))["METHOD"])
    return None


def by_kind(kind: str) -> list[OutboxMessage]:
    return list(db.session.scalars(select(OutboxMessage).join(Mailing).where(Mailing.kind == kind).order_by(OutboxMessage.id)))


def test_cancel_withdraws_what_waits_and_tells_exactly_who_may_have_it(smtp_app, smtp):
    """Bug: after "Absagen", queued invitations and reminders still went out, and the CANCEL went to
    people who never had the event. Now: withdrawn; CANCEL to sent, in doubt and declined (their
    calendar holds the entry), not to whom the invitation failed or never left."""
    sent_a, sent_b, doubt, failed, queued = people("Anna Eins", "Bert Zwei", "Cora Drei", "Dora Vier", "Emil Fuenf")
    event = new_event()
    smtp.handler.data_replies[failed.email] = "550 5.1.1 Postfach unbekannt"
    services.invite(event, contact_ids=[sent_a.id, sent_b.id, doubt.id, failed.id], start=True)
    send(smtp_app)
    del smtp.handler.data_replies[failed.email]
    doubtful = next(m for m in by_kind("einladung") if m.to_email == doubt.email)
    doubtful.state = "unklar"  # the worker died while sending it
    services.answer(db.session.scalar(select(Invitation).where(Invitation.email == sent_b.email)), "abgesagt")
    services.invite(event, contact_ids=[queued.id], start=True)  # released, not yet sent
    services.send_reminders(event, start=True)  # to the one without an answer, not yet sent
    db.session.commit()
    waiting_before = [m.id for m in db.session.scalars(select(OutboxMessage).where(OutboxMessage.state == "wartend"))]
    assert len(waiting_before) >= 3  # invitation, reminder, confirmation of the decline
    received_before = len(smtp.handler.received)

    result = services.cancel_event(event, "Der Saal ist gesperrt.", start=True)
    db.session.commit()
    assert result.recipients == 3 and result.withdrawn >= 3
    from ki_post.outbox.steering import retry_failed

    assert retry_failed(by_kind("einladung")[0].mailing) == 0  # the failed invitation cannot be sent any more
    send(smtp_app)
    after = smtp.messages()[received_before:]
    assert sorted(m["To"].addresses[0].addr_spec for m in after) == sorted([sent_a.email, sent_b.email, doubt.email])
    assert all(method(m) == "CANCEL" and "Grund: Der Saal ist gesperrt." in text(m) for m in after)
    for message_id in waiting_before:
        withdrawn = db.session.get(OutboxMessage, message_id)
        assert withdrawn.state == "zurueckgezogen" and "abgesagt" in withdrawn.server_reply
    failed_message = next(m for m in by_kind("einladung") if m.to_email == failed.email)
    assert failed_message.state == "zurueckgezogen"  # "Fehlgeschlagene erneut senden" cannot send it any more


def test_change_rewrites_what_waits_and_updates_say_what_changed_for_each(smtp_app, smtp):
    """Bug: after changing time and room, queued invitations and reminders went out with the old ones,
    and the update did not say what changed. Now: waiting mails are written anew; people who had the
    old version get an update naming each change against what they were told; someone never told
    gets the plain current invitation, never a "bisher"."""
    told_a, told_b, waiting = people("Anna Eins", "Bert Zwei", "Cora Drei")
    event = new_event(start=future(30, 10), end=future(30, 12))
    services.invite(event, contact_ids=[told_a.id, told_b.id], start=True)
    send(smtp_app)
    services.invite(event, contact_ids=[waiting.id])  # a draft, waiting for "Senden"
    services.send_reminders(event, start=True)  # queued, not sent
    db.session.commit()

    result = services.update_event(event, services.change_fields(event, start=future(30, 10).replace("T10:00", "T10:30"),
                                                                 end=future(30, 12).replace("T12:00", "T12:30"), room="Saal 2"),
                                   start=True)
    db.session.commit()
    assert result.changed == ["Beginn", "Ende", "Raum"] and result.updates == 2 and result.rewritten == 3
    queued = next(m for m in by_kind("einladung") if m.to_email == waiting.email)
    assert "Zeit: 10:30 bis 12:30 Uhr" in queued.text and queued.revision == 1
    assert int(icalendar.Calendar.from_ical(queued.calendar_data).walk("VEVENT")[0]["SEQUENCE"]) == event.sequence == 1
    assert all("Zeit: 10:30 bis 12:30 Uhr" in m.text for m in by_kind("erinnerung"))
    update = next(m for m in by_kind("aktualisierung") if m.to_email == told_a.email)
    assert "- Neue Uhrzeit: 10:30 Uhr (bisher 10:00 Uhr)" in update.text
    assert "- Neues Ende: 12:30 Uhr (bisher 12:00 Uhr)" in update.text
    assert "- Neuer Ort: Ministerium, Saal 2 (bisher Ministerium, Raum 101)" in update.text
    assert not [m for m in by_kind("aktualisierung") if m.to_email == waiting.email]

    # Before the updates leave, the time goes back: they now only name the room, for what each was told.
    services.update_event(event, services.change_fields(event, start=future(30, 10), end=future(30, 12)), start=True)
    db.session.commit()
    update = db.session.get(OutboxMessage, update.id)
    assert "Uhrzeit" not in update.text and "Ende" not in update.text and "- Neuer Ort: Ministerium, Saal 2" in update.text
    start_mailing_drafts()
    send(smtp_app)
    for message in smtp.messages()[2:]:
        body = text(message)
        assert "10:30" not in body and "Raum 101" not in body.split("bisher")[0]  # nothing superseded went out
        assert "Saal 2" in body
    [plain] = mails(smtp, waiting.email)
    assert method(plain) == "REQUEST" and "bisher" not in text(plain) and plain["Subject"].startswith("Einladung")


def start_mailing_drafts() -> None:
    from ki_post.outbox.services import start_mailing

    for mailing in db.session.scalars(select(Mailing).where(Mailing.state == "entwurf")):
        start_mailing(mailing)
    db.session.commit()


def test_update_planned_on_a_message_in_flight_is_withdrawn_when_it_comes_back(smtp_app, smtp):
    """The invitation was on its way when the event changed, so an update was queued after it. The
    server then answered 451: the invitation comes back, is written anew with the current details,
    and the update (which would say "bisher" about something never received) is withdrawn."""
    [person] = people("Anna Eins")
    event = new_event()
    services.invite(event, contact_ids=[person.id], start=True)
    db.session.commit()
    event_id = event.id
    outcome = {}

    def change_while_in_flight(rcpt: str) -> None:
        if outcome:
            return
        with smtp_app.app_context():
            moving = db.session.get(Event, event_id)
            outcome["result"] = services.update_event(moving, services.change_fields(moving, room="Saal 9"), start=True)
            db.session.commit()

    smtp.handler.on_data = change_while_in_flight
    smtp.handler.temporary_failures[person.email] = 1
    send(smtp_app)
    assert outcome["result"].updates == 1  # the invitation was in flight: it counted as told
    [update] = by_kind("aktualisierung")
    assert update.state == "zurueckgezogen"
    [received] = smtp.messages()
    assert method(received) == "REQUEST" and "Saal 9" in text(received) and received["Subject"].startswith("Einladung")


def test_renamed_by_import_the_event_lists_and_addresses_the_new_name(smtp_app, smtp, staff_client):
    """Bug: after an import renamed a contact, the event still listed and addressed the old name."""
    from ki_post.recipients.importer import apply_import

    sent, waiting = people("Anna Alt", "Berta Alt")
    event = new_event()
    services.invite(event, contact_ids=[sent.id], start=True)
    send(smtp_app)
    services.invite(event, contact_ids=[waiting.id])  # draft
    db.session.commit()
    csv = ("Kommune;Art;Anrede;Vorname;Nachname;E-Mail\n"
           f"Kreis Lebenslauf;Kreis;Frau;Anna;Neu;{sent.email}\n"
           f"Kreis Lebenslauf;Kreis;Frau;Berta;Neumann;{waiting.email}\n").encode()
    result = apply_import(csv, "umbenannt.csv")
    db.session.commit()
    assert result.counts["geaendert"] == 2
    page = staff_client.get(f"/veranstaltungen/{event.id}").get_data(as_text=True)
    assert "Anna Neu" in page and "Berta Neumann" in page and "Anna Alt" not in page and "Berta Alt" not in page
    queued = next(m for m in by_kind("einladung") if m.to_email == waiting.email)
    assert queued.to_name == "Berta Neumann" and queued.text.startswith("Sehr geehrte Frau Neumann,")
    start_mailing_drafts()
    send(smtp_app)
    [mail] = mails(smtp, waiting.email)
    assert mail["To"].addresses[0].display_name == "Berta Neumann"
    assert "Frau Neumann" in text(mail)


def test_repeated_identical_answer_sends_one_confirmation(smtp_app, smtp, client):
    """Finding: five identical submits of the answer page sent five confirmations. Now one, and a
    change before it left rewrites it instead of adding a second."""
    [person] = people("Anna Eins")
    event = new_event()
    services.invite(event, contact_ids=[person.id], start=True)
    send(smtp_app)
    invitation = event.invitations[0]
    url = f"/antwort/{invitation.token}"
    for _ in range(5):
        assert client.submit(url, {"answer": "zugesagt", "companions": "0"}).status_code == 302
    assert len(by_kind("bestaetigung")) == 1
    page = client.get(url).get_data(as_text=True)
    assert "unverändert" in page
    client.submit(url, {"answer": "abgesagt"})
    db.session.expire_all()
    [confirmation] = by_kind("bestaetigung")
    assert "Ihre Antwort: Absage" in confirmation.text and confirmation.revision == 1
    send(smtp_app)
    client.submit(url, {"answer": "abgesagt"})  # the same again after it went out: nothing new
    client.submit(url, {"answer": "zugesagt"})  # a real change: a second confirmation
    assert [m.state for m in by_kind("bestaetigung")] == ["gesendet", "wartend"]


def test_confirmations_share_one_running_mailing_signed_by_the_sender(smtp_app, smtp, client):
    """Bug: every confirmation and move-up mail was its own mailing, signed "KI-Post"."""
    a, b, c = people("Anna Eins", "Bert Zwei", "Cora Drei")
    event = new_event(capacity=2, companions_allowed=0)
    services.invite(event, contact_ids=[a.id, b.id, c.id], start=True)
    send(smtp_app)
    first, second, third = sorted(event.invitations, key=lambda i: i.id)
    for invitation in (first, second, third):
        services.answer(invitation, "zugesagt")
    services.answer(first, "abgesagt")  # third moves up
    db.session.commit()
    kinds = [m.kind for m in db.session.scalars(select(Mailing).where(Mailing.event_id == event.id))]
    assert kinds.count("bestaetigung") == 1 and kinds.count("nachruecker") == 1
    send(smtp_app)
    services.answer(second, "abgesagt")
    db.session.commit()
    assert [m.kind for m in db.session.scalars(select(Mailing))].count("bestaetigung") == 1  # the running one again
    send(smtp_app)
    for message in smtp.messages():
        body, html = text(message), message.get_body(("html",)).get_content()
        assert "KI-Post" not in body and "KI-Post" not in html
        assert "Agnes Heuvelmann\nVeranstaltungsteam, Abteilung IV\nMinisterium für Arbeit, Integration und Soziales" in body
        assert "Veranstaltungsteam, Abteilung IV<br>" in html
    page = client.get(f"/antwort/{first.token}").get_data(as_text=True)
    assert "KI-Post" not in page and "Agnes Heuvelmann" in page and "Veranstaltungsteam, Abteilung IV" in page


def test_one_bad_recipient_is_skipped_the_others_get_theirs(smtp_app, smtp):
    """An address that cannot be sent to, in invite, reminder, update and cancel, and one that becomes
    invalid while a mail waits: recorded for that person ("übersprungen", with the reason), no
    traceback, everybody else's mail goes out."""
    good, other = people("Anna Eins", "Bert Zwei")
    broken = Contact(anrede="herr", first_name="Kai", last_name="Kaputt", email="kai.kaputt@nirgendwo")
    db.session.add(broken)
    db.session.commit()
    event = new_event()
    result = services.invite(event, contact_ids=[good.id, other.id, broken.id], start=True)
    assert (result.invited, result.skipped) == (2, 1)
    [skipped] = [m for m in by_kind("einladung") if m.state == "uebersprungen"]
    assert skipped.to_email == broken.email and skipped.server_reply.startswith("Nachricht nicht erstellt: ")
    # The second person's address breaks while the invitation waits: it is never sent to the old one.
    db.session.execute(Invitation.__table__.update().where(Invitation.email == other.email)
                       .values(email="bert.zwei@kaputt"))
    db.session.expire_all()
    services.update_event(event, services.change_fields(event, room="Saal 3"), start=True)
    db.session.commit()
    assert [m.state for m in by_kind("einladung") if m.to_email == other.email] == ["uebersprungen"]
    send(smtp_app)
    assert [m["To"].addresses[0].addr_spec for m in smtp.messages()] == [good.email]
    reminders = services.send_reminders(event, start=True)
    send(smtp_app)
    cancelled = services.cancel_event(event, "Ausfall", start=True)
    assert reminders.reminded == 1 and cancelled.recipients == 1
    send(smtp_app)
    assert [method(m) for m in smtp.messages()] == ["REQUEST", None, "CANCEL"]


def test_reminders_never_before_the_invitation_went_out(smtp_app, smtp):
    """Bug: "Erinnerung senden" right after inviting queued reminders for people whose invitation had
    not even gone out."""
    a, b = people("Anna Eins", "Bert Zwei")
    event = new_event()
    services.invite(event, contact_ids=[a.id, b.id], start=True)
    db.session.commit()
    assert services.reminder_recipients(event) == []  # queued is not sent
    from tests.outbox.test_topics import busy_prepared_envelope

    worker = Worker(smtp_app)
    worker.heartbeat(force=True)
    in_flight = claim(worker)  # on its way, not yet sent
    db.session.expire_all()
    assert services.reminder_recipients(event) == []
    envelope = busy_prepared_envelope(in_flight)
    worker._record(envelope, "250 2.0.0 Ok")  # the server took it
    db.session.commit()
    db.session.expire_all()
    [reminded] = services.reminder_recipients(event)
    assert reminded.email == envelope.to_addr


def test_answer_page_of_a_cancelled_event_says_so_at_the_top(smtp_app, smtp, client):
    [person] = people("Anna Eins")
    event = new_event()
    services.invite(event, contact_ids=[person.id], start=True)
    send(smtp_app)
    services.cancel_event(event, "Hochwasser im Rheinland", start=True)
    db.session.commit()
    html = client.get(f"/antwort/{event.invitations[0].token}").get_data(as_text=True)
    main = re.search(r"<main.*</main>", html, re.S).group(0)
    assert main.index("Diese Veranstaltung ist abgesagt.") < main.index("Angaben zur Veranstaltung")
    assert "Hochwasser im Rheinland" in main and 'name="answer"' not in main
    posted = client.post(f"/antwort/{event.invitations[0].token}", data={"answer": "zugesagt"})
    assert posted.status_code in (400, 422)


def test_mailing_page_marks_rewritten_messages(smtp_app, smtp, staff_client):
    [person] = people("Anna Eins")
    event = new_event()
    result = services.invite(event, contact_ids=[person.id])
    services.update_event(event, services.change_fields(event, title="Fachtag Teilhabe"))
    db.session.commit()
    page = staff_client.get(f"/postausgang/{result.mailing_id}").get_data(as_text=True)
    assert "Einladung: Fachtag Teilhabe" in page and "aktualisiert" in page


def test_calendar_reply_round_trip_after_an_update(smtp_app, smtp):
    """A real iTIP REPLY from a client that has the updated version lands on that invitation only."""
    from tests.events.calendar_client import Clients

    [person] = people("Anna Eins")
    first, second = new_event(), new_event(title="Zweiter Termin", start=future(31, 10), end=future(31, 12))
    for event in (first, second):
        services.invite(event, contact_ids=[person.id], start=True)
    send(smtp_app)
    services.update_event(first, services.change_fields(first, room="Saal 4"), start=True)
    send(smtp_app)
    clients = Clients()
    clients.deliver(smtp.handler.received)
    box = clients.mailbox(person.email)
    assert box.calendar[first.uid].sequence == 1 and "Saal 4" in box.calendar[first.uid].location
    raw = box.reply(first.uid, "DECLINED", "veranstaltungen@ministerium.example", stamp=datetime.now(timezone.utc))
    [record] = services.apply_reply_mail(raw)
    db.session.commit()
    db.session.expire_all()
    assert record.status == "uebernommen" and record.event_id == first.id
    states = {i.event_id: i.state for i in db.session.scalars(select(Invitation))}
    assert states == {first.id: "abgesagt", second.id: "offen"}
    assert message_from_bytes(raw, policy=policy.default)["From"].addresses[0].addr_spec == person.email


def test_more_seats_move_up_and_a_move_up_mail_not_yet_sent_follows_the_answer(smtp_app, smtp):
    a, b = people("Anna Eins", "Bert Zwei")
    event = new_event(capacity=1, companions_allowed=0)
    services.invite(event, contact_ids=[a.id, b.id], start=True)
    send(smtp_app)
    first, second = event.invitations
    services.answer(first, "zugesagt")
    assert services.answer(second, "zugesagt").state == "warteliste"
    result = services.update_event(event, services.change_fields(event, capacity=2))
    db.session.commit()
    assert result.moved_up == 1 and second.state == "zugesagt"
    [moved] = by_kind("nachruecker")
    assert moved.to_email == second.email and moved.state == "wartend"
    services.answer(second, "abgesagt")  # before the mail left: it would confirm a seat no longer wanted
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(OutboxMessage, moved.id).state == "zurueckgezogen"


def test_nothing_new_goes_to_an_erased_person_and_facts_hold_nothing_personal(smtp_app, smtp):
    """Facts recorded with each mail say what the mail tells about the event, never who it went to; after
    a person is anonymised, a change, a reminder or a cancellation writes them nothing new."""
    from ki_post.recipients.addresses import ANONYMISED_ADDRESS
    from ki_post.recipients.services import anonymise_contact

    kept, erased = people("Anna Eins", "Bert Zwei")
    event = new_event()
    services.invite(event, contact_ids=[kept.id, erased.id], start=True)
    send(smtp_app)
    services.send_reminders(event, start=True)  # waiting for both
    db.session.commit()
    for message in db.session.scalars(select(OutboxMessage)):
        assert not {"Anna", "Bert", "Eins", "Zwei", "kreis.example"} & set(re.split(r"[\s@.]+", str(message.facts)))
    anonymise_contact(db.session.get(Contact, erased.id))
    db.session.commit()
    result = services.update_event(event, services.change_fields(event, room="Saal 5"), start=True)
    db.session.commit()
    assert result.updates == 1
    erased_mails = [m for m in db.session.scalars(select(OutboxMessage)) if m.contact_id == erased.id]
    assert {(m.mailing.kind, m.state) for m in erased_mails} == {("einladung", "gesendet"), ("erinnerung", "zurueckgezogen")}
    assert {m.to_email for m in erased_mails} == {ANONYMISED_ADDRESS}  # scrubbed, see tests/erasure
    assert services.cancel_event(event, "Ausfall", start=True).recipients == 1
    send(smtp_app)
    assert {m["To"].addresses[0].addr_spec for m in smtp.messages()[2:]} == {kept.email}

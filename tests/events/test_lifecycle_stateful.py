"""Events over weeks: random sequences of everything that happens to events, checked against what each
officer's mailbox and calendar show (Hypothesis RuleBasedStateMachine, real aiosmtpd, both databases).

The steps: invite, change (time, end, place, title, description), cancel, remind, answer by link (the
link from a received mail, through the web page), calendar reply (a real iTIP REPLY mail built by the
simulated client and ingested), staff answer, contact rename, a temporary SMTP failure, worker runs
(partial, to completion, killed mid-batch with the message in flight delivered or not, so that it
becomes "unklar"), staff resolving what is in doubt, "Senden" of drafts, and draining the outbox.

The oracle is independent of KI-Post's code: the test's own model of each event (what it asked for),
and per mailbox a simulated calendar client (``tests/events/calendar_client.py``) that applies every
received mail by RFC 5546 rules in arrival order. Invariants, after every step:

1. Once the outbox is drained, every mailbox's calendar equals the event's current state; it has no
   entry when the event is cancelled or the person was never invited (or has an invalid address).
2. No mail carries a detail that was already superseded when it left (calendar part and the facts
   in the text equal the model at the moment of sending), and it addresses the person by their
   current name.
3. Nothing about a cancelled event reaches anybody but its CANCEL.
4. An update never says "bisher" about something the person was not told (what their calendar
   showed, or a message in doubt that may have reached them), names every change, and never goes to
   someone who was told nothing (they get the invitation instead).
5. No reminder reaches anybody before their invitation did.
6. A calendar reply lands only on its own event (matched by UID and attendee), never on another
   event; a reply from an unknown attendee lands nowhere.
7. Seats are never overbooked; a confirmation states the answer as it is when it leaves.
8. One recipient per mail, the mailbox itself as the only ATTENDEE (checked by the client).

Deterministic in CI (derandomized, bounded). Longer locally, e.g.:
``KI_POST_STATEFUL_EXAMPLES=400 KI_POST_STATEFUL_STEPS=60 pytest -s tests/events/test_lifecycle_stateful.py``
(``KI_POST_STATEFUL_RANDOM=1`` explores new random sequences instead of the fixed ones;
``KI_POST_STATEFUL_NO_SHRINK=1`` reports a failing sequence without shortening it first).
"""
from __future__ import annotations

import email
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email import policy
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition, rule,
                                 run_state_machine_as_test)
from sqlalchemy import select, text

from ki_post.errors import ValidationError
from ki_post.events import services
from ki_post.events.models import CalendarReply, Event, Invitation
from ki_post.extensions import db
from ki_post.models import metadata
from ki_post.outbox.models import Mailing, OutboxMessage
from ki_post.outbox.services import start_mailing
from ki_post.outbox.steering import mark_message_sent, resend_message
from ki_post.outbox.worker import Worker
from ki_post.recipients.models import Contact, Organisation
from ki_post.recipients.services import save_contact
from tests.events.calendar_client import Clients, Entry, Mailbox, calendar_of, parse_entry
from tests.helpers import make_app
from tests.outbox.conftest import smtp, smtp_config  # noqa: F401  (fixture)

EXAMPLES = int(os.environ.get("KI_POST_STATEFUL_EXAMPLES", "20"))
STEPS = int(os.environ.get("KI_POST_STATEFUL_STEPS", "40"))
RANDOM = os.environ.get("KI_POST_STATEFUL_RANDOM", "") not in ("", "0", "false")
# Report the first failing sequence as found instead of shortening it (minutes faster when hunting).
NO_SHRINK = os.environ.get("KI_POST_STATEFUL_NO_SHRINK", "") not in ("", "0", "false")
STATS: Counter = Counter()

BERLIN = ZoneInfo("Europe/Berlin")
MONTHS = ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober", "November",
          "Dezember"]
ORGANIZER = "veranstaltungen@ministerium.example"
PEOPLE = [  # (anrede, first name, last name, address); the last address cannot be sent to
    ("frau", "Erika", "Muster", "erika.muster@kreis-a.example"),
    ("herr", "Max", "Beispiel", "max.beispiel@stadt-b.example"),
    ("frau", "Ayşe", "Yılmaz", "ayse.yilmaz@kreis-c.example"),
    ("herr", "Jonas", "Schmidt", "jonas.schmidt@stadt-d.example"),
    ("frau", "Bea", "Kaputt", "bea.kaputt@nirgendwo"),
]
BAD = 4
TITLES = ["Feierstunde", "Fachtag Integration", "Dienstbesprechung der KI", "Fachtag „Teilhabe“; NRW"]
PLACES = ["Ministerium, Raum 101", "Haus der Kommunen", "", "Stadthalle, Saal 2"]
DESCRIPTIONS = ["", "Mit Grußwort der Ministerin.", "Bitte Ausweis mitbringen;\nParken im Hof."]
SURNAMES = ["Neumann", "Özdemir", "Müller-Lüdenscheidt", "Schulz"]
EVENT = st.sampled_from([0, 1])
PERSON = st.sampled_from(range(len(PEOPLE)))


class Killed(BaseException):
    """The worker process dies (SIGKILL) in the middle of a message."""


@dataclass
class Model:
    """What the test asked for: the event as it must be now."""

    uid: str
    title: str
    start: datetime
    end: datetime
    place: str
    description: str
    cancelled: bool = False
    invited: set[int] = field(default_factory=set)

    def facts(self) -> tuple:
        return self.title, self.start, self.end, self.place, self.description


def de_date(value: datetime) -> str:
    local = value.astimezone(BERLIN)
    return f"{local.day}. {MONTHS[local.month - 1]} {local.year}"


def hhmm(value: datetime) -> str:
    return value.astimezone(BERLIN).strftime("%H:%M")


def end_text(start: datetime, end: datetime) -> str:
    if end.astimezone(BERLIN).date() == start.astimezone(BERLIN).date():
        return f"{hhmm(end)} Uhr"
    return f"{de_date(end)}, {hhmm(end)} Uhr"


class StepTransport:
    """The worker's SMTP transport, stopping the run after ``limit`` messages or dying at ``kill_at``."""

    kind = "smtp"

    def __init__(self, real, *, limit: int | None = None, kill_at: int | None = None, delivered: bool = True):
        self.real, self.limit, self.kill_at, self.delivered = real, limit, kill_at, delivered
        self.count = 0
        self.worker: Worker | None = None
        self.undelivered: list[tuple[str, bytes]] = []

    def begin(self, envelope):
        return self.real.begin(envelope)

    def abandon(self, begun) -> None:
        self.real.abandon(begun)

    def reset(self) -> None:
        self.real.reset()

    def close(self) -> None:
        self.real.close()

    def send(self, envelope, data, while_waiting=None, begun=None):
        self.count += 1
        if self.count == self.kill_at:
            if self.delivered:  # the data went out and arrived; the process dies before recording it
                self.real.send(envelope, data, while_waiting, begun)
            else:  # the process dies before the data went out: the server drops the transaction
                if begun is not None:
                    try:
                        begun.result()
                    except Exception:  # noqa: BLE001 - the connection is dropped anyway
                        pass
                self.real.reset()
                self.undelivered.append((envelope.to_addr.lower(), data))
            raise Killed()
        reply = self.real.send(envelope, data, while_waiting, begun)
        if self.limit and self.count >= self.limit:
            self.worker.stop_event.set()
        return reply


class LifecycleMachine(RuleBasedStateMachine):
    def __init__(self, app, smtp_server):
        super().__init__()
        STATS["Beispiele"] += 1
        self.app, self.smtp = app, smtp_server
        _reset_database()
        smtp_server.handler.received.clear()
        smtp_server.handler.temporary_failures.clear()
        self.clients = Clients()
        # Message-ID -> (mailbox, calendar entry) of messages in doubt that never arrived: KI-Post cannot know
        # that, so an update may rightly name their details as what was said before.
        self.in_doubt: dict[str, tuple[str, Entry | None]] = {}
        self.stamp = datetime.now(timezone.utc).replace(microsecond=0)
        organisation = Organisation(name="Kreis Beispiel", kind="kreis")
        db.session.add(organisation)
        self.contacts: list[Contact] = []
        for anrede, first, last, address in PEOPLE:
            contact = Contact(anrede=anrede, first_name=first, last_name=last, email=address, organisation=organisation)
            db.session.add(contact)
            self.contacts.append(contact)
        db.session.flush()
        self.contact_ids = [c.id for c in self.contacts]
        self.names = [f"{first} {last}" for _, first, last, _ in PEOPLE]
        self.last_names = [last for _, _, last, _ in PEOPLE]
        self.models: list[Model] = []  # every event of the example, cancelled ones too
        self.event_ids: list[int] = []
        self.slots = [self.new_event(0), self.new_event(1)]  # the two events the rules work on
        self.steps = 0
        self.client = app.test_client()

    def new_event(self, slot: int) -> int:
        """A new event in the future: slot 0 with 3 seats and one companion each, slot 1 unlimited."""
        capacity, companions = ((3, 1), (None, 0))[slot]
        start = (datetime.now(BERLIN) + timedelta(days=40 + len(self.models))).replace(hour=10, minute=0, second=0,
                                                                                       microsecond=0)
        event = services.create_event(services.EventData(
            title=TITLES[slot], start=start, end=start + timedelta(hours=2), place_name=PLACES[0],
            capacity=capacity, companions_allowed=companions))
        db.session.commit()
        self.event_ids.append(event.id)
        self.models.append(Model(event.uid, event.title, event.start_at, event.end_at, PLACES[0], ""))
        return len(self.models) - 1

    # --- helpers ---------------------------------------------------------------------------------------------

    def event(self, number: int) -> Event:
        db.session.expire_all()
        return db.session.get(Event, self.event_ids[number])

    @initialize(who=st.sets(st.sampled_from(range(BAD)), min_size=2), also=st.sets(st.sampled_from(range(BAD))))
    def invited_and_sent(self, who, also):
        """A usual start: some people already have their invitation, several of them to both events."""
        self.invite(self.slots[0], who, True)
        if also:
            self.invite(self.slots[1], also, True)
        self.work()

    @invariant()
    def count_steps(self):
        self.steps += 1
        STATS["Schritte"] += 1

    @precondition(lambda self: any(self.models[n].cancelled for n in self.slots))
    @rule()
    def plan_a_new_event(self):
        """After a cancellation the secretariat plans the next event in its place."""
        STATS["neue Veranstaltung"] += 1
        slot = next(s for s, n in enumerate(self.slots) if self.models[n].cancelled)
        self.slots[slot] = self.new_event(slot)

    def invitation(self, number: int, person: int) -> Invitation | None:
        return db.session.scalar(select(Invitation).where(Invitation.event_id == self.event_ids[number],
                                                          Invitation.email == PEOPLE[person][3]))

    def mailbox(self, person: int) -> Mailbox:
        return self.clients.mailbox(PEOPLE[person][3])

    def expect_refusal(self, action, number: int) -> bool:
        """A cancelled event refuses every change; True if the action was carried out."""
        if self.models[number].cancelled:
            with pytest.raises(ValidationError):
                action()
            db.session.rollback()
            return False
        action()
        db.session.commit()
        return True

    def change(self, number: int, release: bool, wanted: dict, **values) -> None:
        """Change the event through the service; the model takes the test's own expectation ``wanted``."""
        event = self.event(number)
        model = self.models[number]
        data = services.change_fields(event, **values)
        if self.expect_refusal(lambda: services.update_event(event, data, start=release), number):
            for name, value in wanted.items():
                setattr(model, name, value)
            event = self.event(number)
            assert (event.title, event.start_at, event.end_at, event.location, event.description) == model.facts()

    def event_of(self, received) -> int | None:
        if received.entry is not None:
            return next(n for n, m in enumerate(self.models) if m.uid == received.entry.uid)
        token = re.search(r"/antwort/([A-Za-z0-9_-]+)", received.text)
        if token is None:
            return None
        invitation = db.session.scalar(select(Invitation).where(Invitation.token == token.group(1)))
        assert invitation.email == received.to_address, "Antwortlink einer anderen Person"
        return self.event_ids.index(invitation.event_id)

    # --- the worker and what arrives -------------------------------------------------------------------------

    def work(self, **transport) -> None:
        worker = Worker(self.app)
        step = StepTransport(worker.transport, **transport)
        step.worker = worker
        worker.transport = step
        try:
            worker.run(once=True)
        except Killed:
            for address, data in step.undelivered:
                message = email.message_from_bytes(data, policy=policy.default)
                found = calendar_of(message)
                self.in_doubt[str(message["Message-ID"])] = (address, parse_entry(found[1]) if found else None)
        db.session.expire_all()
        for received in self.clients.deliver(self.smtp.handler.received):
            self.check_mail(received)

    def check_mail(self, received) -> None:
        STATS["Mails geprüft"] += 1
        person = next(p for p, person in enumerate(PEOPLE) if person[3] == received.to_address)
        assert person != BAD, "Mail an eine ungültige Adresse"
        # 2: the current name, in the header and the salutation
        assert received.to_name == self.names[person], (received.to_name, self.names[person])
        assert self.last_names[person] in received.text.splitlines()[0], received.text.splitlines()[0]
        number = self.event_of(received)
        assert number is not None, f"Mail ohne Bezug zu einer Veranstaltung: {received.subject}"
        model = self.models[number]
        # 3: a cancelled event: only its CANCEL
        if model.cancelled:
            assert received.method == "CANCEL", f"nach der Absage noch: {received.subject}"
        elif received.method == "CANCEL":
            raise AssertionError("Absage einer nicht abgesagten Veranstaltung")
        # 2: no superseded detail, in the calendar part and in the text
        if received.entry is not None:
            assert received.entry.facts() == model.facts(), (received.subject, received.entry.facts(), model.facts())
        if "\nDatum: " in received.text:
            lines = set(received.text.splitlines())
            expected = {f"Veranstaltung: {model.title}", f"Datum: {de_date(model.start)}",
                        f"Zeit: {hhmm(model.start)} bis {hhmm(model.end)} Uhr", f"Ort: {model.place or 'keine Angabe'}"}
            assert expected <= lines, (received.subject, expected - lines)
        if received.method == "CANCEL":
            assert f"„{model.title}“ am {de_date(model.start)}" in received.text
        # 4: an update names every change, against what this person was told
        if received.subject.startswith("Geänderte Angaben"):
            self.check_update(received, person, model)
        # 5: no reminder before the invitation
        if received.subject.startswith("Erinnerung"):
            box = self.mailbox(person)
            assert any(r.method == "REQUEST" and r.entry.uid == model.uid for r in box.log[:-1]), "Erinnerung vor Einladung"
        # 7: a confirmation says the answer as it is
        if received.subject.startswith("Ihre Antwort"):
            invitation = self.invitation(number, person)
            assert f"Ihre Antwort: {invitation.state_label}" in received.text

    def check_update(self, received, person: int, model: Model) -> None:
        STATS["Aktualisierungen geprüft"] += 1
        told = [received.before] if received.before is not None else []
        told += [entry for address, entry in self.in_doubt.values()
                 if address == received.to_address and entry is not None and entry.uid == model.uid]
        assert told, "Aktualisierung an jemanden, dem nie etwas mitgeteilt wurde"
        said = {}
        for line in received.text.splitlines():
            found = re.match(r"- (Neuer Titel|Neues Datum|Neue Uhrzeit|Neues Ende|Neuer Ort): (.*) \(bisher (.*)\)$", line)
            if found:
                said[found.group(1)] = (found.group(2), found.group(3))
        old_values = {
            "Neuer Titel": lambda e: f"„{e.summary}“", "Neues Datum": lambda e: de_date(e.start),
            "Neue Uhrzeit": lambda e: f"{hhmm(e.start)} Uhr", "Neues Ende": lambda e: end_text(e.start, e.end),
            "Neuer Ort": lambda e: e.location or "keine Angabe",
        }
        new_values = {
            "Neuer Titel": f"„{model.title}“", "Neues Datum": de_date(model.start), "Neue Uhrzeit": f"{hhmm(model.start)} Uhr",
            "Neues Ende": end_text(model.start, model.end), "Neuer Ort": model.place or "keine Angabe",
        }
        for label, (new, old) in said.items():
            assert new == new_values[label], (label, new, new_values[label])
            assert any(old == old_values[label](entry) for entry in told), f"„bisher {old}“ wurde nie mitgeteilt"
        if len(told) == 1:  # nothing in doubt: exactly what differs from the calendar is named
            before = told[0]
            differs = {label for label, value in old_values.items() if value(before) != new_values[label]}
            assert differs == set(said), (differs, set(said))
            if before.description != model.description:
                assert "Die Beschreibung hat sich geändert" in received.text

    # --- rules: the secretariat ------------------------------------------------------------------------------

    @rule(slot=EVENT, who=st.sets(PERSON, min_size=1, max_size=len(PEOPLE)), release=st.booleans())
    def invite_people(self, slot, who, release):
        self.invite(self.slots[slot], who, release)

    def invite(self, number, who, release):
        STATS["einladen"] += 1
        event = self.event(number)
        ids = [self.contact_ids[p] for p in sorted(who)]
        if self.expect_refusal(lambda: services.invite(event, contact_ids=ids, start=release), number):
            self.models[number].invited |= who

    @rule(number=EVENT, minutes=st.sampled_from([-60, -30, 30, 90, 1440, -1440]), release=st.booleans())
    def move(self, number, minutes, release):
        number = self.slots[number]
        STATS["verschieben"] += 1
        model = self.models[number]
        shift = timedelta(minutes=minutes)
        wanted = {"start": model.start + shift, "end": model.end + shift}
        self.change(number, release, wanted, start=wanted["start"], end=wanted["end"])

    @rule(number=EVENT, minutes=st.sampled_from([60, 120, 1500]), release=st.booleans())
    def change_end(self, number, minutes, release):
        number = self.slots[number]
        STATS["Ende ändern"] += 1
        end = self.models[number].start + timedelta(minutes=minutes)
        self.change(number, release, {"end": end}, end=end)

    @rule(number=EVENT, title=st.sampled_from(TITLES), release=st.booleans())
    def retitle(self, number, title, release):
        number = self.slots[number]
        STATS["Titel ändern"] += 1
        self.change(number, release, {"title": title}, title=title)

    @rule(number=EVENT, place=st.sampled_from(PLACES), release=st.booleans())
    def relocate(self, number, place, release):
        number = self.slots[number]
        STATS["Ort ändern"] += 1
        self.change(number, release, {"place": place}, place_name=place)

    @rule(number=EVENT, description=st.sampled_from(DESCRIPTIONS), release=st.booleans())
    def describe(self, number, description, release):
        number = self.slots[number]
        STATS["Beschreibung ändern"] += 1
        self.change(number, release, {"description": description}, description=description)

    @precondition(lambda self: self.steps >= 6)  # a cancellation ends an event's story: tell some of it first
    @rule(number=EVENT, release=st.booleans())
    def cancel(self, number, release):
        number = self.slots[number]
        STATS["absagen"] += 1
        event = self.event(number)
        if self.expect_refusal(lambda: services.cancel_event(event, "Der Saal ist gesperrt.", start=release), number):
            self.models[number].cancelled = True

    @rule(number=EVENT, include_accepted=st.booleans(), release=st.booleans())
    def remind(self, number, include_accepted, release):
        number = self.slots[number]
        STATS["erinnern"] += 1
        event = self.event(number)
        if self.models[number].cancelled:
            with pytest.raises(ValidationError):
                services.send_reminders(event, include_accepted, start=release, repeat_confirmed=True)
            db.session.rollback()
            return
        expected = services.reminder_recipients(event, include_accepted)
        try:
            result = services.send_reminders(event, include_accepted, start=release, repeat_confirmed=True)
        except ValidationError:
            assert not expected  # nobody whose invitation went out, or nothing published yet
            db.session.rollback()
            return
        db.session.commit()
        assert result.reminded == len(expected)

    @rule()
    def press_send(self):
        """"Senden" on every draft in the Postausgang."""
        STATS["Senden"] += 1
        for mailing in db.session.scalars(select(Mailing).where(Mailing.state == "entwurf")):
            if db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.mailing_id == mailing.id,
                                                                OutboxMessage.state == "wartend").limit(1)):
                start_mailing(mailing)
        db.session.commit()

    @rule(number=EVENT, person=PERSON, state=st.sampled_from(["zugesagt", "abgesagt", "vorlaeufig"]),
          companions=st.sampled_from([0, 1]))
    def staff_answer(self, number, person, state, companions):
        number = self.slots[number]
        STATS["Antwort erfassen"] += 1
        invitation = self.invitation(number, person)
        if invitation is None:
            return
        try:
            services.answer(invitation, state, companions=companions, channel="telefon")
        except ValidationError:
            db.session.rollback()
            return
        db.session.commit()

    @rule(person=st.sampled_from(range(BAD)), surname=st.sampled_from(SURNAMES))
    def rename(self, person, surname):
        """An import or the contact form renames someone: what waits for them uses the new name."""
        STATS["umbenennen"] += 1
        db.session.expire_all()
        contact = db.session.get(Contact, self.contact_ids[person])
        save_contact(contact, {"anrede": contact.anrede, "first_name": contact.first_name, "last_name": surname,
                               "email": contact.email, "organisation_id": contact.organisation_id})
        db.session.commit()
        self.names[person] = f"{contact.first_name} {surname}"
        self.last_names[person] = surname

    @rule()
    def resolve_in_doubt(self):
        """Staff decide each message in doubt as the server log tells: arrived (mark sent) or not (resend;
        refused when a later calendar message made it unnecessary, then marked as sent)."""
        STATS["Unklares klären"] += 1
        for message in db.session.scalars(select(OutboxMessage).where(OutboxMessage.state == "unklar")):
            if message.message_id in self.in_doubt:
                try:
                    resend_message(message)
                except ValidationError as error:
                    assert "neuere Kalendernachricht" in str(error)
                    mark_message_sent(message)
                else:
                    del self.in_doubt[message.message_id]  # known now: not told; it goes out again as it is now
            else:
                mark_message_sent(message)
        db.session.commit()

    # --- rules: the officers ---------------------------------------------------------------------------------

    @rule(number=EVENT, person=PERSON, accept=st.booleans(), companions=st.sampled_from([0, 1]))
    def answer_by_link(self, number, person, accept, companions):
        number = self.slots[number]
        """The officer follows the link of a mail they received and answers on the page."""
        links = [m.group(0) for r in self.mailbox(person).log if self.event_of(r) == number
                 for m in [re.search(r"/antwort/[A-Za-z0-9_-]+", r.text)] if m]
        if not links:
            return
        STATS["Antwort per Link"] += 1
        # Its own application context, as a web process has: its own database session and form tokens.
        with self.app.app_context():
            if self.models[number].cancelled:  # the page says so at the top and offers no form
                page = self.client.get(links[-1]).get_data(as_text=True)
                assert "Diese Veranstaltung ist abgesagt." in page and 'name="answer"' not in page
                return
            response = self.client.submit(links[-1], {"answer": "zugesagt" if accept else "abgesagt",
                                                      "companions": str(companions)})
            assert response.status_code in (302, 422), (response.status_code, response.get_data(as_text=True)[-1500:])
        db.session.expire_all()

    @rule(number=EVENT, person=PERSON, partstat=st.sampled_from(["ACCEPTED", "DECLINED", "TENTATIVE"]),
          stranger=st.booleans())
    def calendar_reply(self, number, person, partstat, stranger):
        number = self.slots[number]
        """Accept/Decline in the calendar program: a real iTIP REPLY mail for the entry the client has."""
        box = self.mailbox(person)
        uid = self.models[number].uid
        if uid not in box.calendar:
            return
        STATS["Kalenderantwort"] += 1
        self.stamp += timedelta(seconds=1)
        attendee = f"unbekannt.{person}@irgendwo.example" if stranger else None
        raw = box.reply(uid, partstat, ORGANIZER, stamp=self.stamp, attendee=attendee)
        before = {i.id: (i.state, i.companions) for i in db.session.scalars(select(Invitation))}
        records = services.apply_reply_mail(raw)
        db.session.commit()
        db.session.expire_all()
        [record] = records
        # 6: the reply lands on its own event and person, or nowhere
        assert record.event_id == self.event_ids[number]
        after = {i.id: (i.state, i.companions) for i in db.session.scalars(select(Invitation))}
        changed = {invitation_id for invitation_id in after if after[invitation_id] != before.get(invitation_id)}
        if stranger:
            assert record.status == "unzugeordnet" and record.invitation_id is None and not changed
            return
        own = self.invitation(number, person)
        assert record.invitation_id == own.id and changed <= {own.id} | self._moved_up(number)
        if record.status == "uebernommen":
            wanted = {"ACCEPTED": ("zugesagt", "warteliste"), "DECLINED": ("abgesagt",), "TENTATIVE": ("vorlaeufig",)}
            assert own.state in wanted[partstat]
        else:
            assert own.id not in changed

    def _moved_up(self, number: int) -> set[int]:
        return {i.id for i in db.session.scalars(select(Invitation).where(
            Invitation.event_id == self.event_ids[number], Invitation.state == "zugesagt"))}

    # --- rules: the machine room -----------------------------------------------------------------------------

    @rule(limit=st.integers(1, 3))
    def work_partly(self, limit):
        STATS["Versand teilweise"] += 1
        self.work(limit=limit)

    @rule()
    def work_all(self):
        STATS["Versand vollständig"] += 1
        self.work()

    @rule(at=st.integers(1, 3), delivered=st.booleans())
    def work_killed(self, at, delivered):
        STATS["Versand abgestürzt"] += 1
        self.work(kill_at=at, delivered=delivered)

    @rule(person=st.sampled_from(range(BAD)))
    def server_busy(self, person):
        """The mail server answers 451 to the next delivery for this person."""
        STATS["SMTP 451"] += 1
        self.smtp.handler.temporary_failures[PEOPLE[person][3]] = 1

    @rule()
    def drain(self):
        STATS["Postausgang geleert"] += 1
        self.drain_and_compare()

    def drain_and_compare(self) -> None:
        for _ in range(6):
            self.press_send()
            self.work()
            self.resolve_in_doubt()
            busy = db.session.scalar(select(OutboxMessage.id).join(Mailing).where(
                OutboxMessage.state.in_(("in_arbeit", "unklar")) |
                ((OutboxMessage.state == "wartend") & (Mailing.state.in_(("aktiv", "entwurf"))))).limit(1))
            if busy is None:
                break
        else:
            raise AssertionError("Der Postausgang wird nicht leer")
        # 1: every calendar equals the event as it is now
        for model in self.models:
            for person in range(len(PEOPLE)):
                entry = self.mailbox(person).calendar.get(model.uid)
                if model.cancelled or person not in model.invited or person == BAD:
                    assert entry is None, (PEOPLE[person][3], model.title, model.cancelled)
                else:
                    assert entry is not None, (PEOPLE[person][3], model.title, "fehlt im Kalender")
                    assert entry.facts() == model.facts(), (PEOPLE[person][3], entry.facts(), model.facts())
        STATS["Kalender verglichen"] += 1

    # --- invariants -----------------------------------------------------------------------------------------

    @invariant()
    def seats_never_overbooked(self):
        db.session.expire_all()
        for number, event_id in enumerate(self.event_ids):
            event = db.session.get(Event, event_id)
            if event.capacity is None:
                continue
            seats = sum(1 + i.companions for i in event.invitations if i.state == "zugesagt")
            assert seats <= event.capacity, (event.title, seats, event.capacity)

    @invariant()
    def replies_only_on_their_events(self):
        for record in db.session.scalars(select(CalendarReply).where(CalendarReply.invitation_id.is_not(None))):
            invitation = db.session.get(Invitation, record.invitation_id)
            event = db.session.get(Event, invitation.event_id)
            assert event.uid == record.uid and invitation.email == record.attendee_email

    def teardown(self):
        try:
            self.drain_and_compare()
        finally:
            db.session.rollback()


def _reset_database() -> None:
    db.session.rollback()
    if db.engine.dialect.name == "postgresql":
        names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
        db.session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        for table in reversed(metadata.sorted_tables):
            db.session.execute(table.delete())
    db.session.commit()


@pytest.fixture
def lifecycle_app(tmp_path, backend, smtp):
    app = make_app(tmp_path, backend, **smtp_config(smtp.port, MAIL_DEFAULT_SENDER=f"MKJFGFI NRW – Veranstaltungen <{ORGANIZER}>",
                                                    MAIL_RETRY_BASE_SECONDS=0.01, REMINDER_WARN_HOURS=0))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def test_events_over_weeks_stateful(lifecycle_app, smtp):
    STATS.clear()
    run_state_machine_as_test(
        lambda: LifecycleMachine(lifecycle_app, smtp),
        settings=settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, derandomize=not RANDOM,
                          database=None, suppress_health_check=list(HealthCheck), print_blob=True,
                          phases=[phase for phase in Phase if not (NO_SHRINK and phase is Phase.shrink)]),
    )
    print(f"\nZustandsautomat ({lifecycle_app.config['SQLALCHEMY_DATABASE_URI'].split(':')[0]}): "
          + ", ".join(f"{name}: {count}" for name, count in sorted(STATS.items())))
    # The run must have exercised the hard parts, or it proved nothing.
    for step in ("Versand abgestürzt", "Kalenderantwort", "Aktualisierungen geprüft", "absagen", "Kalender verglichen"):
        assert STATS[step] > 0, f"„{step}“ kam in keinem Beispiel vor"

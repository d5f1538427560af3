"""The mails of an event (invitation, update, cancellation, reminder, confirmation, moving up): what
they say, rendered from the event and the contact as they are at this moment, and queued in the
outbox with the facts they tell, so that later changes can tell each person what changed for them.

Each message to an invited person has the topic ``veranstaltung-<event>/einladung-<invitation>``: the
outbox sends one person's messages about one event in the order they were queued.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from jinja2 import TemplateError
from sqlalchemy import select

from ..formatting import BERLIN, anzahl, datum, datum_zeit, zeit
from ..errors import KiPostError, ValidationError
from ..extensions import db
from ..outbox import services as outbox
from ..outbox.models import Mailing, MailingState, MessageState, OutboxMessage
from ..recipients.models import Contact
from ..recipients.selfservice import LazyLink
from . import ical
from .models import Event, Invitation, InvitationState
from .questions import answer_text, questions_of

RSVP_PATH = "/antwort/"
# Kinds whose mail carries the personal link: a template without it must not be sent at all.
NEEDS_LINK = ("einladung", "aktualisierung", "erinnerung")
MAILING_TITLES = {
    "einladung": "Einladung", "aktualisierung": "Aktualisierung", "erinnerung": "Erinnerung", "absage": "Absage",
    "bestaetigung": "Bestätigungen", "nachruecker": "Nachrücker",
}
# Kinds that confirm what a person said: they list the answers to the event's questions (a written
# record of the booked workshop).
LISTS_ANSWERS = ("bestaetigung", "nachruecker")
_TOPIC = re.compile(r"^veranstaltung-(\d+)/einladung-(\d+)$")


class TemplateProblem(ValidationError):
    """The mail template itself cannot be used: nothing is sent to anybody."""


def rsvp_link(invitation: Invitation) -> str:
    return current_app.config["BASE_URL"].rstrip("/") + RSVP_PATH + invitation.token


def topic_for(invitation: Invitation) -> str:
    return f"veranstaltung-{invitation.event_id}/einladung-{invitation.id}"


def invitation_id_of(topic: str | None) -> int | None:
    found = _TOPIC.match(topic or "")
    return int(found.group(2)) if found else None


# --- What a calendar shows ------------------------------------------------------------------------------

@dataclass(frozen=True)
class EventFacts:
    """What an invited person's calendar shows of an event (the personal link aside)."""

    title: str
    start: datetime
    end: datetime
    location: str
    description: str

    @classmethod
    def of(cls, event: Event) -> EventFacts:
        return cls(event.title, event.start_at, event.end_at, event.location, event.description)

    def to_json(self) -> dict[str, str]:
        return {"title": self.title, "start": self.start.isoformat(), "end": self.end.isoformat(),
                "location": self.location, "description": self.description}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> EventFacts | None:
        if not data or "start" not in data:
            return None
        return cls(data.get("title", ""), datetime.fromisoformat(data["start"]), datetime.fromisoformat(data["end"]),
                   data.get("location", ""), data.get("description", ""))


def _local_day(value: datetime):
    return value.astimezone(BERLIN).date()


def _end_text(facts: EventFacts) -> str:
    same_day = _local_day(facts.end) == _local_day(facts.start)
    return f"{zeit(facts.end)} Uhr" if same_day else datum_zeit(facts.end)


def changes(told: EventFacts, now: EventFacts) -> list[str]:
    """What changed between what a person was told and what is true now, in words, each new value with
    the old one ("Neue Uhrzeit: 10:30 Uhr (bisher 10:00 Uhr)")."""
    lines = []
    if now.title != told.title:
        lines.append(f"Neuer Titel: „{now.title}“ (bisher „{told.title}“)")
    if _local_day(now.start) != _local_day(told.start):
        lines.append(f"Neues Datum: {datum(now.start)} (bisher {datum(told.start)})")
    if zeit(now.start) != zeit(told.start):
        lines.append(f"Neue Uhrzeit: {zeit(now.start)} Uhr (bisher {zeit(told.start)} Uhr)")
    if _end_text(now) != _end_text(told):
        lines.append(f"Neues Ende: {_end_text(now)} (bisher {_end_text(told)})")
    if now.location != told.location:
        lines.append(f"Neuer Ort: {now.location or 'keine Angabe'} (bisher {told.location or 'keine Angabe'})")
    if now.description != told.description:
        lines.append("Die Beschreibung hat sich geändert (die neue Fassung steht unten).")
    return lines


# --- Who is written to -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Recipient:
    name: str
    email: str
    organisation: str
    anrede: str


def reachable(invitation: Invitation) -> bool:
    """Whether mail may still go to this person: not erased (contact deleted or anonymised)."""
    if invitation.contact_id is None:
        return False
    contact = db.session.get(Contact, invitation.contact_id)
    return contact is not None and contact.anonymised_at is None


def recipient(invitation: Invitation) -> Recipient:
    """The person as the Verteiler knows them now (copies in the invitation only once the contact is
    gone or anonymised)."""
    contact = db.session.get(Contact, invitation.contact_id) if invitation.contact_id else None
    if contact is None or contact.anonymised_at is not None:
        return Recipient(invitation.name, invitation.email, invitation.organisation_name, "Sehr geehrte Damen und Herren,")
    organisation = contact.organisation.name if contact.organisation else invitation.organisation_name
    return Recipient(contact.full_name or invitation.name, invitation.email, organisation, _anrede(contact))


def _anrede(contact: Contact) -> str:
    try:
        from ..recipients.addressing import salutation

        return salutation(contact)
    except Exception:  # noqa: BLE001 - a salutation must never block a mail; the neutral one is always right
        return "Sehr geehrte Damen und Herren,"


def _signature() -> list[str]:
    from ..letters.services import signature_lines

    return signature_lines()


# --- Rendering --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EventMail:
    """One mail, ready for the outbox: content, calendar part, and the facts it tells."""

    to_email: str
    to_name: str
    subject: str
    text: str
    html: str | None
    calendar: outbox.CalendarPart | None
    facts: dict[str, Any]
    expires_at: datetime | None


def _calendar_event(event: Event, invitation: Invitation) -> ical.CalendarEvent:
    description = event.description
    description = (description + "\n\n" if description else "") + f"Ihre Antwort: {rsvp_link(invitation)}"
    return ical.CalendarEvent(
        uid=event.uid, sequence=event.sequence, summary=event.title, start=event.start_at, end=event.end_at,
        organizer_email=event.organizer_email, organizer_name=event.organizer_name, description=description,
        location=event.location, url=rsvp_link(invitation),
    )


def given_answers(invitation: Invitation) -> list[tuple[str, str]]:
    """(question, answer in words) for each of the event's questions the person answered, in their order."""
    return [(question.label, text) for question in questions_of(invitation.event_id)
            if (text := answer_text(question, (invitation.answers or {}).get(str(question.id))))]


def render(kind: str, event: Event, invitation: Invitation, *, told: EventFacts | None = None,
           audience: tuple[str, ...] = ()) -> EventMail:
    """The mail of ``kind`` for one invited person, true as of now. ``told``: what an update compares
    with; ``audience``: the answers a reminder was meant for."""
    person = recipient(invitation)
    facts_now = EventFacts.of(event)
    changed = changes(told, facts_now) if told is not None else []
    signature = _signature()
    # What the mail tells about the event and the answer; nothing personal (name and address are in
    # the message's own columns, which erasing a person scrubs).
    facts: dict[str, Any] = {
        "kind": kind, "uid": event.uid, "sequence": event.sequence, **facts_now.to_json(),
        "deadline": event.deadline.isoformat() if event.deadline else "", "state": invitation.state,
        "companions": invitation.companions if invitation.state == InvitationState.ZUGESAGT else 0,
    }
    if kind == "aktualisierung":
        facts["changes"] = changed
    if kind == "erinnerung":
        facts["audience"] = list(audience)
    if kind == "absage":
        facts["reason"] = event.cancel_reason
    context = {
        "event": {"title": event.title, "description": event.description, "place_name": event.place_name,
                  "place_address": event.place_address, "room": event.room, "location": event.location},
        "datum": datum(event.start_at), "beginn": zeit(event.start_at), "ende": zeit(event.end_at),
        "frist": datum_zeit(event.deadline) if event.deadline else "",
        "name": person.name, "organisation": person.organisation, "anrede": person.anrede, "link": rsvp_link(invitation),
        "absender": "\n".join(signature), "absender_zeilen": signature,
        "status": InvitationState.label_of(invitation.state), "begleitpersonen": facts["companions"],
        "begleitpersonen_text": anzahl(facts["companions"], "Begleitperson", "Begleitpersonen"),
        "antworten": given_answers(invitation) if kind in LISTS_ANSWERS else [],
        "aenderungen": changed, "grund": event.cancel_reason,
        # Shown only where the template uses it ("Angaben prüfen"); the link is made on first use.
        "angaben_pruefen_link": LazyLink(db.session.get(Contact, invitation.contact_id) if invitation.contact_id else None),
    }
    try:
        rendered = outbox.render_mail(kind, context)
    except ValidationError as error:
        if error.field == "kind":
            raise TemplateProblem(str(error), "template") from None
        raise
    if kind in NEEDS_LINK and rsvp_link(invitation) not in rendered.text:
        raise TemplateProblem(f"Die Mailvorlage „{kind}“ enthält den persönlichen Antwortlink nicht ({{{{ link }}}}). "
                              "Es wurde nichts versendet.", "template")
    calendar = None
    if kind in ("einladung", "aktualisierung", "absage"):
        attendee = ical.Attendee(invitation.email, person.name)
        builder = ical.build_cancel if kind == "absage" else ical.build_request
        calendar = outbox.CalendarPart("CANCEL" if kind == "absage" else "REQUEST",
                                       builder(_calendar_event(event, invitation), attendee))
    expires_at = {"erinnerung": event.start_at, "einladung": event.end_at, "aktualisierung": event.end_at}.get(kind)
    return EventMail(invitation.email, person.name, rendered.subject, rendered.text, rendered.html, calendar, facts,
                     expires_at)


# Problems of one recipient: the mail for this person cannot be built, everybody else's can.
RECIPIENT_PROBLEMS = (KiPostError, ical.ICalError, TemplateError, ValueError, TypeError, LookupError)


def problem_text(error: Exception) -> str:
    return f"Nachricht nicht erstellt: {error}"


def queue(mailing: Mailing, kind: str, event: Event, invitation: Invitation, *, told: EventFacts | None = None,
          audience: tuple[str, ...] = (), attachments=()) -> OutboxMessage | None:
    """Render and enqueue one mail; a problem of this one recipient is recorded in the mailing
    (``skip_recipient``) and None returned, so that the others still get theirs."""
    try:
        mail = render(kind, event, invitation, told=told, audience=audience)
        return outbox.enqueue(mailing, to_email=mail.to_email, to_name=mail.to_name, contact_id=invitation.contact_id,
                              subject=mail.subject, text=mail.text, html=mail.html, calendar=mail.calendar,
                              attachments=attachments, topic=topic_for(invitation), facts=mail.facts,
                              expires_at=mail.expires_at)
    except TemplateProblem:
        raise
    except RECIPIENT_PROBLEMS as error:
        outbox.skip_recipient(mailing, to_email=invitation.email, to_name=invitation.name,
                              contact_id=invitation.contact_id, reason=problem_text(error))
        return None


# --- Mailings ---------------------------------------------------------------------------------------------

def _title(kind: str, event: Event) -> str:
    return f"{MAILING_TITLES.get(kind, kind)}: {event.title}"[:300]


def draft_mailing(event: Event, kind: str, created_by_id: int | None = None) -> Mailing:
    """The event's draft of this kind (one at a time: a second invite adds to the draft not yet sent)."""
    found = db.session.scalar(select(Mailing).where(Mailing.event_id == event.id, Mailing.kind == kind,
                                                    Mailing.state == MailingState.ENTWURF).order_by(Mailing.id.desc()).limit(1))
    return found or outbox.create_mailing(kind, _title(kind, event), created_by_id=created_by_id, event_id=event.id)


def queue_running(kind: str, event: Event, invitation: Invitation) -> OutboxMessage | None:
    """Single mails that go out at once (confirmations, moving up) share one running mailing per event
    and kind, instead of one mailing per mail."""
    mailing = db.session.scalar(select(Mailing).where(
        Mailing.event_id == event.id, Mailing.kind == kind, Mailing.state.in_(MailingState.RELEASED))
        .order_by(Mailing.id.desc()).limit(1))
    fresh = mailing is None
    if fresh:
        mailing = outbox.create_mailing(kind, _title(kind, event), event_id=event.id)
    message = queue(mailing, kind, event, invitation, attachments=_checkin_code(kind, invitation))
    if fresh:
        outbox.start_mailing(mailing, allow_empty=True)
    return message


def _checkin_code(kind: str, invitation: Invitation) -> tuple:
    """A confirmation of a Zusage (and the mail of moving up) carries the personal check-in QR code."""
    from .attendance import qr_attachment

    found = qr_attachment(invitation) if kind in ("bestaetigung", "nachruecker") else None
    return (found,) if found is not None else ()


def release(mailing: Mailing | None) -> None:
    """Send a draft at once (CLI without --entwurf) if it holds anything to send."""
    if mailing is not None and mailing.state == MailingState.ENTWURF:
        db.session.flush()
        waiting = db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.mailing_id == mailing.id,
                                                                   OutboxMessage.state == MessageState.WARTEND).limit(1))
        if waiting is not None:
            outbox.start_mailing(mailing)



def event_mailings(event: Event, states: tuple[str, ...] = ("entwurf",)) -> list[tuple[Mailing, int]]:
    """The event's mailings in these states (default: drafts waiting for "Senden"), with their message counts."""
    from sqlalchemy import func

    rows = db.session.execute(
        select(Mailing, func.count(OutboxMessage.id)).outerjoin(OutboxMessage, OutboxMessage.mailing_id == Mailing.id)
        .where(Mailing.event_id == event.id, Mailing.state.in_(states)).group_by(Mailing.id).order_by(Mailing.id))
    return [(mailing, count) for mailing, count in rows]


def sender_lines() -> list[str]:
    """Who signs the public answer page (and the mails)."""
    return _signature()

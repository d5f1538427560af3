"""Events, invitations and answers. Functions flush, never commit; callers commit."""
from __future__ import annotations

import secrets
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.orm import joinedload

from ..auth.services import audit
from ..core.formatting import BERLIN, anzahl, datum, datum_zeit, zeit
from ..db_types import utcnow
from ..errors import NotFound, ValidationError
from ..extensions import db
from ..recipients.models import Contact
from . import ical
from .models import CHANNELS, CalendarReply, Event, Invitation
from .replies import ParsedReply, parse_mail

RSVP_PATH = "/antwort/"
ANSWER_STATES = ("accepted", "declined", "tentative")
MAX_COMPANIONS = 20


# --- Events ---------------------------------------------------------------------------------------------

# (nominative, accusative) for the messages "Der Beginn ist …" and "Bitte geben Sie den Beginn an."
_TIME_LABELS = {"start": ("Der Beginn", "den Beginn"), "end": ("Das Ende", "das Ende"),
                "deadline": ("Die Antwortfrist", "die Antwortfrist")}


def parse_local(value: str | datetime | None, field_name: str, *, required: bool = True) -> datetime | None:
    """'2017-02-08T11:00', '08.02.2017 11:00' or a datetime, read as Europe/Berlin, returned UTC."""
    nominative, accusative = _TIME_LABELS[field_name]
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValidationError(f"Bitte geben Sie {accusative} an.", field_name)
        return None
    if isinstance(value, datetime):
        local = value
    else:
        text = value.strip()
        local = None
        for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%d.%m.%Y %H:%M", "%d.%m.%Y, %H:%M", "%Y-%m-%dT%H:%M:%S"):
            try:
                local = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        if local is None:
            raise ValidationError(f"{nominative} ist kein gültiger Zeitpunkt "
                                  "(Beispiel: 2017-02-08T11:00 oder 08.02.2017 11:00).", field_name)
    if local.tzinfo is None:
        local = local.replace(tzinfo=BERLIN)
    utc = local.astimezone(timezone.utc)
    # zoneinfo silently shifts a wall-clock time inside the spring gap by an hour; say so instead.
    if local.tzinfo is BERLIN and utc.astimezone(BERLIN).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise ValidationError(f"Die Uhrzeit {local:%H:%M} Uhr gibt es am {local:%d.%m.%Y} nicht: An diesem Tag wird die Uhr "
                              "für die Sommerzeit eine Stunde vorgestellt (Zeitumstellung). "
                              f"Bitte wählen Sie für {accusative} eine andere Uhrzeit.", field_name)
    return utc


@dataclass
class EventData:
    title: str
    start: str | datetime
    end: str | datetime
    place_name: str = ""
    place_address: str = ""
    room: str = ""
    description: str = ""
    deadline: str | datetime | None = None
    capacity: int | None = None
    companions_allowed: int = 0
    ask_remarks: bool = True
    ask_dietary: bool = False


def _clean(value: str | None, limit: int, field_name: str, label: str) -> str:
    value = (value or "").strip()
    if len(value) > limit:
        raise ValidationError(f"{label} darf höchstens {limit} Zeichen lang sein.", field_name)
    return value


def _validated(data: EventData) -> dict[str, Any]:
    title = _clean(data.title, 200, "title", "Der Titel")
    if not title:
        raise ValidationError("Bitte geben Sie einen Titel an.", "title")
    if "\n" in title or "\r" in title:
        raise ValidationError("Der Titel darf keinen Zeilenumbruch enthalten.", "title")
    start = parse_local(data.start, "start")
    end = parse_local(data.end, "end")
    if end <= start:
        raise ValidationError("Das Ende muss nach dem Beginn liegen.", "end")
    deadline = parse_local(data.deadline, "deadline", required=False)
    if deadline and deadline > end:
        raise ValidationError("Die Antwortfrist muss vor dem Ende der Veranstaltung liegen.", "deadline")
    capacity = data.capacity
    if capacity is not None and (capacity < 1 or capacity > 100000):
        raise ValidationError("Die Zahl der Plätze muss zwischen 1 und 100.000 liegen (leer = unbegrenzt).", "capacity")
    companions = int(data.companions_allowed or 0)
    if companions < 0 or companions > MAX_COMPANIONS:
        raise ValidationError(f"Begleitpersonen: 0 bis {MAX_COMPANIONS}.", "companions_allowed")
    return {
        "title": title,
        "start_at": start,
        "end_at": end,
        "place_name": _clean(data.place_name, 200, "place_name", "Der Ort"),
        "place_address": _clean(data.place_address, 300, "place_address", "Die Anschrift"),
        "room": _clean(data.room, 100, "room", "Der Raum"),
        "description": _clean(data.description, 10000, "description", "Die Beschreibung"),
        "deadline": deadline,
        "capacity": capacity,
        "companions_allowed": companions,
        "ask_remarks": bool(data.ask_remarks),
        "ask_dietary": bool(data.ask_dietary),
    }


def create_event(data: EventData) -> Event:
    values = _validated(data)
    organizer_email, organizer_name = ical.organizer_from_sender(current_app.config["MAIL_DEFAULT_SENDER"])
    event = Event(**values, organizer_email=organizer_email, organizer_name=organizer_name, uid=ical.new_uid(), sequence=0)
    db.session.add(event)
    db.session.flush()
    audit("veranstaltung.angelegt", event)
    return event


SIGNIFICANT = ("start_at", "end_at", "place_name", "place_address", "room")


def update_event(event: Event, data: EventData) -> bool:
    """Returns True when a published event changed time or place: an update mail is then offered."""
    if event.state == "cancelled":
        raise ValidationError("Eine abgesagte Veranstaltung kann nicht mehr geändert werden.")
    values = _validated(data)
    significant = any(getattr(event, name) != values[name] for name in SIGNIFICANT)
    for name, value in values.items():
        setattr(event, name, value)
    if significant and event.state == "published" and any(i.invited_at for i in event.invitations):
        event.update_pending = True
    db.session.flush()
    audit("veranstaltung.geaendert", event, wesentlich=significant)
    return event.update_pending


def get_event(event_id: int) -> Event:
    event = db.session.get(Event, event_id)
    if event is None:
        raise NotFound("Diese Veranstaltung gibt es nicht.")
    return event


def list_events() -> list[Event]:
    return list(db.session.scalars(select(Event).order_by(Event.start_at.desc())))


def publish_event(event: Event) -> None:
    if event.state == "cancelled":
        raise ValidationError("Die Veranstaltung ist abgesagt.")
    event.state = "published"
    db.session.flush()
    audit("veranstaltung.veroeffentlicht", event)


# --- Mail -----------------------------------------------------------------------------------------------

def rsvp_link(invitation: Invitation) -> str:
    return current_app.config["BASE_URL"].rstrip("/") + RSVP_PATH + invitation.token


def mail_context(event: Event, invitation: Invitation) -> dict[str, Any]:
    return {
        "event": {
            "title": event.title,
            "description": event.description,
            "place_name": event.place_name,
            "place_address": event.place_address,
            "room": event.room,
            "location": event.location,
        },
        "datum": datum(event.start_at),
        "beginn": zeit(event.start_at),
        "ende": zeit(event.end_at),
        "frist": datum_zeit(event.deadline) if event.deadline else "",
        "name": invitation.name,
        "organisation": invitation.organisation_name,
        "link": rsvp_link(invitation),
        "anrede": _anrede(invitation),
        "absender": event.organizer_name or current_app.config["APP_NAME"],
        "status": invitation.state_label,
        "begleitpersonen": invitation.companions,
        "app_name": current_app.config["APP_NAME"],
    }


def _anrede(invitation: Invitation) -> str:
    contact = db.session.get(Contact, invitation.contact_id) if invitation.contact_id else None
    if contact is not None:
        try:
            from ..recipients.addressing import salutation

            return salutation(contact)
        except Exception:  # a salutation must never block an invitation
            pass
    return "Sehr geehrte Damen und Herren,"


def _calendar_event(event: Event, invitation: Invitation) -> ical.CalendarEvent:
    description = event.description
    description = (description + "\n\n" if description else "") + f"Ihre Antwort: {rsvp_link(invitation)}"
    return ical.CalendarEvent(
        uid=event.uid,
        sequence=event.sequence,
        summary=event.title,
        start=event.start_at,
        end=event.end_at,
        organizer_email=event.organizer_email,
        organizer_name=event.organizer_name,
        description=description,
        location=event.location,
        url=rsvp_link(invitation),
    )


def _enqueue_for(mailing, kind: str, event: Event, invitation: Invitation, *, calendar: str | None = None,
                 attachments=(), require_link: bool = False) -> None:
    from ..outbox import services as outbox

    rendered = outbox.render_mail(kind, mail_context(event, invitation))
    if require_link and rsvp_link(invitation) not in rendered.text:
        raise ValidationError(
            f"Die Mailvorlage „{kind}“ enthält den persönlichen Antwortlink nicht ({{{{ link }}}}). Es wurde nichts versendet."
        )
    part = None
    if calendar:
        attendee = ical.Attendee(invitation.email, invitation.name)
        builder = ical.build_cancel if calendar == "CANCEL" else ical.build_request
        part = outbox.CalendarPart(calendar, builder(_calendar_event(event, invitation), attendee))
    outbox.enqueue(
        mailing,
        to_email=invitation.email,
        to_name=invitation.name,
        contact_id=invitation.contact_id,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        attachments=attachments,
        calendar=part,
    )


def _mailing(kind: str, title: str, event: Event, created_by_id: int | None = None):
    from ..outbox import services as outbox

    return outbox.create_mailing(kind, title, created_by_id=created_by_id, event_id=event.id)


def _start(mailing) -> None:
    """Event mails go out at once: the count was shown before the button was pressed."""
    from ..outbox import services as outbox

    outbox.start_mailing(mailing)


# --- Invitations ----------------------------------------------------------------------------------------

def _contacts(verteiler_id: int | None, contact_ids: list[int] | None) -> list[Contact]:
    from ..recipients.services import resolve_recipients

    return list(resolve_recipients(verteiler_id=verteiler_id, contact_ids=contact_ids or ()))


def verteiler_id_by_name(name: str) -> int:
    from ..recipients.services import verteiler_by_name

    return verteiler_by_name(name).id


def add_invitations(event: Event, contacts: list[Contact]) -> list[Invitation]:
    """Creates missing invitations (one per e-mail address); existing ones are kept as they are."""
    existing = {i.email for i in event.invitations}
    created = []
    for contact in contacts:
        email = (contact.email or "").strip().lower()
        if not email or email in existing or contact.anonymised_at is not None:
            continue
        existing.add(email)
        invitation = Invitation(
            event=event,
            contact_id=contact.id,
            name=contact.full_name,
            email=email,
            organisation_name=contact.organisation.name if contact.organisation else "",
            token=secrets.token_urlsafe(32),
        )
        db.session.add(invitation)
        created.append(invitation)
    db.session.flush()
    return created


def _is_docx(data: bytes) -> bool:
    import io
    import zipfile

    try:
        return "word/document.xml" in zipfile.ZipFile(io.BytesIO(data)).namelist()
    except zipfile.BadZipFile:
        return False


def circular_attachment(filename: str, data: bytes):
    """The optional circular attached to invitations: PDF or DOCX only, checked by content, not by name."""
    import re as _re

    from ..outbox.services import Attachment

    name = _re.sub(r"[\x00-\x1f\x7f/\\\"]", "", (filename or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1]).strip()[:120]
    if data.startswith(b"%PDF-"):
        kind, mimetype = ".pdf", "application/pdf"
    elif _is_docx(data):
        kind, mimetype = ".docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    else:
        raise ValidationError("Als Anhang sind nur PDF- oder Word-Dateien (.docx) möglich.", "attachment")
    if not name.lower().endswith(kind):
        name = (name.rsplit(".", 1)[0] if "." in name else name or "Rundschreiben") + kind
    return Attachment(filename=name, mimetype=mimetype, data=data)


@dataclass
class InviteResult:
    invited: int
    already: int
    mailing_id: int | None


def invite(event: Event, *, verteiler_id: int | None = None, contact_ids: list[int] | None = None,
           attachments=(), created_by_id: int | None = None) -> InviteResult:
    """Invites the contacts not yet invited: one invitation mail each with a REQUEST calendar part."""
    if event.state == "cancelled":
        raise ValidationError("Die Veranstaltung ist abgesagt; es können keine Einladungen mehr versendet werden.")
    contacts = _contacts(verteiler_id, contact_ids)
    if not contacts:
        raise ValidationError("Der Verteiler enthält keine aktiven Kontakte.", "verteiler_id")
    if event.state == "draft":
        publish_event(event)
    add_invitations(event, contacts)
    # "Already invited" means an invitation went out before, not merely that a row exists (the
    # demo data and staff answers create rows without sending anything).
    chosen = {contact.id for contact in contacts}
    already = sum(1 for i in event.invitations if i.invited_at is not None and i.contact_id in chosen)
    pending = [i for i in event.invitations if i.invited_at is None]
    if not pending:
        return InviteResult(0, already, None)
    mailing = _mailing("einladung", f"Einladung: {event.title}", event, created_by_id)
    now = utcnow()
    for invitation in pending:
        _enqueue_for(mailing, "einladung", event, invitation, calendar="REQUEST", attachments=attachments, require_link=True)
        invitation.invited_at = now
    _start(mailing)
    audit("veranstaltung.eingeladen", event, anzahl=len(pending), mailing_id=mailing.id)
    return InviteResult(len(pending), already, mailing.id)


def _not_declined(event: Event) -> list[Invitation]:
    return [i for i in event.invitations if i.invited_at is not None and i.state != "declined"]


def send_update(event: Event, created_by_id: int | None = None) -> int:
    """Same UID, SEQUENCE + 1 (ICS-23) to everyone invited who has not declined."""
    if event.state != "published":
        raise ValidationError("Nur für veröffentlichte Veranstaltungen kann eine Aktualisierung versendet werden.")
    event.sequence += 1
    event.update_pending = False
    recipients = _not_declined(event)
    if recipients:
        mailing = _mailing("aktualisierung", f"Aktualisierung: {event.title}", event, created_by_id)
        for invitation in recipients:
            _enqueue_for(mailing, "aktualisierung", event, invitation, calendar="REQUEST", require_link=True)
        _start(mailing)
    db.session.flush()
    audit("veranstaltung.aktualisierung", event, anzahl=len(recipients), sequence=event.sequence)
    return len(recipients)


def cancel_recipients(event: Event) -> list[Invitation]:
    """Who gets a cancellation: nobody for a draft, else everyone invited who has not declined."""
    return _not_declined(event) if event.state == "published" else []


def cancel_event(event: Event, created_by_id: int | None = None) -> int:
    """METHOD:CANCEL, STATUS:CANCELLED, SEQUENCE + 1 (ICS-22) to everyone invited who has not declined."""
    if event.state == "cancelled":
        raise ValidationError("Die Veranstaltung ist bereits abgesagt.")
    recipients = cancel_recipients(event)
    event.state = "cancelled"
    event.sequence += 1
    event.update_pending = False
    if recipients:
        mailing = _mailing("absage", f"Absage: {event.title}", event, created_by_id)
        for invitation in recipients:
            _enqueue_for(mailing, "absage", event, invitation, calendar="CANCEL")
        _start(mailing)
    db.session.flush()
    audit("veranstaltung.abgesagt", event, anzahl=len(recipients), sequence=event.sequence)
    return len(recipients)


def reminder_recipients(event: Event, include_accepted: bool = False) -> list[Invitation]:
    states = {"open"} | ({"accepted"} if include_accepted else set())
    return [i for i in event.invitations if i.invited_at is not None and i.state in states]


def send_reminders(event: Event, include_accepted: bool = False, created_by_id: int | None = None) -> int:
    if event.state != "published":
        raise ValidationError("Erinnerungen gibt es nur für veröffentlichte Veranstaltungen.")
    recipients = reminder_recipients(event, include_accepted)
    if not recipients:
        raise ValidationError("Es gibt niemanden zu erinnern.")
    mailing = _mailing("erinnerung", f"Erinnerung: {event.title}", event, created_by_id)
    for invitation in recipients:
        _enqueue_for(mailing, "erinnerung", event, invitation, require_link=True)
    _start(mailing)
    db.session.flush()
    audit("veranstaltung.erinnerung", event, anzahl=len(recipients))
    return len(recipients)


# --- Answers ----------------------------------------------------------------------------------------------

def invitation_by_token(token: str) -> Invitation:
    if not token or len(token) > 64:
        raise NotFound("Dieser Link ist ungültig.")
    invitation = db.session.scalar(
        select(Invitation).where(Invitation.token == token).options(joinedload(Invitation.event))
    )
    if invitation is None:
        raise NotFound("Dieser Link ist ungültig.")
    return invitation


def deadline_passed(event: Event, now: datetime | None = None) -> bool:
    now = now or utcnow()
    return (event.deadline is not None and now > event.deadline) or now > event.end_at


def _lock_event(event_id: int) -> None:
    """Serialises all answers of one event so that seats are counted exactly once."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(Event.id).where(Event.id == event_id).with_for_update())
    else:
        # SQLite has no row locks: a write takes the database's write lock (busy_timeout waits for it).
        db.session.execute(
            update(Event).where(Event.id == event_id).values(sequence=Event.sequence),
            execution_options={"synchronize_session": False},
        )


def seats_taken(event_id: int, exclude_id: int | None = None) -> int:
    query = select(func.coalesce(func.sum(1 + Invitation.companions), 0)).where(
        Invitation.event_id == event_id, Invitation.state == "accepted"
    )
    if exclude_id is not None:
        query = query.where(Invitation.id != exclude_id)
    return int(db.session.scalar(query) or 0)


@dataclass
class AnswerResult:
    state: str
    moved_up: list[Invitation] = field(default_factory=list)


def answer(invitation: Invitation, state: str, *, companions: int = 0, remark: str = "", dietary: str = "",
           channel: str = "link", sequence: int | None = None, notify: bool = True) -> AnswerResult:
    """Sets an answer. Acceptances beyond the capacity go to the waiting list; freed seats move people up."""
    if state not in ANSWER_STATES:
        raise ValidationError("Bitte wählen Sie Zusage oder Absage.", "answer")
    if channel not in CHANNELS:
        raise ValidationError("Unbekannter Antwortweg.", "channel")
    event = invitation.event
    if event.state == "cancelled":
        raise ValidationError("Die Veranstaltung ist abgesagt.")
    if event.state != "published":
        raise ValidationError("Die Veranstaltung ist noch nicht veröffentlicht.")
    if channel == "link" and deadline_passed(event):
        raise ValidationError("Die Antwortfrist ist abgelaufen. Bitte wenden Sie sich an das Veranstaltungsteam.")
    try:
        companions = int(companions or 0)
    except (TypeError, ValueError):
        raise ValidationError("Die Zahl der Begleitpersonen muss eine ganze Zahl sein.", "companions") from None
    if state != "accepted":
        companions = 0
    if companions < 0 or companions > event.companions_allowed:
        raise ValidationError(
            f"Sie können höchstens {event.companions_allowed} Begleitperson(en) anmelden." if event.companions_allowed
            else "Begleitpersonen sind bei dieser Veranstaltung nicht vorgesehen.",
            "companions",
        )
    remark = (remark or "").replace("\r\n", "\n").strip()
    dietary = (dietary or "").replace("\r\n", "\n").strip()
    if len(remark) > 2000 or len(dietary) > 500:
        raise ValidationError("Die Bemerkung ist zu lang (höchstens 2.000 Zeichen).", "remark")

    _lock_event(event.id)
    db.session.refresh(invitation)  # the state as of the lock, not as of the page load
    previous = invitation.state
    new_state = state
    if state == "accepted" and event.capacity is not None:
        free = event.capacity - seats_taken(event.id, exclude_id=invitation.id)
        if 1 + companions > free:
            if previous == "accepted":
                raise ValidationError(
                    f"Für weitere Begleitpersonen ist kein Platz mehr frei (frei: {max(free - 1, 0)}).", "companions"
                )
            new_state = "waiting"
    now = utcnow()
    if new_state == "waiting" and previous != "waiting":
        invitation.waiting_since = now
    elif new_state != "waiting":
        invitation.waiting_since = None
    invitation.state = new_state
    invitation.companions = companions
    invitation.remark = remark
    invitation.dietary = dietary
    invitation.channel = channel
    invitation.answered_at = now
    invitation.sequence_answered = event.sequence if sequence is None else sequence
    db.session.flush()
    audit(f"antwort.{new_state}", invitation, event_id=event.id, begleitpersonen=companions, kanal=channel)
    moved = _move_up(event) if previous == "accepted" else []
    if notify and invitation.email:
        mailing = _mailing("bestaetigung", f"Bestätigung: {event.title}", event)
        _enqueue_for(mailing, "bestaetigung", event, invitation)
        _start(mailing)
    if moved:
        mailing = _mailing("nachruecker", f"Nachrücker: {event.title}", event)
        for person in moved:
            _enqueue_for(mailing, "nachruecker", event, person)
        _start(mailing)
    db.session.flush()
    return AnswerResult(new_state, moved)


def _move_up(event: Event) -> list[Invitation]:
    """First come, first served: stops at the first waiting person who does not fit."""
    waiting_query = select(Invitation).where(Invitation.event_id == event.id, Invitation.state == "waiting")
    waiting = list(db.session.scalars(waiting_query.order_by(Invitation.waiting_since, Invitation.id)))
    moved = []
    for person in waiting:
        if event.capacity is not None and seats_taken(event.id) + person.seats > event.capacity:
            break
        person.state = "accepted"
        person.waiting_since = None
        db.session.flush()
        audit("antwort.nachgerueckt", person, event_id=event.id)
        moved.append(person)
    return moved


# --- Overview and exports -----------------------------------------------------------------------------

@dataclass
class Overview:
    counts: Counter
    companions: int
    by_organisation: list[tuple[str, Counter]]
    invitations: list[Invitation]


def overview(event: Event, *, q: str = "", state: str = "") -> Overview:
    invitations = sorted(event.invitations, key=lambda i: (i.organisation_name.lower(), i.name.lower()))
    counts: Counter = Counter(i.state for i in invitations)
    counts["invited"] = len(invitations)
    companions = sum(i.companions for i in invitations if i.state == "accepted")
    per_org: dict[str, Counter] = defaultdict(Counter)
    for i in invitations:
        per_org[i.organisation_name or "—"][i.state] += 1
    shown = invitations
    if state:
        shown = [i for i in shown if i.state == state]
    if q:
        needle = q.strip().lower()
        shown = [i for i in shown if needle in i.name.lower() or needle in i.email or needle in i.organisation_name.lower()]
    return Overview(counts, companions, sorted(per_org.items()), shown)


PARTICIPANT_HEADER = ["Name", "Organisation", "E-Mail", "Antwort", "Begleitpersonen", "Bemerkung", "Ernährung", "Antwortweg", "Beantwortet am"]


def participant_rows(event: Event) -> list[list[Any]]:
    from ..core.formatting import datum_kurz

    rows = []
    for i in sorted(event.invitations, key=lambda i: (i.organisation_name.lower(), i.name.lower())):
        rows.append([i.name, i.organisation_name, i.email, i.state_label, i.companions, i.remark, i.dietary,
                     i.channel_label, datum_kurz(i.answered_at)])
    return rows


def export_participants(event: Event, fmt: str) -> bytes:
    from .. import exports

    rows = participant_rows(event)
    if fmt == "csv":
        return exports.csv_bytes(PARTICIPANT_HEADER, rows)
    if fmt == "xlsx":
        return exports.xlsx_bytes(PARTICIPANT_HEADER, rows, sheet_title="Teilnehmende")
    raise ValidationError("Bitte wählen Sie CSV oder XLSX.")


# --- Calendar replies ------------------------------------------------------------------------------------

PARTSTAT_TO_STATE = {"ACCEPTED": "accepted", "DECLINED": "declined", "TENTATIVE": "tentative", "DELEGATED": "declined"}


def _apply_one(reply: ParsedReply, message_id: str, from_email: str) -> CalendarReply | None:
    if db.session.scalar(select(CalendarReply.id).where(CalendarReply.key == reply.key)) is not None:
        return None  # RPLY-08: seen before
    record = CalendarReply(
        key=reply.key, message_id=message_id, from_email=from_email, uid=reply.uid[:255],
        attendee_email=reply.attendee_email[:254], attendee_name=reply.attendee_name[:300],
        partstat=reply.partstat[:30], sequence=reply.sequence, dtstamp=reply.dtstamp, comment=reply.comment[:2000],
    )
    db.session.add(record)
    event = db.session.scalar(select(Event).where(Event.uid == reply.uid))
    invitation = None
    if event is not None:
        record.event_id = event.id
        by_email = {i.email: i for i in event.invitations}
        invitation = by_email.get(reply.attendee_email)
        if invitation is None and from_email and from_email == reply.attendee_email:
            invitation = by_email.get(from_email)
    if event is None or invitation is None:
        record.status = "unmatched"
        db.session.flush()
        audit("kalenderantwort.unzugeordnet", record)
        return record
    record.invitation_id = invitation.id
    if reply.partstat not in PARTSTAT_TO_STATE:  # RPLY-05
        record.status = "ignored"
    elif reply.sequence < event.sequence:  # RPLY-06
        record.status = "stale"
    elif (invitation.channel == "calendar" and invitation.sequence_answered == reply.sequence
          and _newer_reply_exists(invitation.id, reply)):
        record.status = "ignored"
    else:
        try:
            answer(invitation, PARTSTAT_TO_STATE[reply.partstat], companions=invitation.companions,
                   remark=reply.comment or invitation.remark, dietary=invitation.dietary, channel="calendar",
                   sequence=reply.sequence)
            record.status = "applied"
        except ValidationError:
            record.status = "ignored"
    db.session.flush()
    audit(f"kalenderantwort.{record.status}", record, invitation_id=invitation.id, event_id=event.id)
    return record


def _newer_reply_exists(invitation_id: int, reply: ParsedReply) -> bool:
    """Among replies to the same SEQUENCE the newer DTSTAMP wins (RPLY-06)."""
    if reply.dtstamp is None:
        return False
    newer = select(CalendarReply.id).where(
        CalendarReply.invitation_id == invitation_id, CalendarReply.status == "applied",
        CalendarReply.sequence == reply.sequence, CalendarReply.dtstamp > reply.dtstamp,
    )
    return db.session.scalar(newer) is not None


def apply_reply_mail(raw: bytes) -> list[CalendarReply]:
    """Parses one mail and records each REPLY in it; returns the new records (duplicates are skipped)."""
    parsed = parse_mail(raw)
    records = []
    for reply in parsed.replies:
        record = _apply_one(reply, parsed.message_id, parsed.from_email)
        if record is not None:
            records.append(record)
    return records


def unmatched_replies() -> list[CalendarReply]:
    return list(db.session.scalars(select(CalendarReply).where(CalendarReply.status == "unmatched").order_by(CalendarReply.received_at)))


def assign_reply(reply_id: int, invitation_id: int) -> Invitation:
    record = db.session.get(CalendarReply, reply_id)
    invitation = db.session.get(Invitation, invitation_id)
    if record is None or record.status != "unmatched":
        raise NotFound("Diese Kalenderantwort ist nicht (mehr) offen.")
    if invitation is None:
        raise ValidationError("Bitte wählen Sie eine Einladung.", "invitation_id")
    state = PARTSTAT_TO_STATE.get(record.partstat)
    if state is None:
        raise ValidationError("Diese Antwort enthält weder Zusage noch Absage.")
    answer(invitation, state, companions=invitation.companions, remark=record.comment or invitation.remark,
           dietary=invitation.dietary, channel="calendar", sequence=record.sequence)
    record.status = "assigned"
    record.invitation_id = invitation.id
    record.event_id = invitation.event_id
    db.session.flush()
    audit("kalenderantwort.zugeordnet", record, invitation_id=invitation.id)
    return invitation


@dataclass
class IngestResult:
    mails: int = 0
    statuses: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        parts = [f"{anzahl(self.mails, 'Mail', 'Mails')} gelesen"]
        labels = {"applied": "übernommen", "stale": "veraltet", "ignored": "ignoriert", "unmatched": "zur Prüfung"}
        parts += [f"{self.statuses[key]} {label}" for key, label in labels.items() if self.statuses[key]]
        return ", ".join(parts) + "."


def ingest_mails(raw_mails) -> IngestResult:
    result = IngestResult()
    for raw in raw_mails:
        result.mails += 1
        for record in apply_reply_mail(raw):
            result.statuses[record.status] += 1
    return result


def ingest_path(path: str) -> IngestResult:
    """One .eml file, an mbox file, a Maildir directory or a folder of .eml files (RPLY-01…09)."""
    import os

    from .replies import iter_mail_source

    if not os.path.exists(path):
        raise ValidationError(f"Die Datei oder der Ordner „{path}“ existiert nicht.")
    return ingest_mails(iter_mail_source(path))


def _imap_mailbox_name(name: str) -> str:
    """A folder name as an IMAP quoted string in modified UTF-7 (RFC 3501 5.1.3), e.g. "Rückmeldungen".

    imaplib sends arguments as they are: a space would split the name and an umlaut raises.
    """
    import base64

    out, pending = [], []

    def flush() -> None:
        if pending:
            encoded = base64.b64encode("".join(pending).encode("utf-16-be")).rstrip(b"=").replace(b"/", b",")
            out.append(f"&{encoded.decode()}-")
            pending.clear()

    for char in name:
        if " " <= char <= "~":
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    quoted = "".join(out).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}"'


def _imap_text(value: Exception | bytes) -> str:
    """The server's own words from an imaplib error or response (imaplib hands them over as bytes)."""
    if isinstance(value, Exception) and value.args:
        value = value.args[0]
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _may_carry_calendar(bodystructure: bytes) -> bool:
    """Whether a mail's BODYSTRUCTURE might hold a calendar part (RPLY-01), so it is worth downloading.

    Errs on the side of yes: encoded (=?…?=) or RFC 2231 (name*=) file names are not decoded here.
    """
    text = bodystructure.lower()
    return any(marker in text for marker in (b'"calendar"', b'"ics"', b'x-vcalendar', b'.ics"', b"=?", b'*"'))


def poll_imap(commit: Callable[[], None]) -> IngestResult:
    """Reads the unread calendar replies of the functional mailbox (settings IMAP_*).

    The mailbox is shared with people: a mail is marked read only when it carried a REPLY, and only
    after ``commit`` has stored it, so a failed commit means reading it again next time (RPLY-08 makes
    that harmless) instead of losing it. Other mails stay unread; nothing is moved or deleted.
    """
    import imaplib
    import ssl

    config = current_app.config
    host = config.get("IMAP_SERVER")
    if not host:
        raise ValidationError("Kein IMAP-Server eingestellt (KI_POST_IMAP_SERVER).")
    port = int(config.get("IMAP_PORT") or 993)
    try:
        if config.get("IMAP_USE_SSL"):
            # imaplib's default context does not check the certificate; this one does.
            context = ssl.create_default_context(cafile=config.get("IMAP_CA_FILE") or None)
            connection = imaplib.IMAP4_SSL(host, port, timeout=60, ssl_context=context)
        else:
            connection = imaplib.IMAP4(host, port, timeout=60)
    except ssl.SSLCertVerificationError as error:
        raise ValidationError(f"Das Zertifikat des IMAP-Servers {host} ist nicht vertrauenswürdig "
                              f"({error.verify_message}).") from None
    except (OSError, imaplib.IMAP4.error) as error:
        raise ValidationError(f"IMAP-Server {host}:{port} nicht erreichbar: {_imap_text(error)}") from None
    result = IngestResult()
    try:
        username, password = config.get("IMAP_USERNAME", ""), config.get("IMAP_PASSWORD", "")
        try:
            if f"{username}{password}".isascii():
                connection.login(username, password)
            else:  # imaplib's LOGIN only sends ASCII; AUTHENTICATE PLAIN carries UTF-8
                connection.authenticate("PLAIN", lambda _: f"\0{username}\0{password}".encode())
        except imaplib.IMAP4.error as error:
            raise ValidationError("Die Anmeldung am IMAP-Server ist fehlgeschlagen; bitte IMAP_USERNAME und "
                                  f"IMAP_PASSWORD prüfen. (Server: {_imap_text(error)})") from None
        folder = config.get("IMAP_FOLDER") or "INBOX"
        status, data = connection.select(_imap_mailbox_name(folder))
        if status != "OK":
            raise ValidationError(f"Der IMAP-Ordner „{folder}“ lässt sich nicht öffnen. "
                                  f"(Server: {_imap_text(data[-1])})")
        status, data = connection.uid("SEARCH", None, "UNSEEN")
        for uid in (data[0] or b"").split() if status == "OK" else []:
            status, parts = connection.uid("FETCH", uid, "(BODYSTRUCTURE)")
            structure = b"".join(b"".join(part) if isinstance(part, tuple) else part or b"" for part in parts)
            if status != "OK" or not _may_carry_calendar(structure):
                continue
            status, parts = connection.uid("FETCH", uid, "(BODY.PEEK[])")
            raws = [part[1] for part in parts if isinstance(part, tuple)] if status == "OK" else []
            parsed = parse_mail(raws[0]) if raws else None
            if parsed is None or not parsed.replies:
                continue  # not a calendar reply: left unread for the staff
            result.mails += 1
            for reply in parsed.replies:
                record = _apply_one(reply, parsed.message_id, parsed.from_email)
                if record is not None:
                    result.statuses[record.status] += 1
            commit()
            connection.uid("STORE", uid, "+FLAGS.SILENT", "(\\Seen)")
    except (OSError, imaplib.IMAP4.error) as error:
        raise ValidationError(f"IMAP-Fehler: {_imap_text(error)}") from None
    finally:
        try:
            connection.logout()
        except (OSError, imaplib.IMAP4.error):
            pass  # the server may already have closed the connection; nothing is left to do on it
    return result

"""Who came: check-in on the day (Einlass), walk-ins, the personal check-in code of each Zusage.

One ``Attendance`` row per invited person that was ticked off or received a check-in code, and one per
walk-in (a person not invited or not registered, entered at the door). An invitation's row holds no
personal data of its own (name and address stay on the invitation); a walk-in's row holds what the
staff typed: name, organisation, optional address.

The shown state is derived, never stored: ticked → anwesend; a Zusage not ticked is "noch nicht da"
until the event ends and "nicht erschienen" afterwards.
"""
from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..auth.services import audit
from ..db_types import UTCDateTime, utcnow
from ..errors import ValidationError
from ..extensions import db
from ..states import LabelledEnum
from .models import Event, EventState, Invitation, InvitationState

CHECKIN_PATH = "/einlass/"
MAX_PRESENT_COMPANIONS = 20


class AttendanceState(LabelledEnum):
    """What the check-in list and the exports show for a person (derived, not stored)."""

    ANWESEND = "anwesend", "anwesend"
    NOCH_NICHT_DA = "noch_nicht_da", "noch nicht da"
    NICHT_ERSCHIENEN = "nicht_erschienen", "nicht erschienen"


class Attendance(db.Model):
    __tablename__ = "attendances"
    __table_args__ = (UniqueConstraint("invitation_id", name="uq_attendances_invitation_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    # None for a walk-in.
    invitation_id: Mapped[int | None] = mapped_column(ForeignKey("invitations.id", ondelete="CASCADE"))
    # Walk-ins only; an invited person's name and address stay on the invitation.
    name: Mapped[str] = mapped_column(String(300), default="")
    organisation_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    # The check-in code in the confirmation mail's QR image: secrets.token_urlsafe(32), not the answer token
    # (the code is shown at the door; it opens the person's check-in for logged-in staff only).
    token: Mapped[str | None] = mapped_column(String(64), unique=True)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    companions_present: Mapped[int] = mapped_column(Integer, default=0)
    checked_in_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    invitation: Mapped[Invitation | None] = relationship()

    @property
    def walk_in(self) -> bool:
        return self.invitation_id is None

    @property
    def present(self) -> bool:
        return self.checked_in_at is not None


# --- Rows of the check-in list -----------------------------------------------------------------------------

@dataclass
class Entry:
    """One line of the check-in list: an invited person or a walk-in."""

    key: str  # "einladung-<id>" or "vorort-<id>": the anchor on the page
    name: str
    organisation: str
    answer: str  # the invitation's answer label, or "vor Ort angemeldet"
    registered_companions: int
    invitation: Invitation | None
    attendance: Attendance | None
    state: AttendanceState | None
    surname: str = ""

    @property
    def confirmed(self) -> bool:
        """A Zusage, a walk-in or present: expected at the door (listed first, kept by „nur Zusagen“)."""
        return (self.invitation is None or self.present or self.invitation.state == InvitationState.ZUGESAGT)

    @property
    def present(self) -> bool:
        return self.attendance is not None and self.attendance.present

    @property
    def companions_present(self) -> int:
        return self.attendance.companions_present if self.present and self.attendance else 0

    @property
    def walk_in(self) -> bool:
        return self.invitation is None


def ended(event: Event, now: datetime | None = None) -> bool:
    return (now or utcnow()) >= event.end_at


def state_of(event: Event, invitation: Invitation | None, attendance: Attendance | None,
             now: datetime | None = None) -> AttendanceState | None:
    """anwesend if ticked; for a Zusage not ticked "noch nicht da" before the end, "nicht erschienen" after;
    None for everybody else (no answer, Absage, waiting list … and not there)."""
    if attendance is not None and attendance.present:
        return AttendanceState.ANWESEND
    if invitation is not None and invitation.state == InvitationState.ZUGESAGT:
        return AttendanceState.NICHT_ERSCHIENEN if ended(event, now) else AttendanceState.NOCH_NICHT_DA
    return None


def attendances(event: Event) -> list[Attendance]:
    return list(db.session.scalars(select(Attendance).where(Attendance.event_id == event.id).order_by(Attendance.id)))


def by_invitation(event: Event) -> dict[int, Attendance]:
    return {a.invitation_id: a for a in attendances(event) if a.invitation_id is not None}


def surname(name: str, contact_last_name: str = "") -> str:
    """What a door list is sorted by: the contact's last name, else the last word of the name."""
    if contact_last_name.strip():
        return contact_last_name.strip()
    words = (name or "").split()
    return words[-1] if words else ""


def _sort_text(text: str) -> str:
    """Umlauts and ß as their base letters (DIN 5007-1), case ignored."""
    return text.casefold().translate(str.maketrans({"ä": "a", "ö": "o", "ü": "u", "ß": "ss"}))


def _last_names(invitations: list[Invitation]) -> dict[int, str]:
    from ..recipients.models import Contact

    ids = sorted({i.contact_id for i in invitations if i.contact_id is not None})
    if not ids:
        return {}
    return {row[0]: row[1] for row in db.session.execute(select(Contact.id, Contact.last_name).where(Contact.id.in_(ids)))}


def entries(event: Event, q: str = "") -> list[Entry]:
    """Everybody who may come: invited persons and walk-ins, filtered by name or organisation. Zusagen,
    walk-ins and whoever is present first, the rest after; each group by surname (a door list)."""
    now = utcnow()
    rows = attendances(event)
    marks = {a.invitation_id: a for a in rows if a.invitation_id is not None}
    invitations = list(event.invitations)
    last_names = _last_names(invitations)
    found = [Entry(f"einladung-{i.id}", i.name or i.email, i.organisation_name, i.state_label,
                   i.companions if i.state == InvitationState.ZUGESAGT else 0, i, marks.get(i.id),
                   state_of(event, i, marks.get(i.id), now),
                   surname(i.name or i.email, last_names.get(i.contact_id, "") if i.contact_id else ""))
             for i in invitations]
    found += [Entry(f"vorort-{a.id}", a.name, a.organisation_name, "vor Ort angemeldet", 0, None, a,
                    state_of(event, None, a, now), surname(a.name)) for a in rows if a.invitation_id is None]
    needle = q.strip().lower()
    if needle:
        found = [e for e in found if needle in e.name.lower() or needle in e.organisation.lower()]
    return sorted(found, key=lambda e: (not e.confirmed, _sort_text(e.surname), _sort_text(e.name),
                                        _sort_text(e.organisation)))


def only_confirmed(found: list[Entry]) -> list[Entry]:
    """The „nur Zusagen“ view of the list: Zusagen, walk-ins and whoever is already present."""
    return [e for e in found if e.confirmed]


def counts(event: Event) -> Counter:
    """anwesend (persons ticked, walk-ins included), nicht_erschienen (Zusagen not ticked once the event has
    ended), noch_nicht_da, begleitpersonen (companions who came) and vor_ort (walk-ins present)."""
    now = utcnow()
    marks = by_invitation(event)
    result: Counter = Counter({"anwesend": 0, "nicht_erschienen": 0, "noch_nicht_da": 0, "begleitpersonen": 0,
                               "vor_ort": 0})
    for invitation in event.invitations:
        state = state_of(event, invitation, marks.get(invitation.id), now)
        if state is not None:
            result[state.value] += 1
    for attendance in attendances(event):
        if attendance.present:
            result["begleitpersonen"] += attendance.companions_present
            if attendance.walk_in:
                result["anwesend"] += 1
                result["vor_ort"] += 1
    return result


# --- Ticking off --------------------------------------------------------------------------------------------

def _checkable(event: Event) -> None:
    if event.state == EventState.ABGESAGT:
        raise ValidationError("Die Veranstaltung ist abgesagt; es gibt keinen Einlass.")
    if event.state != EventState.VEROEFFENTLICHT:
        raise ValidationError("Einlass gibt es nur für veröffentlichte Veranstaltungen.")


def _companions(value: int | None) -> int:
    count = int(value or 0)
    if count < 0 or count > MAX_PRESENT_COMPANIONS:
        raise ValidationError(f"Bitte eine Zahl von 0 bis {MAX_PRESENT_COMPANIONS} Begleitpersonen angeben.",
                              "companions_present")
    return count


def _row_for(invitation: Invitation) -> Attendance:
    row = db.session.scalar(select(Attendance).where(Attendance.invitation_id == invitation.id))
    if row is None:
        row = Attendance(event_id=invitation.event_id, invitation_id=invitation.id)
        db.session.add(row)
    return row


def _user_id() -> int | None:
    from flask import has_request_context
    from flask_login import current_user

    return current_user.id if has_request_context() and current_user.is_authenticated else None


def check_in(invitation: Invitation, companions_present: int | None = None) -> Attendance:
    """Tick an invited person off (again: only the number of companions changes). Without a number, the
    companions registered with the Zusage count as present."""
    event = invitation.event
    _checkable(event)
    count = _companions(invitation.companions if companions_present is None and
                        invitation.state == InvitationState.ZUGESAGT else companions_present)
    row = _row_for(invitation)
    if row.checked_in_at is None:
        row.checked_in_at = utcnow()
        row.checked_in_by_id = _user_id()
    row.companions_present = count
    db.session.flush()
    audit("einlass.anwesend", event, einladung_id=invitation.id, begleitpersonen=count)
    return row


def check_in_walk_in(attendance: Attendance, companions_present: int | None = None) -> Attendance:
    """Tick a walk-in off again after an undo (or change the number of companions)."""
    _checkable(db.session.get(Event, attendance.event_id))
    if attendance.checked_in_at is None:
        attendance.checked_in_at = utcnow()
        attendance.checked_in_by_id = _user_id()
    attendance.companions_present = _companions(companions_present)
    db.session.flush()
    audit("einlass.anwesend", db.session.get(Event, attendance.event_id), vor_ort_id=attendance.id,
          begleitpersonen=attendance.companions_present)
    return attendance


def undo(attendance: Attendance) -> Attendance:
    """Take a tick back (the row and a check-in code stay; a walk-in stays in the list, not present)."""
    event = db.session.get(Event, attendance.event_id)
    _checkable(event)
    if attendance.checked_in_at is None:
        raise ValidationError("Diese Person ist nicht als anwesend erfasst.")
    attendance.checked_in_at = None
    attendance.checked_in_by_id = None
    attendance.companions_present = 0
    db.session.flush()
    audit("einlass.zurueckgenommen", event, einladung_id=attendance.invitation_id, vor_ort_id=attendance.id)
    return attendance


def add_walk_in(event: Event, name: str, organisation: str = "", email: str = "",
                companions_present: int | None = 0) -> Attendance:
    """A person at the door who was not invited or did not register: present at once."""
    _checkable(event)
    name, organisation, email = (name or "").strip(), (organisation or "").strip(), (email or "").strip().lower()
    if not name:
        raise ValidationError("Bitte geben Sie den Namen an.", "name")
    if len(name) > 300 or len(organisation) > 200:
        raise ValidationError("Name oder Organisation sind zu lang.", "name")
    if email and ("@" not in email or len(email) > 254 or any(c.isspace() for c in email)):
        raise ValidationError("Bitte geben Sie eine gültige E-Mail-Adresse an oder lassen Sie das Feld leer.", "email")
    row = Attendance(event_id=event.id, name=name, organisation_name=organisation, email=email,
                     checked_in_at=utcnow(), checked_in_by_id=_user_id(),
                     companions_present=_companions(companions_present))
    db.session.add(row)
    db.session.flush()
    audit("einlass.vor-ort", event, vor_ort_id=row.id)
    return row


def remove_walk_in(attendance: Attendance) -> None:
    """Delete a walk-in entered by mistake (only once not ticked: undo first). Name and address go with it."""
    if not attendance.walk_in:
        raise ValidationError("Nur vor Ort angemeldete Personen lassen sich entfernen.")
    if attendance.present:
        raise ValidationError("Bitte nehmen Sie das Abhaken zuerst zurück.")
    event = db.session.get(Event, attendance.event_id)
    audit("einlass.vor-ort-entfernt", event, vor_ort_id=attendance.id)
    db.session.delete(attendance)
    db.session.flush()


def find_invitation(event: Event, email: str) -> Invitation:
    wanted = (email or "").strip().lower()
    for invitation in event.invitations:
        if invitation.email.lower() == wanted:
            return invitation
    raise ValidationError(f"Für „{email}“ gibt es bei dieser Veranstaltung keine Einladung.", "email")


def attendance_for(invitation: Invitation) -> Attendance | None:
    return db.session.scalar(select(Attendance).where(Attendance.invitation_id == invitation.id))


def get_walk_in(event: Event, attendance_id: int) -> Attendance:
    from werkzeug.exceptions import NotFound

    row = db.session.get(Attendance, attendance_id)
    if row is None or row.event_id != event.id:
        raise NotFound("Vor-Ort-Anmeldung nicht gefunden.")
    return row


# --- The personal check-in code ----------------------------------------------------------------------------

def checkin_token(invitation: Invitation) -> str:
    """The person's check-in code, made on first use (flushes)."""
    row = _row_for(invitation)
    if not row.token:
        row.token = secrets.token_urlsafe(32)
        db.session.flush()
    return row.token


def checkin_link(invitation: Invitation) -> str:
    return current_app.config["BASE_URL"].rstrip("/") + CHECKIN_PATH + checkin_token(invitation)


def qr_png(url: str) -> bytes:
    """The QR code (segno, error correction M, 6 px per module, 4 modules quiet zone) as PNG bytes."""
    import io

    import segno

    out = io.BytesIO()
    segno.make(url, error="m", micro=False).save(out, kind="png", scale=6, border=4)
    return out.getvalue()


QR_FILENAME = "Einlass-QR-Code.png"


def qr_attachment(invitation: Invitation):
    """The QR image attached to a confirmation of a Zusage (None for every other answer)."""
    from ..outbox.services import Attachment

    if invitation.state != InvitationState.ZUGESAGT:
        return None
    return Attachment(filename=QR_FILENAME, mimetype="image/png", data=qr_png(checkin_link(invitation)))


def fit_code(invitation: Invitation, waiting: list) -> None:
    """Confirmations still waiting for this person are rewritten to the new answer, but a rewrite keeps the
    attachments: add the check-in code to those that now confirm a Zusage, take it from those that no longer
    do. Each message only while no worker has claimed it (the guarded UPDATE holds its row until commit)."""
    from sqlalchemy import update

    from ..blobs import discard_unreferenced, store_blob
    from ..outbox.models import MessageState, OutboxAttachment, OutboxMessage

    wants = invitation.state == InvitationState.ZUGESAGT
    for message_id in [row.id for row in waiting]:
        codes = list(db.session.scalars(select(OutboxAttachment).where(
            OutboxAttachment.message_id == message_id, OutboxAttachment.filename == QR_FILENAME)))
        if bool(codes) == wants:
            continue
        claimed = db.session.execute(
            update(OutboxMessage).where(OutboxMessage.id == message_id, OutboxMessage.state.in_(MessageState.UNSENT))
            .values(revision=OutboxMessage.revision), execution_options={"synchronize_session": False})
        if claimed.rowcount != 1:
            continue  # on its way already: what it says is what it carries
        if wants:
            data = qr_png(checkin_link(invitation))
            position = db.session.scalar(select(func.coalesce(func.max(OutboxAttachment.position) + 1, 0))
                                         .where(OutboxAttachment.message_id == message_id))
            db.session.add(OutboxAttachment(message_id=message_id, position=position, filename=QR_FILENAME,
                                            mimetype="image/png", blob_sha256=store_blob(data), size=len(data)))
        else:
            for code in codes:
                db.session.delete(code)
            db.session.flush()
            gone = discard_unreferenced({code.blob_sha256 for code in codes})
            # The outbox remembers per session which blobs it stored; a code made again must be stored anew.
            db.session.info.get("outbox_blob_keys", set()).difference_update(gone)
        db.session.flush()
        message = db.session.get(OutboxMessage, message_id)
        if message is not None:
            db.session.expire(message)


def by_token(token: str) -> Attendance:
    from werkzeug.exceptions import NotFound

    row = db.session.scalar(select(Attendance).where(Attendance.token == token)) if token else None
    if row is None or row.invitation_id is None:
        raise NotFound("Dieser Einlass-Code ist unbekannt.")
    return row


# --- Exports -----------------------------------------------------------------------------------------------

ATTENDANCE_HEADER = ["Anwesenheit", "Begleitpersonen anwesend", "Eingelassen um"]


def attendance_cells(event: Event, invitation: Invitation | None, attendance: Attendance | None) -> list:
    from ..formatting import datum_kurz  # as "Beantwortet am" in the same table

    state = state_of(event, invitation, attendance)
    present = attendance is not None and attendance.present
    return [state.label if state else "", attendance.companions_present if present and attendance else "",
            datum_kurz(attendance.checked_in_at) if present and attendance else ""]


def walk_in_rows(event: Event, width: int = 9) -> list[list]:
    """Walk-ins as rows of the participant list: name, organisation, address, "vor Ort angemeldet", the other
    columns before the attendance ones (``width`` in all) empty, then the attendance cells."""
    rows = []
    for row in attendances(event):
        if row.walk_in:
            known = [row.name, row.organisation_name, row.email, "vor Ort angemeldet"]
            rows.append(known + [""] * (width - len(known)) + attendance_cells(event, None, row))
    return sorted(rows, key=lambda r: (r[1].lower(), r[0].lower()))


# --- Art. 15 (history) ---------------------------------------------------------------------------------------

def history_of(invitation: Invitation) -> dict:
    """Attendance facts of one invitation for the Art. 15 export."""
    row = attendance_for(invitation)
    state = state_of(invitation.event, invitation, row)
    present = row is not None and row.present
    return {"anwesenheit": state.label if state else "", "begleitpersonen_anwesend": row.companions_present if present and row else 0,
            "eingelassen": row.checked_in_at.isoformat() if present and row and row.checked_in_at else None}


def walk_ins_with(addresses: set[str]) -> list[dict]:
    """Walk-ins entered with one of these addresses, for the Art. 15 export."""
    if not addresses:
        return []
    from sqlalchemy import func

    rows = db.session.scalars(select(Attendance).where(Attendance.invitation_id.is_(None),
                                                       func.lower(Attendance.email).in_(sorted(addresses)))
                              .order_by(Attendance.id))
    return [{"veranstaltung": db.session.get(Event, row.event_id).title, "name": row.name, "e_mail": row.email,
             "organisation": row.organisation_name, "anwesend": row.present,
             "begleitpersonen_anwesend": row.companions_present,
             "eingelassen": row.checked_in_at.isoformat() if row.checked_in_at else None} for row in rows]

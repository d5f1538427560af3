"""Follow-up mails after an event (Nachbereitung): one to those who came, another to those who registered
and did not come, each as a draft mailing (preview, test mail, "Senden" in the outbox), with optional
attachments such as the presentation. Subject and text come from the staff's form; the mail is the
generic ``allgemein`` template (salutation, paragraphs, sender's lines).

Never to an erased person (contact deleted or anonymised; a walk-in whose address was erased) nor for
a cancelled event.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from ..auth.services import audit
from ..db_types import utcnow
from ..errors import ValidationError
from ..outbox import services as outbox
from ..recipients.addresses import ANONYMISED_DOMAIN
from ..states import LabelledEnum
from .attendance import Attendance, attendances, by_invitation
# No topic: a follow-up is no message about the invitation (updates and erasure of an invitation's
# unsent mails go by topic; the outbox withdraws an erased person's messages by contact anyway).
from .mails import TemplateProblem, reachable, recipient, sender_lines
from .models import Event, EventState, Invitation, InvitationState


class Audience(LabelledEnum):
    TEILNEHMENDE = "teilnehmende", "Teilnehmende (anwesend)"
    NICHT_ERSCHIENEN = "nicht_erschienen", "Angemeldete, die nicht gekommen sind"


@dataclass(frozen=True)
class FollowupRecipient:
    name: str
    email: str
    anrede: str
    contact_id: int | None
    invitation: Invitation | None


def _walk_in_reachable(row: Attendance) -> bool:
    return bool(row.email) and not row.email.endswith("@" + ANONYMISED_DOMAIN)


def followup_recipients(event: Event, audience: str) -> list[FollowupRecipient]:
    """Those who came (invited persons ticked off, walk-ins with an address), or those with a Zusage who
    were not ticked off; never an erased person, nothing for a cancelled event."""
    if event.state == EventState.ABGESAGT:
        return []
    marks = by_invitation(event)
    chosen = Audience.parse(audience)
    if chosen is None:
        raise ValidationError("Bitte wählen Sie, an wen die Nachricht gehen soll.", "audience")
    found: list[FollowupRecipient] = []
    for invitation in event.invitations:
        mark = marks.get(invitation.id)
        present = mark is not None and mark.present
        wanted = present if chosen == Audience.TEILNEHMENDE else (
            not present and invitation.state == InvitationState.ZUGESAGT)
        if wanted and reachable(invitation):
            person = recipient(invitation)
            found.append(FollowupRecipient(person.name, invitation.email, person.anrede, invitation.contact_id, invitation))
    if chosen == Audience.TEILNEHMENDE:
        for row in attendances(event):
            if row.walk_in and row.present and _walk_in_reachable(row):
                found.append(FollowupRecipient(row.name, row.email, "Sehr geehrte Damen und Herren,", None, None))
    return found


@dataclass
class FollowupResult:
    queued: int
    skipped: int
    mailing_id: int


def _paragraphs(text: str) -> list[str]:
    blocks = [" ".join(line.strip() for line in block.splitlines()).strip()
              for block in text.replace("\r\n", "\n").split("\n\n")]
    return [block for block in blocks if block]


def prepare_followup(event: Event, audience: str, subject: str, text: str, *, attachments=(),
                     created_by_id: int | None = None) -> FollowupResult:
    """The follow-up as a draft mailing of kind ``allgemein`` for the event (nothing goes out before "Senden")."""
    if event.state == EventState.ABGESAGT:
        raise ValidationError("Die Veranstaltung ist abgesagt; es gibt keine Nachbereitung.")
    if utcnow() < event.end_at:
        raise ValidationError("Die Nachbereitung ist erst nach dem Ende der Veranstaltung möglich.")
    subject, paragraphs = (subject or "").strip(), _paragraphs(text or "")
    if not subject:
        raise ValidationError("Bitte geben Sie einen Betreff an.", "subject")
    if not paragraphs:
        raise ValidationError("Bitte geben Sie einen Text an.", "text")
    recipients = followup_recipients(event, audience)
    if not recipients:
        raise ValidationError("Es gibt niemanden, an den diese Nachricht gehen könnte.", "audience")
    chosen = Audience(audience)
    title = f"Nachbereitung ({chosen.label}): {event.title}"[:300]
    mailing = outbox.create_mailing("allgemein", title, created_by_id=created_by_id, event_id=event.id)
    signature = sender_lines()
    absender = "\n".join(signature) or current_app.config["APP_NAME"]
    queued = skipped = 0
    for person in recipients:
        try:
            mail = outbox.render_mail("allgemein", {"betreff": subject, "anrede": person.anrede, "absaetze": paragraphs,
                                                    "absender": absender, "absender_zeilen": signature})
            outbox.enqueue(mailing, to_email=person.email, to_name=person.name, contact_id=person.contact_id,
                           subject=mail.subject, text=mail.text, html=mail.html, attachments=attachments)
            queued += 1
        except ValidationError as error:
            if error.field == "kind":
                raise TemplateProblem(str(error), "template") from None
            outbox.skip_recipient(mailing, to_email=person.email, to_name=person.name, contact_id=person.contact_id,
                                  reason=f"Nachricht nicht erstellt: {error}")
            skipped += 1
    audit("veranstaltung.nachbereitung", event, anzahl=queued, uebersprungen=skipped, mailing_id=mailing.id,
          empfaenger=chosen.value)
    return FollowupResult(queued, skipped, mailing.id)

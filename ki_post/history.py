"""One contact's history across the domains: letters produced, mails sent, invitations and answers.

Lives above the domain packages because it reads all of them; it registers what it finds with the
Verteiler (contact page and DSGVO export), which itself stays independent of letters, outbox and events.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from .blobs import load_blob
from .events import attendance, erasure as events_erasure
from .events.models import CalendarReply, Invitation
from .events.questions import readable_answers
from .extensions import db
from .letters import erasure as letters_erasure
from .letters.engine import DOCX_MIMETYPE, document_text
from .letters.models import ArchivedLetter
from .outbox import erasure as outbox_erasure
from .outbox.models import OutboxMessage
from .recipients import erasure as recipients_erasure, services as recipient_services
from .recipients.models import Contact

HISTORY_LIMIT = 100


def _recent(model: Any, contact: Contact) -> list:
    return db.session.scalars(select(model).where(model.contact_id == contact.id)
                              .order_by(model.id.desc()).limit(HISTORY_LIMIT)).all()


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _document_text(data: bytes) -> str | None:
    """The text of a DOCX (a letter) so the export shows what it says."""
    try:
        return document_text(data)
    except Exception:  # noqa: BLE001 - a damaged file must not stop the export; its bytes are named by sha256
        return None


# The export (Art. 15 DSGVO) lists everything, not only the newest entries the contact page shows, and
# selects with the erasure's own conditions, so what is exported is exactly what an erasure scrubs.

def _letter_json(letter: ArchivedLetter) -> dict[str, Any]:
    data = {"datei": letter.filename, "erzeugt": _iso(letter.created_at), "sha256": letter.sha256,
            "vorlagenversion": letter.template_version_id, "felder": letter.fields, "organisation": letter.organisation}
    if not letters_erasure.may_open(letter):
        # Kept for the records after an erasure: the export of the anonymised record must not reveal it.
        return {**data, "nur_fuer_die_administration": True}
    return {**data, "empfaenger": letter.recipient, "text": _document_text(load_blob(letter.sha256))}


def _letters_json(contact: Contact) -> list[dict[str, Any]]:
    letters = db.session.scalars(select(ArchivedLetter).where(letters_erasure.person_letters(contact)).order_by(ArchivedLetter.id))
    return [_letter_json(letter) for letter in letters]


def _messages_json(contact: Contact) -> list[dict[str, Any]]:
    from .outbox.returns import bounces_of

    messages = list(db.session.scalars(select(OutboxMessage).where(outbox_erasure.person_messages(contact)).order_by(OutboxMessage.id)))
    reports = bounces_of([message.id for message in messages])
    return [
        {"betreff": message.subject, "an": message.to_email, "name": message.to_name, "zustand": message.state_label,
         "gesendet": _iso(message.sent_at), "aussendung": message.mailing_id, "antwort_des_servers": message.server_reply,
         "text": message.text, "html": message.html,
         "kalender": message.calendar_data.decode("utf-8", "replace") if message.calendar_data is not None else None,
         "anhaenge": [{"datei": attachment.filename, "typ": attachment.mimetype, "sha256": attachment.blob_sha256,
                       "text": _document_text(load_blob(attachment.blob_sha256)) if attachment.mimetype == DOCX_MIMETYPE else None}
                      for attachment in message.attachments],
         "zustellungsnachrichten": [{"empfangen": _iso(report.received_at), "art": report.kind_label, "adresse": report.recipient,
                                     "status": report.status, "antwort_des_servers": report.diagnostic}
                                    for report in reports.get(message.id, [])]}
        for message in messages
    ]


def _invitations_json(contact: Contact) -> list[dict[str, Any]]:
    invitations = db.session.scalars(select(Invitation).where(events_erasure.person_invitations(contact)).order_by(Invitation.id))
    return [
        {"veranstaltung": invitation.event.title, "beginn": _iso(invitation.event.start_at), "name": invitation.name,
         "e_mail": invitation.email, "organisation": invitation.organisation_name, "antwort": invitation.state_label,
         "begleitpersonen": invitation.companions, "bemerkung": invitation.remark, "ernaehrung": invitation.dietary,
         "weitere_angaben": readable_answers(invitation), "weg": invitation.channel_label,
         "eingeladen": _iso(invitation.invited_at), "beantwortet": _iso(invitation.answered_at),
         **attendance.history_of(invitation)}
        for invitation in invitations
    ]


def _calendar_replies_json(contact: Contact) -> list[dict[str, Any]]:
    replies = db.session.scalars(select(CalendarReply).where(events_erasure.person_replies(contact)).order_by(CalendarReply.id))
    return [
        {"empfangen": _iso(reply.received_at), "absender": reply.from_email, "teilnehmer_adresse": reply.attendee_email,
         "teilnehmer_name": reply.attendee_name, "antwort": reply.partstat, "kommentar": reply.comment,
         "sequence": reply.sequence, "zeitstempel": _iso(reply.dtstamp), "mail_id": reply.message_id,
         "kalender_uid": reply.uid, "verarbeitung": reply.status.label}
        for reply in replies
    ]


def register_history_providers() -> None:
    for name, model in (("letters", ArchivedLetter), ("messages", OutboxMessage), ("invitations", Invitation)):
        recipient_services.register_contact_page_provider(name, lambda contact, model=model: _recent(model, contact))
    recipient_services.register_history_provider("briefe", _letters_json)
    recipient_services.register_history_provider("nachrichten", _messages_json)
    recipient_services.register_history_provider("einladungen", _invitations_json)
    recipient_services.register_history_provider("kalenderantworten", _calendar_replies_json)
    recipient_services.register_history_provider(
        "vor_ort_angemeldet", lambda contact: attendance.walk_ins_with(events_erasure.person_addresses(contact)))
    recipient_services.register_history_provider("importdateien_in_vorschau", recipients_erasure.pending_upload_rows)

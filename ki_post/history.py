"""One contact's history across the domains: letters produced, mails sent, invitations and answers.

Lives above the domain packages because it reads all of them; the Verteiler itself stays
independent of letters, outbox and events.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from .events.models import Invitation
from .extensions import db
from .letters.models import ArchivedLetter
from .outbox.models import OutboxMessage
from .recipients import services as recipient_services
from .recipients.models import Contact

HISTORY_LIMIT = 100


def contact_history(contact: Contact) -> dict[str, list]:
    return {
        "letters": db.session.scalars(
            select(ArchivedLetter).where(ArchivedLetter.contact_id == contact.id)
            .order_by(ArchivedLetter.id.desc()).limit(HISTORY_LIMIT)
        ).all(),
        "messages": db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.contact_id == contact.id)
            .order_by(OutboxMessage.id.desc()).limit(HISTORY_LIMIT)
        ).all(),
        "invitations": db.session.scalars(
            select(Invitation).where(Invitation.contact_id == contact.id)
            .order_by(Invitation.id.desc()).limit(HISTORY_LIMIT)
        ).all(),
    }


def _letters_json(contact: Contact) -> list[dict[str, Any]]:
    return [
        {"datei": letter.filename, "erzeugt": letter.created_at.isoformat(), "sha256": letter.sha256,
         "vorlagenversion": letter.template_version_id, "felder": letter.fields}
        for letter in contact_history(contact)["letters"]
    ]


def _messages_json(contact: Contact) -> list[dict[str, Any]]:
    return [
        {"betreff": message.subject, "an": message.to_email, "zustand": message.state_label,
         "gesendet": message.sent_at.isoformat() if message.sent_at else None, "aussendung": message.mailing_id}
        for message in contact_history(contact)["messages"]
    ]


def _invitations_json(contact: Contact) -> list[dict[str, Any]]:
    return [
        {"veranstaltung": invitation.event.title, "antwort": invitation.state_label,
         "begleitpersonen": invitation.companions, "bemerkung": invitation.remark,
         "weg": invitation.channel_label, "beantwortet": invitation.answered_at.isoformat() if invitation.answered_at else None}
        for invitation in contact_history(contact)["invitations"]
    ]


def register_history_providers() -> None:
    recipient_services.register_history_provider("briefe", _letters_json)
    recipient_services.register_history_provider("nachrichten", _messages_json)
    recipient_services.register_history_provider("einladungen", _invitations_json)

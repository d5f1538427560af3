"""The mails of an event (invitation, update, cancellation, reminder, confirmation): rendering and queueing."""
from __future__ import annotations

from typing import Any

from flask import current_app

from ..core.formatting import datum, datum_zeit, zeit
from ..errors import ValidationError
from ..extensions import db
from ..recipients.models import Contact
from . import ical
from .models import Event, Invitation

RSVP_PATH = "/antwort/"


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

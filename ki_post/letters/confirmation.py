"""The yearly "Bitte prüfen Sie Ihre Angaben" mailing: each active contact gets her personal
"Angaben prüfen" link (recipients.selfservice), through the outbox like every other mail.

It lives here, above the outbox, because it signs with the sender's lines the letters keep."""
from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from ..auth.services import audit
from ..errors import ValidationError
from ..extensions import db
from ..formatting import datum
from ..outbox.models import Mailing
from ..outbox.services import create_mailing, enqueue, render_mail, skip_recipient, start_mailing
from ..recipients.addressing import salutation
from ..recipients.models import ContactLink
from ..recipients.selfservice import link_token, link_url
from ..recipients.services import resolve_recipients, verteiler_by_name
from .services import signature_lines

KIND = "angaben_pruefen"


def queue_confirmation_mailing(list_name: str | None = None, *, start: bool = False,
                               created_by_id: int | None = None) -> Mailing:
    """One mail per active contact (of a Verteiler, or all), as a draft unless ``start``."""
    if list_name:
        contacts = resolve_recipients(verteiler_id=verteiler_by_name(list_name).id)
    else:
        contacts = resolve_recipients(filters={})
    if not contacts:
        raise ValidationError("Es gibt keine aktiven Ansprechpersonen, an die die Bitte gehen könnte.")
    signature = signature_lines()
    absender = "\n".join(signature) or current_app.config["APP_NAME"]
    title = "Bitte prüfen Sie Ihre Angaben" + (f" ({list_name})" if list_name else "")
    mailing = create_mailing("allgemein", title, created_by_id=created_by_id)
    queued = 0
    for contact in contacts:
        try:
            url = link_url(contact)
            expires = db.session.scalar(select(ContactLink.expires_at).where(ContactLink.token == link_token(contact)))
            mail = render_mail(KIND, {
                "anrede": salutation(contact), "link": url, "gueltig_bis": datum(expires),
                "organisation": contact.organisation.name if contact.organisation else "",
                "absender": absender, "absender_zeilen": signature,
            })
            enqueue(mailing, to_email=contact.email, to_name=contact.full_name, contact_id=contact.id,
                    subject=mail.subject, text=mail.text, html=mail.html)
        except ValidationError as error:
            if error.field == "kind":
                raise  # the template itself is broken: nobody should get this mail
            skip_recipient(mailing, to_email=contact.email or "", to_name=contact.full_name, contact_id=contact.id,
                           reason=str(error))
            continue
        queued += 1
    if start:
        start_mailing(mailing)
    db.session.flush()
    audit("aussendung.angaben-pruefen", mailing, anzahl=queued, uebersprungen=len(contacts) - queued)
    return mailing

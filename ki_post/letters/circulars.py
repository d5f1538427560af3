"""A circular as DOCX or PDF attachment with a cover mail, one outbox message per recipient.

Letters sit above the outbox: this module renders with the letters engine (archive-free) and hands
each letter to the outbox API; the outbox knows nothing of letters.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from flask import current_app

from ..auth.services import audit
from ..errors import ValidationError
from ..outbox.models import Mailing, OutboxMessage
from ..recipients.selfservice import LazyLink
from ..outbox.services import Attachment, create_mailing, enqueue, render_mail, skip_recipient, start_mailing
from ..recipients.addressing import salutation
from ..recipients.services import resolve_recipients, verteiler_by_name
from . import pdf, services as letters

if TYPE_CHECKING:
    from ..recipients.models import Contact
    from .models import LetterTemplateVersion

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def mail_circular(template_name: str, *, list_name: str | None = None, fmt: str = "docx", subject: str = "",
                  fields: Mapping[str, Any] | None = None, start: bool = True, created_by_id: int | None = None,
                  confirm_empty: bool = False, how_to_fix: str | None = None, progress=None) -> Mailing:
    """The latest version of a template to a Verteiler (or all active contacts), with default fields."""
    version = letters.template_by_name(template_name).latest
    contacts = resolve_recipients(verteiler_id=verteiler_by_name(list_name).id) if list_name else resolve_recipients(filters={})
    if not contacts:
        raise ValidationError("Der Verteiler enthält keine aktiven Kontakte mit E-Mail-Adresse.", "list")
    all_fields = {**letters.default_fields(), **(fields or {})}
    all_fields["betreff"] = subject or all_fields.get("betreff") or template_name
    return mail_letters(version, contacts, all_fields, fmt=fmt, start=start, created_by_id=created_by_id,
                        confirm_empty=confirm_empty, how_to_fix=how_to_fix or letters.HOW_TO_FIX_CLI, progress=progress)


def mail_letters(version: LetterTemplateVersion, contacts: Sequence[Contact], fields: Mapping[str, Any], *,
                 fmt: str = "docx", start: bool = True, created_by_id: int | None = None, confirm_empty: bool = False,
                 how_to_fix: str | None = None, progress: Callable[[int], None] | None = None,
                 started: Callable[[Mailing], None] | None = None) -> Mailing:
    """Render the circular per recipient and enqueue it with a cover mail (flushes, never commits).

    Shared by the CLI and the compose page; with ``start=False`` the mailing stays an Entwurf.
    Placeholders that would stay empty stop it first (unless ``confirm_empty``). After that, one
    recipient's problem never stops the others: a letter that cannot be filled in from that
    person's data, a PDF LibreOffice cannot make, an address ``enqueue`` refuses — each is recorded
    for that person with ``skip_recipient`` (state "übersprungen", German reason) and the rest is
    queued. Only when nobody at all can be reached does it raise (and nothing is created).
    """
    if fmt not in ("docx", "pdf"):
        raise ValidationError("Format muss docx oder pdf sein.", "format")
    if not contacts:
        raise ValidationError("Keine Empfängerinnen oder Empfänger ausgewählt.", "recipients")
    soffice = current_app.config.get("SOFFICE_PATH") or None
    # Checked before rendering: without LibreOffice every letter would be rendered for nothing.
    if fmt == "pdf" and not pdf.pdf_available(soffice):
        raise pdf.LibreOfficeMissing(pdf.INSTALL_HINT)
    fields = letters.clean_fields(fields)
    letters.require_complete(version, fields, confirm_empty=confirm_empty, how_to_fix=how_to_fix or letters.HOW_TO_FIX_WEB)
    signature = letters.signature_lines()  # the same lines as under event mails: person, function and unit, ministry
    problems: list[letters.RecipientProblem] = []
    rendered = list(letters.render_letters_for(contacts, version, fields, problems=problems))
    documents: list[bytes | None] = [document for _, document in rendered]
    if fmt == "pdf":
        documents = pdf.convert_to_pdf([d for d in documents if d is not None], soffice=soffice, missing_ok=True)
    mailing = create_mailing("rundschreiben", fields["betreff"], created_by_id=created_by_id)
    if started:
        started(mailing)  # a background job notes its mailing, to remove it should the job fail half-way
    for problem in problems:
        skip_recipient(mailing, to_email=problem.email, to_name=problem.name, contact_id=problem.contact_id,
                       reason=f"Brief nicht erstellt: {problem.reason}")
    skipped = [problem.reason for problem in problems]
    queued = 0
    for (contact, _), document in zip(rendered, documents):
        if progress:
            progress(1)
        if document is None:
            skipped.append("LibreOffice konnte den Brief nicht in PDF umwandeln.")
            skip_recipient(mailing, to_email=contact.email or "", to_name=contact.full_name, contact_id=contact.id,
                           reason=skipped[-1])
            continue
        filename = letters.letter_filename(contact, fields, fmt)
        try:
            mail = render_mail("rundschreiben", {
                "betreff": fields["betreff"], "aktenzeichen": fields.get("aktenzeichen", ""),
                "anrede": salutation(contact), "datum": letters.format_letter_date(fields.get("datum", "")),
                "dateiname": filename, "absender": "\n".join(signature) or current_app.config["APP_NAME"],
                # Shown only where the template uses it ("Angaben prüfen"); the link is made on first use.
                "angaben_pruefen_link": LazyLink(contact),
            })
            enqueue(mailing, to_email=contact.email, to_name=contact.full_name, contact_id=contact.id,
                    subject=mail.subject, text=mail.text, html=mail.html,
                    attachments=[Attachment(filename, DOCX_MIME if fmt == "docx" else "application/pdf", document)])
        except ValidationError as error:
            skipped.append(str(error))
            skip_recipient(mailing, to_email=contact.email or "", to_name=contact.full_name, contact_id=contact.id,
                           reason=skipped[-1])
            continue
        queued += 1
    if not queued:
        # The caller rolls back: no mailing made only of skipped rows.
        raise ValidationError("Für keine Empfängerin und keinen Empfänger ließ sich eine Nachricht erstellen: "
                              + "; ".join(list(dict.fromkeys(skipped))[:3]))
    if start:
        start_mailing(mailing)
    # The template version is noted so that the Akten-Export (records) finds it for a mailing from the CLI too.
    audit("aussendung.rundschreiben", mailing, anzahl=queued, uebersprungen=len(skipped), vorlage=version.id)
    return mailing


def skipped_recipients(mailing: Mailing) -> list[OutboxMessage]:
    return [message for message in mailing.messages if message.state == "uebersprungen"]

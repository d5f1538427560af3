"""`flask --app app letters mail`: a circular as DOCX or PDF attachment with a cover mail, one per recipient.

Lives in the outbox package for now (registered into the ``letters`` group from ``outbox/cli.py``);
it only glues the letters engine (rendering, archive-free) to the outbox API.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from ..errors import KiPostError, ValidationError
from ..extensions import db
from .models import Mailing
from .services import Attachment, create_mailing, enqueue, render_mail, start_mailing

if TYPE_CHECKING:
    from ..letters.models import LetterTemplateVersion
    from ..recipients.models import Contact

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def mail_circular(template_name: str, *, list_name: str | None = None, fmt: str = "docx", subject: str = "",
                  start: bool = True, created_by_id: int | None = None, progress=None) -> Mailing:
    """The latest version of a template to a Verteiler (or all active contacts), with default fields."""
    from ..letters import services as letters
    from ..recipients.services import resolve_recipients, verteiler_by_name

    version = letters.template_by_name(template_name).latest
    contacts = resolve_recipients(verteiler_id=verteiler_by_name(list_name).id) if list_name else resolve_recipients(filters={})
    if not contacts:
        raise ValidationError("Der Verteiler enthält keine aktiven Kontakte mit E-Mail-Adresse.", "list")
    fields = letters.default_fields()
    fields["betreff"] = subject or fields.get("betreff") or template_name
    return mail_letters(version, contacts, fields, fmt=fmt, start=start, created_by_id=created_by_id, progress=progress)


def mail_letters(version: LetterTemplateVersion, contacts: Sequence[Contact], fields: Mapping[str, Any], *,
                 fmt: str = "docx", start: bool = True, created_by_id: int | None = None,
                 progress: Callable[[int], None] | None = None) -> Mailing:
    """Render the circular per recipient and enqueue it with a cover mail (flushes, never commits).

    Shared by the CLI and the compose page; with ``start=False`` the mailing stays an Entwurf.
    """
    from flask import current_app

    from ..letters import pdf, services as letters
    from ..recipients.addressing import salutation

    if fmt not in ("docx", "pdf"):
        raise ValidationError("Format muss docx oder pdf sein.", "format")
    if not contacts:
        raise ValidationError("Keine Empfängerinnen oder Empfänger ausgewählt.", "recipients")
    soffice = current_app.config.get("SOFFICE_PATH") or None
    # Checked before rendering: without LibreOffice every letter would be rendered for nothing.
    if fmt == "pdf" and not pdf.pdf_available(soffice):
        raise pdf.LibreOfficeMissing(pdf.INSTALL_HINT)
    fields = letters.clean_fields(fields)
    profile = letters.sender_dict(letters.sender_profile())
    rendered = list(letters.render_letters_for(contacts, version, fields))
    documents = [document for _, document in rendered]
    if fmt == "pdf":
        documents = pdf.convert_to_pdf(documents, soffice=soffice)
    mailing = create_mailing("rundschreiben", fields["betreff"], created_by_id=created_by_id)
    for (contact, _), document in zip(rendered, documents):
        filename = letters.letter_filename(contact, fields, fmt)
        mail = render_mail("rundschreiben", {
            "betreff": fields["betreff"], "aktenzeichen": fields.get("aktenzeichen", ""),
            "anrede": salutation(contact), "datum": letters.format_letter_date(fields.get("datum", "")),
            "dateiname": filename, "absender": "\n".join(p for p in (profile.get("ansprechperson"), profile.get("ministerium")) if p)
                        or current_app.config["APP_NAME"],
        })
        enqueue(mailing, to_email=contact.email, to_name=contact.full_name, contact_id=contact.id,
                subject=mail.subject, text=mail.text, html=mail.html,
                attachments=[Attachment(filename, DOCX_MIME if fmt == "docx" else "application/pdf", document)])
        if progress:
            progress(1)
    if start:
        start_mailing(mailing)
    return mailing


@click.command("mail", help="Rundschreiben als Anhang mit Begleitmail in den Postausgang stellen; "
                            "die Nummer der Aussendung steht allein in der letzten Zeile.")
@click.option("--template", "template_name", required=True, help="Name der Briefvorlage (siehe „letters templates“).")
@click.option("--list", "list_name", default=None, help="Verteiler; ohne Angabe alle aktiven Kontakte.")
@click.option("--format", "fmt", type=click.Choice(["docx", "pdf"]), default="docx", show_default=True, help="Format des Anhangs.")
@click.option("--subject", default="", help="Betreff des Rundschreibens (Brieffeld „betreff“ und Betreff der Mail).")
@click.option("--entwurf", "draft", is_flag=True, help="Nur als Entwurf anlegen (Vorschau und Testversand in der Oberfläche).")
def mail_command(template_name: str, list_name: str | None, fmt: str, subject: str, draft: bool) -> None:
    try:
        with click.progressbar(length=0, label="Rundschreiben", file=sys.stderr) as bar:
            mailing = mail_circular(template_name, list_name=list_name, fmt=fmt, subject=subject, start=not draft,
                                    progress=lambda n: bar.update(n))
        from ..auth.services import audit

        audit("outbox.rundschreiben", mailing, count=len(mailing.messages))
        db.session.commit()
    except KiPostError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from None
    click.echo(f"{len(mailing.messages)} Nachrichten eingereiht ({'Entwurf' if draft else 'wird gesendet'}).", err=True)
    click.echo(mailing.id)

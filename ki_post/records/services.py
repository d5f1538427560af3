"""Akten-Export: a finished circular, an archived Vorgang or an event as one ZIP for the e-Akte.

- ``mailing_package``: a mailed circular (outbox Aussendung of kind Rundschreiben): the template
  version as used, every letter as sent (a DOCX letter also as PDF/A), the per-recipient log from the
  outbox (who, when, Message-ID, result).
- ``run_package``: a Vorgang im Archiv (LetterRun: letters made as files, not mailed): the template
  version, every archived letter (a DOCX also as PDF/A), the list of letters.
- ``event_package``: an event: the participant list (PDF/A), the invitations and answers, the log of
  every mail sent about it.

Erased persons: their messages in the outbox are scrubbed (address, name, text, attachments); the log
shows them as anonymised and nothing is taken from anywhere else to fill them in. Their archived
letters are records and stay (letters/erasure.py), but only the administration sees them: without
``include_restricted`` they are left out and counted in a note.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select

from ..auth.models import AuditEntry
from ..blobs import load_blob
from ..db_types import utcnow
from ..errors import ValidationError
from ..events.models import Event
from ..events.participants import participant_header, participant_rows
from ..events.signin import participant_list
from ..extensions import db
from ..letters import pdf
from ..letters.engine import DOCX_MIMETYPE
from ..letters.models import LetterJob, LetterRun, LetterTemplateVersion
from ..letters.services import safe_filename
from ..outbox.models import Mailing, MailingKind, MailingState, MessageState, OutboxMessage
from ..recipients.addresses import ANONYMISED_ADDRESS
from ..transaction import get_or_404
from .package import Package, timestamp

CSV = "text/csv"
PDF = "application/pdf"
LOG_HEADER = ["Nr.", "Aussendung", "Art", "Empfänger", "E-Mail", "Betreff", "Zeitpunkt", "Message-ID", "Ergebnis",
              "Antwort des Servers", "Datei"]
ANONYMISED = "(anonymisiert)"


class UnfinishedMailing(ValidationError):
    """The mailing still has messages to send (or is a draft): its log is not final yet."""


# --- shared pieces -----------------------------------------------------------------------------------------
def _template(package: Package, version: LetterTemplateVersion | None) -> None:
    if version is None:
        package.notes.append("Die verwendete Vorlage ist nicht vermerkt; sie fehlt in diesem Export.")
        return
    name = f"vorlage/{safe_filename(version.template.name)}_v{version.number}.docx"
    package.add(name, f"Vorlage „{version.template.name}“, Version {version.number}", "Vorlage (DOCX)", DOCX_MIMETYPE,
                version.created_at, load_blob(version.blob_key))


def _letters(package: Package, letters: Iterable[tuple[str, str, datetime, bytes]]) -> dict[int, str]:
    """Each letter as it went out; a DOCX letter also as PDF/A (one batch on the one LibreOffice road).
    Returns, per position in ``letters``, the name of the file in the ZIP."""
    letters = list(letters)
    docx = [index for index, (name, _, _, data) in enumerate(letters) if not data.startswith(b"%PDF")]
    pdfs = dict(zip(docx, pdf.convert_to_pdf([letters[index][3] for index in docx]))) if docx else {}
    names: dict[int, str] = {}
    for index, (name, title, created, data) in enumerate(letters):
        name = name.replace("/", "_").replace("\\", "_").lstrip(".") or "brief"  # never a folder of its own
        if data.startswith(b"%PDF"):
            names[index] = package.add(f"briefe/{name}", title, "Brief wie versandt (PDF/A)", PDF, created, data).name
            continue
        entry = package.add(f"briefe/{name}", title, "Brief wie versandt (DOCX)", DOCX_MIMETYPE, created, data)
        names[index] = entry.name
        stem = entry.name.rsplit("/", 1)[1].rsplit(".", 1)[0]
        package.add(f"briefe/{stem}.pdf", title, "Brief, PDF/A-Fassung für die Akte", PDF, created, pdfs[index])
    return names


def _message_row(number: int, message: OutboxMessage, file: str = "") -> list[str]:
    scrubbed = message.to_email == ANONYMISED_ADDRESS
    when = message.sent_at or (message.date if message.state in MessageState.MAY_HAVE_ARRIVED else None)
    return [str(number), str(message.mailing_id), message.mailing.kind_label,
            ANONYMISED if scrubbed else message.to_name, ANONYMISED if scrubbed else message.to_email,
            message.subject, timestamp(when) if when else "", message.message_id, message.state_label,
            message.server_reply, file]


def _log(package: Package, rows: list[list[str]], title: str) -> None:
    from .. import exports

    package.add("versandprotokoll.csv", title, "Versandprotokoll (CSV)", CSV, package.created,
                exports.csv_bytes(LOG_HEADER, rows), count=len(rows))


# --- a mailed circular -------------------------------------------------------------------------------------
def mailing_finished(mailing: Mailing) -> bool:
    """Released and nothing left to send (as the mailing page's "Fertig."): its log is final."""
    if mailing.state == MailingState.ENTWURF:
        return False
    left = db.session.scalar(select(OutboxMessage.id).where(
        OutboxMessage.mailing_id == mailing.id, OutboxMessage.state.in_(MessageState.LEFT_TO_SEND)).limit(1))
    return left is None


def _mailing_version(mailing: Mailing) -> LetterTemplateVersion | None:
    job = db.session.scalar(select(LetterJob).where(LetterJob.mailing_id == mailing.id).limit(1))
    version_id = job.params.get("version_id") if job is not None else None
    if version_id is None:  # mailed from the command line: the audit entry names the version
        entry = db.session.scalar(select(AuditEntry).where(
            AuditEntry.action == "aussendung.rundschreiben", AuditEntry.object_type == Mailing.__tablename__,
            AuditEntry.object_id == mailing.id).limit(1))
        version_id = (entry.details or {}).get("vorlage") if entry is not None else None
    return db.session.get(LetterTemplateVersion, version_id) if version_id is not None else None


def mailing_package(mailing_id: int, *, unfinished: bool = False) -> Package:
    """A mailed circular for the files. An unfinished one (a draft, messages still waiting, paused) is
    refused unless ``unfinished``; then the manifest says that its log was not final."""
    mailing = get_or_404(Mailing, mailing_id, "Aussendung")
    if mailing.kind != MailingKind.RUNDSCHREIBEN:
        raise ValidationError(f"Aussendung {mailing.id} ist kein Rundschreiben, sondern „{mailing.kind_label}“. "
                              "Veranstaltungen werden mit --event ausgeführt.", "mailing")
    if mailing.state == MailingState.ENTWURF:
        raise UnfinishedMailing(f"Aussendung {mailing.id} ist ein Entwurf und wurde nicht versandt: nichts zu den Akten zu geben.",
                                "mailing")
    package = Package(f"Rundschreiben „{mailing.title}“ (Aussendung {mailing.id})", f"aussendung-{mailing.id}", utcnow())
    if not mailing_finished(mailing):
        if not unfinished:
            raise UnfinishedMailing(f"Aussendung {mailing.id} ist noch nicht abgeschlossen ({mailing.state_label}): Nachrichten "
                                    "warten noch auf den Versand. Bitte nach dem Versand ausführen – oder ausdrücklich einen "
                                    "Zwischenstand ausführen (--unvollstaendig).", "mailing")
        package.notes.append(f"Zwischenstand: Die Aussendung war bei der Ausfuhr noch nicht abgeschlossen ({mailing.state_label}).")
    _template(package, _mailing_version(mailing))
    messages = list(mailing.messages)
    sent = [(message, attachment) for message in messages for attachment in message.attachments[:1]]
    names = _letters(package, ((f"{number:04d}_{attachment.filename}", f"{mailing.title} – {message.to_name or message.to_email}",
                                message.created_at, load_blob(attachment.blob_sha256))
                               for number, (message, attachment) in enumerate(sent, start=1)))
    files = {message.id: names[index] for index, (message, _) in enumerate(sent)}
    scrubbed = sum(1 for message in messages if message.to_email == ANONYMISED_ADDRESS)
    if scrubbed:
        package.notes.append(f"{scrubbed} Empfänger wurden anonymisiert oder gelöscht: ihre Nachrichten und Briefe sind im "
                             "Postausgang gelöscht und erscheinen im Protokoll nur als „anonymisiert“.")
    _log(package, [_message_row(number, message, files.get(message.id, "").removeprefix("briefe/"))
                   for number, message in enumerate(messages, start=1)],
         f"Versandprotokoll der Aussendung {mailing.id}: {mailing.title}")
    return package


# --- a Vorgang im Archiv -----------------------------------------------------------------------------------
LETTER_LIST_HEADER = ["Nr.", "Empfänger", "Organisation", "Datei", "Erstellt", "SHA-256 wie archiviert"]


def run_package(run_id: int, *, include_restricted: bool) -> Package:
    from .. import exports

    run = get_or_404(LetterRun, run_id, "Vorgang")
    subject = (run.fields or {}).get("betreff") or run.template_version.template.name
    package = Package(f"Vorgang {run.id}: {subject}", f"vorgang-{run.id}", utcnow())
    _template(package, run.template_version)
    shown = [letter for letter in run.letters if include_restricted or letter.addressee_erased_at is None]
    withheld = len(run.letters) - len(shown)
    names = _letters(package, ((letter.filename, f"{subject} – {letter.recipient}", letter.created_at, load_blob(letter.sha256))
                               for letter in shown))
    file_of = {letter.id: names[index].removeprefix("briefe/") for index, letter in enumerate(shown)}
    rows = []
    for number, letter in enumerate(run.letters, start=1):
        if letter.id in file_of:
            rows.append([str(number), letter.recipient, letter.organisation, file_of[letter.id], timestamp(letter.created_at),
                         letter.sha256])
        else:
            rows.append([str(number), "(nur für die Verwaltung)", "", "", timestamp(letter.created_at), letter.sha256])
    package.add("briefliste.csv", f"Briefe des Vorgangs {run.id}", "Briefliste (CSV)", CSV, package.created,
                exports.csv_bytes(LETTER_LIST_HEADER, rows), count=len(rows))
    if withheld:
        package.notes.append(f"{withheld} Briefe an anonymisierte oder gelöschte Personen darf nur die Verwaltung öffnen; "
                             "sie fehlen in diesem Export (in der Briefliste mit ihrer Prüfsumme vermerkt).")
    return package


# --- an event ----------------------------------------------------------------------------------------------
def event_package(event_id: int) -> Package:
    from .. import exports

    event = get_or_404(Event, event_id, "Veranstaltung")
    package = Package(f"Veranstaltung „{event.title}“ ({event.id})", f"veranstaltung-{event.id}", utcnow())
    accepted = sum(1 for invitation in event.invitations if invitation.state == "zugesagt")
    package.add("teilnehmerliste.pdf", f"Teilnehmerliste: {event.title}", "Teilnehmerliste (PDF/A)", PDF, package.created,
                participant_list(event), count=accepted)
    rows = participant_rows(event)
    package.add("einladungen_und_antworten.csv", f"Einladungen und Antworten: {event.title}", "Einladungen und Antworten (CSV)",
                CSV, package.created, exports.csv_bytes(participant_header(event), rows), count=len(rows))
    messages = db.session.scalars(select(OutboxMessage).join(Mailing, Mailing.id == OutboxMessage.mailing_id)
                                  .where(Mailing.event_id == event.id, Mailing.state != MailingState.ENTWURF)
                                  .order_by(OutboxMessage.mailing_id, OutboxMessage.id)).all()
    _log(package, [_message_row(number, message) for number, message in enumerate(messages, start=1)],
         f"Versandprotokoll der Veranstaltung {event.id}: {event.title}")
    if event.state == "entwurf":
        package.notes.append("Die Veranstaltung war bei der Ausfuhr noch nicht veröffentlicht.")
    return package

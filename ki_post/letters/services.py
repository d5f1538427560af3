"""Letter templates (versions in the blob store), sender profile, letter context, production runs."""
from __future__ import annotations

import functools
import re
import unicodedata
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any

from flask import current_app
from sqlalchemy import func, insert, select

from ..auth.services import audit
from ..blobs import load_blob, sha256_of, store_blob, store_blobs
from ..db_types import utcnow
from ..formatting import datum
from ..errors import NotFound, ValidationError
from ..extensions import db
from ..recipients.addressing import address_lines, role_wording, salutation
from ..recipients.models import ORGANISATION_KINDS, Contact
from . import engine, isolation, pdf, schema
from .schema import (  # noqa: F401 - part of this module's API
    DEFAULT_SENDER, KNOWN_NAMES, LETTER_FIELDS, PLACEHOLDERS, SENDER_TEXT_FIELDS, Placeholder, sample_context,
)
from .models import ArchivedLetter, LetterRun, LetterTemplate, LetterTemplateVersion, SenderProfile

SHIPPED_DIR = Path(__file__).resolve().parents[2] / "templates" / "letters"
MAX_TEMPLATE_BYTES = 10 * 1024 * 1024
OUTPUTS = {
    "zip": "ZIP mit einer DOCX-Datei je Empfänger",
    "merged": "Ein DOCX-Dokument für den Druck (alle Briefe)",
    "zip_pdf": "ZIP mit einer PDF-Datei je Empfänger",
    "merged_pdf": "Ein PDF-Dokument für den Druck (alle Briefe)",
}
FILE_PATTERN = "{datum}_{betreff}_{organisation}"

# --- templates ------------------------------------------------------------------------------------
_COMPILED: OrderedDict[str, engine.CompiledTemplate] = OrderedDict()
_COMPILED_MAX = 16


def compiled(version: LetterTemplateVersion) -> engine.CompiledTemplate:
    """Compiled once per process and template content (keyed by sha256), shared by all requests."""
    key = version.blob_key
    if key in _COMPILED:
        _COMPILED.move_to_end(key)
        return _COMPILED[key]
    result = engine.compile_template(load_blob(key))
    _COMPILED[key] = result
    while len(_COMPILED) > _COMPILED_MAX:
        _COMPILED.popitem(last=False)
    return result


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError("Bitte einen Namen für die Vorlage angeben.", field="name")
    if len(name) > 100 or any(ord(c) < 32 for c in name):
        raise ValidationError("Der Name darf höchstens 100 Zeichen lang sein und keine Steuerzeichen enthalten.", field="name")
    return name


def upload_template(name: str, data: bytes, *, filename: str = "", description: str = "", user: str = "",
                    shipped: bool = False) -> tuple[LetterTemplateVersion, list[str]]:
    """Check a DOCX and store it as a new template, or as the next version of the template ``name``."""
    name = _clean_name(name)
    if len(data) > MAX_TEMPLATE_BYTES:
        raise ValidationError("Die Datei ist größer als 10 MB.", field="file")
    if shipped:
        # A file of the code base, not an upload: checked in-process (it is in every test and first run).
        warnings = engine.validate_template(data).warnings
    else:
        # An upload: judged by its ZIP directory here (nothing inflated), then compiled and filled
        # in with example data in a bounded child process.
        engine.check_directory(data)
        warnings = isolation.check_template(data).warnings
    template = db.session.scalar(select(LetterTemplate).where(LetterTemplate.name == name))
    if template is None:
        template = LetterTemplate(name=name, description=description.strip(), shipped=shipped)
        db.session.add(template)
        db.session.flush()
    elif description.strip():
        template.description = description.strip()
    number = (db.session.scalar(select(func.max(LetterTemplateVersion.number)).where(
        LetterTemplateVersion.template_id == template.id)) or 0) + 1
    version = LetterTemplateVersion(
        template=template, number=number, filename=(filename or f"{name}.docx")[:255], blob_key=store_blob(data),
        size=len(data), warnings=warnings, created_by=user)
    db.session.add(version)
    db.session.flush()
    audit("vorlage.hochgeladen", version, template_id=template.id, version=number)
    return version, warnings


def ensure_shipped_templates() -> int:
    """Register the DOCX files of templates/letters/ that are not in the database yet; returns how many."""
    created = 0
    for path in sorted(SHIPPED_DIR.glob("*.docx")):
        name = path.stem
        if db.session.scalar(select(LetterTemplate.id).where(LetterTemplate.name == name)) is None:
            upload_template(name, path.read_bytes(), filename=path.name, description="Mitgelieferte Vorlage (DIN 5008 Form A)",
                            user="KI-Post", shipped=True)
            created += 1
    return created


def list_templates() -> list[LetterTemplate]:
    return list(db.session.scalars(select(LetterTemplate).order_by(LetterTemplate.name)))


def pending_shipped_templates() -> list[str]:
    """Shipped template names not registered yet: offered in the UI, registered when first used (GET changes nothing)."""
    known = set(db.session.scalars(select(LetterTemplate.name)))
    return [path.stem for path in sorted(SHIPPED_DIR.glob("*.docx")) if path.stem not in known]


def version_from_choice(choice: str) -> LetterTemplateVersion:
    """A compose-form choice: "v:<version id>", or "shipped:<name>" for a shipped template used the first time."""
    kind, _, value = (choice or "").partition(":")
    if kind == "v" and value.isdigit():
        return get_version(int(value))
    if kind == "shipped" and value in pending_shipped_templates() + [t.name for t in list_templates() if t.shipped]:
        ensure_shipped_templates()
        return template_by_name(value).latest
    raise ValidationError("Bitte eine Vorlage wählen.", field="version_id")


def template_by_name(name: str) -> LetterTemplate:
    ensure_shipped_templates()
    template = db.session.scalar(select(LetterTemplate).where(LetterTemplate.name == (name or "").strip()))
    if template is None:
        names = ", ".join(t.name for t in db.session.scalars(select(LetterTemplate).order_by(LetterTemplate.name)))
        raise NotFound(f"Die Vorlage „{name}“ gibt es nicht. Vorhanden: {names or 'keine'}.")
    return template


def get_version(version_id: int) -> LetterTemplateVersion:
    version = db.session.get(LetterTemplateVersion, version_id)
    if version is None:
        raise NotFound("Diese Vorlagenversion gibt es nicht.")
    return version


# --- sender profile ----------------------------------------------------------------------------------
def sender_profile() -> SenderProfile:
    """The stored profile, or (unsaved) the facts of the reference letter until someone saves one."""
    profile = db.session.scalar(select(SenderProfile).order_by(SenderProfile.id).limit(1))
    return profile if profile is not None else SenderProfile(**DEFAULT_SENDER)


def ensure_sender_profile() -> SenderProfile:
    profile = sender_profile()
    if profile.id is None:
        db.session.add(profile)
        db.session.flush()
    return profile


def parse_signatories(text: str) -> list[dict[str, str]]:
    """One signatory per line: "Name; Funktion"."""
    result = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        name, _, function = line.partition(";")
        if not name.strip():
            raise ValidationError(f"Zeile {number}: Bitte „Name; Funktion“ angeben.", field="unterzeichnende")
        result.append({"name": name.strip(), "funktion": function.strip()})
    if len(result) > 4:
        raise ValidationError("Höchstens vier Unterzeichnende.", field="unterzeichnende")
    return result


def update_sender_profile(values: Mapping[str, Any]) -> SenderProfile:
    """Change the given fields (Rundschreiben → Absenderangaben and Verwaltung → Einstellungen edit the
    same profile); the audit entry names the fields that changed, never their content."""
    profile = ensure_sender_profile()
    changed = []
    for key in SENDER_TEXT_FIELDS:
        if key in values:
            value = str(values[key] or "").replace("\r\n", "\n").strip()
            if len(value) > 1000:
                raise ValidationError("Die Angabe ist zu lang (höchstens 1000 Zeichen).", field=key)
            if getattr(profile, key) != value:
                setattr(profile, key, value)
                changed.append(key)
    if "unterzeichnende" in values:
        signatories = values["unterzeichnende"]
        signatories = parse_signatories(signatories) if isinstance(signatories, str) else list(signatories)
        if signatories != profile.unterzeichnende:
            profile.unterzeichnende = signatories
            changed.append("unterzeichnende")
    db.session.flush()
    if changed:
        audit("absender.geaendert", profile, felder=", ".join(changed))
    return profile


def sender_dict(profile: SenderProfile) -> dict[str, Any]:
    return {key: getattr(profile, key) for key in DEFAULT_SENDER}


def signature_lines(profile: SenderProfile | None = None) -> list[str]:
    """Who signs mails and the public answer page: person, function and unit, ministry (never the
    product's name). Empty parts are left out."""
    profile = profile or sender_profile()
    role = ", ".join(part for part in (profile.funktion, profile.organisationseinheit) if part)
    return [line for line in (profile.ansprechperson, role, profile.ministerium) if line]


def default_fields(profile: SenderProfile | None = None, today: date | None = None) -> dict[str, str]:
    profile = profile or sender_profile()
    return {
        "datum": (today or date.today()).isoformat(), "aktenzeichen": profile.aktenzeichen, "betreff": "",
        "ansprechperson": profile.ansprechperson, "telefon": profile.telefon, "telefax": profile.telefax,
        "email": profile.email,
    }


@functools.lru_cache(maxsize=256)
def format_letter_date(value: str) -> str:
    """ISO dates become "28. Dezember 2016" (ANR-10); anything else is used as written.

    Cached: every letter of a run asks for the same date, and Babel's formatting cost as much as
    a tenth of rendering the letter.
    """
    value = (value or "").strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return datum(date.fromisoformat(value))
        except ValueError:
            raise ValidationError(f"„{value}“ ist kein gültiges Datum.", field="datum") from None
    return value


def clean_fields(fields: Mapping[str, Any]) -> dict[str, str]:
    """Letter fields plus extra fields; names must be simple identifiers so templates can use them."""
    result: dict[str, str] = {}
    for key, value in fields.items():
        key = str(key).strip()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,49}", key):
            raise ValidationError(f"Ungültiger Feldname „{key}“: nur Buchstaben, Ziffern und _ (ohne Umlaute).", field="fields")
        text = str(value if value is not None else "")
        if len(text) > 2000:
            raise ValidationError(f"Das Feld „{key}“ ist zu lang (höchstens 2000 Zeichen).", field=key)
        result[key] = text
    format_letter_date(result.get("datum", ""))
    return result


# --- context ----------------------------------------------------------------------------------------
def contact_context(contact: Contact | None) -> dict[str, Any]:
    organisation = contact.organisation if contact is not None else None
    kind = organisation.kind if organisation is not None else ""
    return {
        "anrede": salutation(contact),
        "anschrift": address_lines(contact),
        "funktion_empfaenger": role_wording(contact),
        "kontakt": {
            "name": contact.full_name if contact else "", "vorname": contact.first_name if contact else "",
            "nachname": contact.last_name if contact else "", "titel": contact.academic_title if contact else "",
            "anrede": {"frau": "Frau", "herr": "Herr"}.get(contact.anrede, "") if contact else "",
            "amtsbezeichnung": contact.office_title if contact else "", "funktion": contact.function if contact else "",
            "email": contact.email if contact else "", "telefon": contact.phone if contact else "",
        },
        "organisation": {
            "name": organisation.name if organisation else "", "art": ORGANISATION_KINDS.get(kind, ""),
            "behoerde": organisation.authority if organisation else "", "strasse": organisation.street if organisation else "",
            "plz": organisation.postcode if organisation else "", "ort": organisation.town if organisation else "",
            "regierungsbezirk": organisation.regierungsbezirk if organisation else "",
            "ki_name": organisation.ki_name if organisation else "",
        },
        # A StädteRegion is funded like a Kreis.
        "ist_kreis": kind in ("kreis", "staedteregion"),
        "ist_kreisfreie_stadt": kind == "kreisfreie_stadt",
        "ist_staedteregion": kind == "staedteregion",
    }


def letter_context(contact: Contact | None, fields: Mapping[str, str], sender: Mapping[str, Any]) -> dict[str, Any]:
    """Everything a template can use for one recipient (all plain data: no ORM objects reach Jinja)."""
    context = contact_context(contact)
    extra = {k: v for k, v in fields.items() if k not in LETTER_FIELDS}
    for key in LETTER_FIELDS:
        context[key] = fields.get(key, "")
    context["datum"] = format_letter_date(fields.get("datum", ""))
    context["unterzeichnende"] = [dict(p) for p in sender.get("unterzeichnende", [])]
    context["absender"] = dict(sender)
    # An extra field left empty is absent, so {{ felder.x|default("…") }} applies to it as well.
    context["felder"] = {key: value for key, value in extra.items() if value.strip()}
    return context


# --- checks before anything is produced ---------------------------------------------------------------
HOW_TO_FIX_WEB = ("Zusatzfelder unter „Zusatzfelder“ als „name=Wert“ angeben, Schreibfehler in der Vorlage beheben – "
                  "oder, wenn die Stellen leer bleiben sollen, „Leere Platzhalter bestätigen“ ankreuzen.")
HOW_TO_FIX_CLI = ("Zusatzfelder mit --set name=WERT angeben, Schreibfehler in der Vorlage beheben – "
                  "oder, wenn die Stellen leer bleiben sollen, --leere-felder angeben.")


@dataclass
class RunCheck:
    """What would stay empty in every letter: extra fields without a value, unknown placeholders."""

    missing_fields: list[str]
    unknown: list[schema.Unknown]

    @property
    def problems(self) -> list[str]:
        return ([f"felder.{name} (Zusatzfeld ohne Wert)" for name in self.missing_fields]
                + [f"{unknown} (unbekannter Platzhalter)" for unknown in self.unknown])


class EmptyPlaceholders(ValidationError):
    """Placeholders would stay empty and nobody confirmed that; ``check`` lists them."""

    def __init__(self, check: RunCheck, how_to_fix: str):
        super().__init__("Diese Platzhalter blieben in den Briefen leer: " + "; ".join(check.problems) + ". " + how_to_fix,
                         field="leere_bestaetigt")
        self.check = check


def check_run(version: LetterTemplateVersion, fields: Mapping[str, Any]) -> RunCheck:
    references = compiled(version).references
    given = {key for key, value in clean_fields(fields).items() if key not in LETTER_FIELDS and value.strip()}
    return RunCheck(sorted(references.fields - given), schema.unknown_placeholders(references))


def require_complete(version: LetterTemplateVersion, fields: Mapping[str, Any], *, confirm_empty: bool,
                     how_to_fix: str = HOW_TO_FIX_WEB) -> RunCheck:
    """Stop before producing when placeholders would stay empty, unless the user confirmed that."""
    check = check_run(version, fields)
    if check.problems and not confirm_empty:
        raise EmptyPlaceholders(check, how_to_fix)
    return check


@dataclass(frozen=True)
class RecipientProblem:
    """One recipient whose letter or message could not be made, with the German reason."""

    contact_id: int | None
    name: str
    organisation: str
    email: str
    reason: str

    @classmethod
    def of(cls, contact: Contact, reason: str) -> RecipientProblem:
        return cls(contact.id, contact.full_name or contact.email, contact.organisation.name if contact.organisation else "",
                   contact.email or "", reason)

    def __str__(self) -> str:
        who = self.name + (f" ({self.organisation})" if self.organisation else "")
        return f"{who}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {"contact_id": self.contact_id, "name": self.name, "organisation": self.organisation,
                "email": self.email, "reason": self.reason}


def render_letters_for(contacts: Iterable[Contact], version: LetterTemplateVersion, fields: Mapping[str, Any],
                       sender: Mapping[str, Any] | None = None,
                       problems: list[RecipientProblem] | None = None) -> Iterator[tuple[Contact, bytes]]:
    """(contact, DOCX bytes) per recipient: the one rendering road for downloads, CLI and mail attachments.

    With ``problems``, a recipient whose letter cannot be filled in (an error from that person's
    data, a limit of the sandbox) is recorded there and left out; the others go on. Without it, the
    first such error is raised.
    """
    template = compiled(version)
    cleaned = clean_fields(fields)
    sender = sender if sender is not None else sender_dict(sender_profile())
    author = sender.get("ministerium") or current_app.config.get("APP_NAME", "")
    for contact in contacts:
        try:
            document = template.render(letter_context(contact, cleaned, sender), letter_properties(contact, cleaned, author))
        except ValidationError as error:
            if problems is None:
                raise
            problems.append(RecipientProblem.of(contact, str(error)))
            continue
        yield contact, document


def letter_properties(contact: Contact, fields: Mapping[str, Any], author: str) -> engine.DocumentProperties:
    """Title and author of a letter's document (its PDF/A names them): "Rundschreiben: <Betreff> – <Empfänger>"."""
    addressee = (contact.organisation.name if contact.organisation else "") or contact.full_name or contact.email or ""
    title = "Rundschreiben: " + (str(fields.get("betreff") or "").strip() or "ohne Betreff")
    return engine.DocumentProperties(title + (f" – {addressee}" if addressee else ""), author)


def recipient_problems(version: LetterTemplateVersion, contacts: Sequence[Contact], fields: Mapping[str, Any]) -> list[RecipientProblem]:
    """A dry run (nothing archived): whose letters cannot be made, and why."""
    problems: list[RecipientProblem] = []
    for _ in render_letters_for(contacts, version, fields, problems=problems):
        pass
    return problems


def nothing_produced(problems: Sequence[RecipientProblem]) -> ValidationError:
    shown = "; ".join(map(str, problems[:3])) + (f"; und {len(problems) - 3} weitere" if len(problems) > 3 else "")
    return ValidationError(f"Für keine Empfängerin und keinen Empfänger ließ sich etwas erstellen: {shown}")


def preview_document(version: LetterTemplateVersion, contacts: Sequence[Contact], fields: Mapping[str, Any],
                     index: int) -> tuple[int, bytes]:
    """Mail-merge preview: the DOCX of the letter for recipient ``index`` (clamped to 0…n-1)."""
    if not contacts:
        raise ValidationError("Keine Empfängerinnen oder Empfänger ausgewählt.", field="recipients")
    index = max(0, min(index, len(contacts) - 1))
    _, document = next(render_letters_for([contacts[index]], version, fields))
    return index, document


def preview(version: LetterTemplateVersion, contacts: Sequence[Contact], fields: Mapping[str, Any], index: int) -> tuple[int, str]:
    """Mail-merge preview: the text of the letter for recipient ``index`` (clamped to 0…n-1)."""
    index, document = preview_document(version, contacts, fields, index)
    return index, engine.document_text(document)


def find_recipient(contacts: Sequence[Contact], term: str, start: int = 0) -> int | None:
    """Index of the first recipient from ``start`` on (wrapping round) whose name or Kommune contains ``term``."""
    needle = " ".join(term.split()).casefold()
    if not needle or not contacts:
        return None
    for step in range(len(contacts)):
        index = (start + step) % len(contacts)
        contact = contacts[index]
        haystack = f"{contact.full_name} {contact.organisation.name if contact.organisation else ''}".casefold()
        if needle in haystack:
            return index
    return None


# --- file names and production -------------------------------------------------------------------------
def safe_filename(text: str, limit: int = 80) -> str:
    text = unicodedata.normalize("NFC", text)
    text = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', " ", text)
    text = re.sub(r"\s+", "-", text.strip()).strip(".-")
    return text[:limit].rstrip(".-") or "Brief"


def letter_filename(contact: Contact | None, fields: Mapping[str, str], extension: str = "docx") -> str:
    organisation = contact.organisation.name if contact is not None and contact.organisation else ""
    parts = {
        "datum": safe_filename(fields.get("datum", ""), 10), "betreff": safe_filename(fields.get("betreff", "") or "Rundschreiben", 50),
        "organisation": safe_filename(organisation or (contact.full_name if contact else ""), 60),
    }
    name = "_".join(p for p in FILE_PATTERN.format(**parts).split("_") if p)
    return f"{name}.{extension}"


@dataclass
class Production:
    run: LetterRun
    filename: str
    mimetype: str
    count: int
    problems: list[RecipientProblem] = field(default_factory=list)


def produce(version: LetterTemplateVersion, contacts: Sequence[Contact], fields: Mapping[str, Any], output: str,
            target: IO[bytes], *, user: str = "", progress: Callable[[int], None] | None = None,
            started: Callable[[LetterRun], None] | None = None) -> Production:
    """Render, archive every letter, and write the requested output (ZIP / merged DOCX / PDF) to ``target``.

    One recipient's problem never stops the others: whose letter cannot be made is left out and
    listed in ``Production.problems`` and in the run (shown on its archive page). Only when no
    letter at all can be made does it raise.
    """
    if output not in OUTPUTS:
        raise ValidationError("Unbekannte Ausgabeart.", field="output")
    if not contacts:
        raise ValidationError("Keine Empfängerinnen oder Empfänger ausgewählt.", field="recipients")
    cleaned = clean_fields(fields)
    if output.endswith("_pdf") and not pdf.pdf_available(current_app.config.get("SOFFICE_PATH")):
        raise pdf.LibreOfficeMissing(pdf.INSTALL_HINT)
    run = LetterRun(template_version=version, fields=cleaned, output=output, created_by=user)
    db.session.add(run)
    db.session.flush()
    if started:
        started(run)  # a background job notes its run, to remove it should the job fail half-way
    named: list[tuple[str, bytes]] = []
    used: set[str] = set()
    problems: list[RecipientProblem] = []
    recipients: list[Contact] = []
    count = 0
    # A ZIP of DOCX files is streamed to the target as letters render; the other outputs need all letters.
    archive = zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED, allowZip64=True) if output == "zip" else None
    # Letters are archived in batches: one lookup and one insert for the bytes, one insert for the
    # rows (a query per letter cost more than rendering it).
    batch: list[tuple[dict[str, Any], bytes]] = []
    try:
        for count, (contact, document) in enumerate(render_letters_for(contacts, version, cleaned, problems=problems), start=1):
            recipients.append(contact)
            filename = engine.unique_name(letter_filename(contact, cleaned), used)
            batch.append(({
                "run_id": run.id, "contact_id": contact.id, "recipient": contact.full_name or contact.email,
                "organisation": contact.organisation.name if contact.organisation else "",
                "template_version_id": version.id, "fields": cleaned, "filename": filename,
            }, document))
            if len(batch) >= ARCHIVE_BATCH:
                _archive(batch)
            if archive is not None:
                archive.writestr(filename, document)
            else:
                named.append((filename, document))
            if progress:
                progress(count)
        _archive(batch)
    finally:
        if archive is not None:
            archive.close()
    if not count:
        raise nothing_produced(problems)
    base = safe_filename(f"{cleaned.get('datum', '')}_{cleaned.get('betreff') or 'Rundschreiben'}", 90)
    soffice = current_app.config.get("SOFFICE_PATH") or None
    if output == "zip":
        filename, mimetype = f"{base}.zip", "application/zip"
    elif output == "merged":
        counts = None
        if pdf.pdf_available(soffice):
            # Page counts only pre-fill "Seite 1 von N" for LibreOffice; a letter it cannot convert costs them all.
            measured = pdf.convert_to_pdf([d for _, d in named], soffice=soffice, missing_ok=True)
            counts = [pdf.page_count(p) for p in measured] if all(measured) else None
        target.write(engine.merge_letters([d for _, d in named], counts))
        filename, mimetype = f"{base}_Druck.docx", engine.DOCX_MIMETYPE
    else:
        converted = pdf.convert_to_pdf([d for _, d in named], soffice=soffice, missing_ok=True)
        pdfs = []
        for (name, _), contact, document in zip(named, recipients, converted):
            if document is None:
                problems.append(RecipientProblem.of(contact, "LibreOffice konnte diesen Brief nicht in PDF umwandeln "
                                                             "(der DOCX-Brief liegt im Archiv)."))
            else:
                pdfs.append((name.rsplit(".", 1)[0] + ".pdf", document))
        if not pdfs:
            raise nothing_produced(problems)
        if output == "zip_pdf":
            engine.write_letters_zip(target, pdfs)
            filename, mimetype = f"{base}_PDF.zip", "application/zip"
        else:
            target.write(pdf.unite_pdfs([document for _, document in pdfs]))
            filename, mimetype = f"{base}_Druck.pdf", "application/pdf"
    run.letter_count = count
    run.problems = [problem.as_dict() for problem in problems]
    db.session.flush()
    audit("rundschreiben.erstellt", run, template_version_id=version.id, letters=count, skipped=len(problems))
    return Production(run=run, filename=filename, mimetype=mimetype, count=count, problems=problems)


ARCHIVE_BATCH = 250


def _archive(batch: list[tuple[dict[str, Any], bytes]]) -> None:
    """Store the letters' bytes (each distinct content once) and their archive rows; empties ``batch``."""
    if not batch:
        return
    keys = store_blobs([document for _, document in batch])
    now = utcnow()
    db.session.execute(insert(ArchivedLetter), [{**row, "sha256": key, "created_at": now} for (row, _), key in zip(batch, keys)])
    batch.clear()


def list_runs(limit: int = 50) -> list[LetterRun]:
    return list(db.session.scalars(select(LetterRun).order_by(LetterRun.created_at.desc(), LetterRun.id.desc()).limit(limit)))


def get_run(run_id: int) -> LetterRun:
    run = db.session.get(LetterRun, run_id)
    if run is None:
        raise NotFound("Diesen Vorgang gibt es nicht.")
    return run


def archived_letter(letter_id: int) -> tuple[ArchivedLetter, bytes]:
    letter = db.session.get(ArchivedLetter, letter_id)
    if letter is None:
        raise NotFound("Diesen Brief gibt es im Archiv nicht.")
    data = load_blob(letter.sha256)
    if sha256_of(data) != letter.sha256:
        raise ValidationError("Der archivierte Brief ist beschädigt (Prüfsumme stimmt nicht).")
    return letter, data

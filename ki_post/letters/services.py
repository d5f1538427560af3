"""Letter templates (versions in the blob store), sender profile, letter context, production runs."""
from __future__ import annotations

import re
import unicodedata
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any

from flask import current_app
from sqlalchemy import func, select

from ..auth.services import audit
from ..blobs import load_blob, sha256_of, store_blob
from ..core.formatting import datum
from ..errors import NotFound, ValidationError
from ..extensions import db
from ..recipients.addressing import address_lines, role_wording, salutation
from ..recipients.models import ORGANISATION_KINDS, Contact
from . import engine, pdf
from .models import ArchivedLetter, LetterRun, LetterTemplate, LetterTemplateVersion, SenderProfile

SHIPPED_DIR = Path(__file__).resolve().parents[2] / "templates" / "letters"
MAX_TEMPLATE_BYTES = 10 * 1024 * 1024
OUTPUTS = {
    "zip": "ZIP mit einer DOCX-Datei je Empfänger",
    "merged": "Ein DOCX-Dokument für den Druck (alle Briefe)",
    "zip_pdf": "ZIP mit einer PDF-Datei je Empfänger",
    "merged_pdf": "Ein PDF-Dokument für den Druck (alle Briefe)",
}
LETTER_FIELDS = ("datum", "aktenzeichen", "betreff", "ansprechperson", "telefon", "telefax", "email")
FILE_PATTERN = "{datum}_{betreff}_{organisation}"

# Facts of the reference circular of 28 December 2016 (shared/reference), as the starting profile.
DEFAULT_SENDER: dict[str, Any] = {
    "ministerium": "Ministerium für Arbeit, Integration und Soziales des Landes Nordrhein-Westfalen",
    "ministerium_zeile1": "Ministerium für Arbeit, Integration und Soziales",
    "ministerium_zeile2": "des Landes Nordrhein-Westfalen",
    "ruecksendeangabe": "MAIS NRW, 40190 Düsseldorf",
    "dienstgebaeude": "Fürstenwall 25\n40219 Düsseldorf",
    "kommunikation": "Telefon 0211 855-5\nTelefax 0211 855-3683\npoststelle@mais.nrw.de\nwww.mais.nrw",
    "verkehr": "Rheinbahn Linie 709, Haltestelle Stadttor\nRheinbahn Linien 708, 732,\nHaltestelle Polizeipräsidium",
    "ansprechperson": "Agnes Heuvelmann",
    "funktion": "Veranstaltungsteam",
    "organisationseinheit": "Abteilung IV",
    "telefon": "0211 855-3607",
    "telefax": "0211 855-3683",
    "email": "agnes.heuvelmann@mais.nrw.de",
    "aktenzeichen": "9506",
    "unterzeichnende": [
        {"name": "Anton Rütten", "funktion": "Leiter der Abteilung IV, MAIS"},
        {"name": "Dr. Norbert Reichel", "funktion": "Leiter der Gruppe 32, MSW"},
    ],
}
SENDER_TEXT_FIELDS = tuple(k for k in DEFAULT_SENDER if k != "unterzeichnende")


# --- placeholders ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Placeholder:
    tag: str
    description: str
    example: str


PLACEHOLDERS: tuple[Placeholder, ...] = (
    Placeholder("{{ anrede }}", "Anrede aus dem Verteiler, mit Komma", "Sehr geehrte Frau Dr. Schmidt,"),
    Placeholder("{%p for zeile in anschrift %}{{ zeile }}{%p endfor %}", "Anschrift nach DIN 5008, eine Zeile je Absatz (höchstens 6)", "Kreis Kleve – Die Landrätin / Frau / Dr. Anna Schmidt / Nassauerallee 15–23 / 47533 Kleve"),
    Placeholder("{{ funktion_empfaenger }}", "die für das KI zuständige Dezernentin / den … Dezernenten (Akkusativ)", "die für das KI zuständige Dezernentin"),
    Placeholder("{{ kontakt.name }}", "Titel, Vor- und Nachname", "Dr. Anna Schmidt"),
    Placeholder("{{ kontakt.vorname }}, {{ kontakt.nachname }}, {{ kontakt.titel }}", "Teile des Namens", "Anna, Schmidt, Dr."),
    Placeholder("{{ kontakt.amtsbezeichnung }}", "Amtsbezeichnung", "Beigeordnete"),
    Placeholder("{{ kontakt.funktion }}", "Funktion", "Dezernentin für Bildung und Integration"),
    Placeholder("{{ kontakt.email }}, {{ kontakt.telefon }}", "E-Mail und Telefon der Empfängerin/des Empfängers", "anna.schmidt@kreis-kleve.example, 02821 85-0"),
    Placeholder("{{ organisation.name }}", "Name der Kommune", "Kreis Kleve"),
    Placeholder("{{ organisation.art }}", "Art der Kommune", "Kreis"),
    Placeholder("{{ organisation.behoerde }}", "Behördenzeile(n) der Anschrift", "Kreis Kleve – Die Landrätin"),
    Placeholder("{{ organisation.strasse }}, {{ organisation.plz }}, {{ organisation.ort }}", "Postanschrift der Kommune", "Nassauerallee 15–23, 47533, Kleve"),
    Placeholder("{{ organisation.regierungsbezirk }}", "Regierungsbezirk", "Düsseldorf"),
    Placeholder("{{ organisation.ki_name }}", "Name des Kommunalen Integrationszentrums", "KI Kreis Kleve"),
    Placeholder("{%p if ist_kreis %} … {%p elif ist_kreisfreie_stadt %} … {%p endif %}", "Absatz nur für Kreise (und StädteRegion) bzw. nur für kreisfreie Städte", "ja / nein"),
    Placeholder("{{ datum }}", "Datum des Schreibens", "28. Dezember 2016"),
    Placeholder("{{ aktenzeichen }}", "Aktenzeichen", "9506"),
    Placeholder("{{ betreff }}", "Betreff (fett, ohne Punkt)", "Ausbau der Kommunalen Integrationszentren im Jahre 2016/2017"),
    Placeholder("{{ ansprechperson }}, {{ telefon }}, {{ telefax }}, {{ email }}", "Informationsblock: Ansprechperson und ihre Erreichbarkeit", "Agnes Heuvelmann, 0211 855-3607, 0211 855-3683, agnes.heuvelmann@mais.nrw.de"),
    Placeholder("{%p for person in unterzeichnende %}{{ person.name }} {{ person.funktion }}{%p endfor %}", "Unterzeichnende mit Funktion", "Anton Rütten, Leiter der Abteilung IV, MAIS"),
    Placeholder("{{ absender.ministerium }}", "Name des Ministeriums (auch absender.ministerium_zeile1/_zeile2)", DEFAULT_SENDER["ministerium"]),
    Placeholder("{{ absender.ruecksendeangabe }}", "Rücksendeangabe über der Anschrift", DEFAULT_SENDER["ruecksendeangabe"]),
    Placeholder("{{ absender.dienstgebaeude }}, {{ absender.kommunikation }}, {{ absender.verkehr }}", "Fußzeile: Anschrift, Erreichbarkeit, öffentliche Verkehrsmittel (mehrzeilig)", "Fürstenwall 25 / 40219 Düsseldorf"),
    Placeholder("{{ felder.NAME }}", "Zusatzfelder, beim Erstellen frei benannt (z. B. felder.frist)", "31. Januar 2017"),
)
KNOWN_NAMES = frozenset({
    "anrede", "anschrift", "funktion_empfaenger", "kontakt", "organisation", "ist_kreis", "ist_kreisfreie_stadt",
    "ist_staedteregion", "datum", "aktenzeichen", "betreff", "ansprechperson", "telefon", "telefax", "email",
    "unterzeichnende", "absender", "felder",
})


def sample_context() -> dict[str, Any]:
    """Example data for upload validation and the help page."""
    return {
        "anrede": "Sehr geehrte Frau Dr. Schmidt,",
        "anschrift": ["Kreis Kleve – Die Landrätin", "Frau", "Dr. Anna Schmidt", "Nassauerallee 15–23", "47533 Kleve"],
        "funktion_empfaenger": "die für das KI zuständige Dezernentin",
        "kontakt": {"name": "Dr. Anna Schmidt", "vorname": "Anna", "nachname": "Schmidt", "titel": "Dr.", "anrede": "Frau",
                    "amtsbezeichnung": "", "funktion": "Dezernentin", "email": "anna.schmidt@kreis-kleve.example", "telefon": ""},
        "organisation": {"name": "Kreis Kleve", "art": "Kreis", "behoerde": "Kreis Kleve – Die Landrätin", "strasse": "Nassauerallee 15–23",
                         "plz": "47533", "ort": "Kleve", "regierungsbezirk": "Düsseldorf", "ki_name": "KI Kreis Kleve"},
        "ist_kreis": True, "ist_kreisfreie_stadt": False, "ist_staedteregion": False,
        "datum": "28. Dezember 2016", "aktenzeichen": "9506", "betreff": "Ausbau der Kommunalen Integrationszentren",
        "ansprechperson": DEFAULT_SENDER["ansprechperson"], "telefon": DEFAULT_SENDER["telefon"],
        "telefax": DEFAULT_SENDER["telefax"], "email": DEFAULT_SENDER["email"],
        "unterzeichnende": DEFAULT_SENDER["unterzeichnende"], "absender": dict(DEFAULT_SENDER), "felder": {},
    }


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
    report = engine.validate_template(data, KNOWN_NAMES, sample_context())
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
        size=len(data), warnings=report.warnings, created_by=user)
    db.session.add(version)
    db.session.flush()
    audit("vorlage.hochgeladen", version, template_id=template.id, version=number)
    return version, report.warnings


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
    profile = ensure_sender_profile()
    for key in SENDER_TEXT_FIELDS:
        if key in values:
            value = str(values[key] or "").replace("\r\n", "\n").strip()
            if len(value) > 1000:
                raise ValidationError("Die Angabe ist zu lang (höchstens 1000 Zeichen).", field=key)
            setattr(profile, key, value)
    if "unterzeichnende" in values:
        signatories = values["unterzeichnende"]
        profile.unterzeichnende = parse_signatories(signatories) if isinstance(signatories, str) else list(signatories)
    db.session.flush()
    audit("absender.geaendert", profile)
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


def format_letter_date(value: str) -> str:
    """ISO dates become "28. Dezember 2016" (ANR-10); anything else is used as written."""
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
    context["felder"] = extra
    return context


def render_letters_for(contacts: Iterable[Contact], version: LetterTemplateVersion, fields: Mapping[str, Any],
                       sender: Mapping[str, Any] | None = None) -> Iterator[tuple[Contact, bytes]]:
    """(contact, DOCX bytes) per recipient: the one rendering road for downloads, CLI and mail attachments."""
    template = compiled(version)
    cleaned = clean_fields(fields)
    sender = sender if sender is not None else sender_dict(sender_profile())
    for contact in contacts:
        yield contact, template.render(letter_context(contact, cleaned, sender))


def preview(version: LetterTemplateVersion, contacts: Sequence[Contact], fields: Mapping[str, Any], index: int) -> tuple[int, str]:
    """Mail-merge preview: the text of the letter for recipient ``index`` (clamped to 0…n-1)."""
    if not contacts:
        raise ValidationError("Keine Empfängerinnen oder Empfänger ausgewählt.", field="recipients")
    index = max(0, min(index, len(contacts) - 1))
    _, document = next(render_letters_for([contacts[index]], version, fields))
    return index, engine.document_text(document)


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


def produce(version: LetterTemplateVersion, contacts: Sequence[Contact], fields: Mapping[str, Any], output: str,
            target: IO[bytes], *, user: str = "", progress: Callable[[int], None] | None = None) -> Production:
    """Render, archive every letter, and write the requested output (ZIP / merged DOCX / PDF) to ``target``."""
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
    named: list[tuple[str, bytes]] = []
    used: set[str] = set()
    count = 0
    # A ZIP of DOCX files is streamed to the target as letters render; the other outputs need all letters.
    archive = zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED, allowZip64=True) if output == "zip" else None
    try:
        for count, (contact, document) in enumerate(render_letters_for(contacts, version, cleaned), start=1):
            filename = engine.unique_name(letter_filename(contact, cleaned), used)
            key = store_blob(document)
            db.session.add(ArchivedLetter(
                run=run, contact_id=contact.id, recipient=contact.full_name or contact.email,
                organisation=contact.organisation.name if contact.organisation else "", template_version_id=version.id,
                fields=cleaned, filename=filename, sha256=key))
            if archive is not None:
                archive.writestr(filename, document)
            else:
                named.append((filename, document))
            if progress:
                progress(count)
    finally:
        if archive is not None:
            archive.close()
    base = safe_filename(f"{cleaned.get('datum', '')}_{cleaned.get('betreff') or 'Rundschreiben'}", 90)
    soffice = current_app.config.get("SOFFICE_PATH") or None
    if output == "zip":
        filename, mimetype = f"{base}.zip", "application/zip"
    elif output == "merged":
        counts = None
        if pdf.pdf_available(soffice):
            counts = [pdf.page_count(p) for p in pdf.convert_to_pdf([d for _, d in named], soffice=soffice)]
        target.write(engine.merge_letters([d for _, d in named], counts))
        filename, mimetype = f"{base}_Druck.docx", engine.DOCX_MIMETYPE
    elif output == "zip_pdf":
        pdfs = pdf.convert_to_pdf([d for _, d in named], soffice=soffice)
        engine.write_letters_zip(target, [(n.rsplit(".", 1)[0] + ".pdf", p) for (n, _), p in zip(named, pdfs)])
        filename, mimetype = f"{base}_PDF.zip", "application/zip"
    else:
        pdfs = pdf.convert_to_pdf([d for _, d in named], soffice=soffice)
        target.write(pdf.unite_pdfs(pdfs))
        filename, mimetype = f"{base}_Druck.pdf", "application/pdf"
    run.letter_count = count
    db.session.flush()
    audit("rundschreiben.erstellt", run, template_version_id=version.id, letters=count)
    return Production(run=run, filename=filename, mimetype=mimetype, count=count)


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

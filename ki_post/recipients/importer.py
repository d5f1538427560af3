"""Import of the Verteiler from CSV or XLSX: read, match columns, preview, apply.

Reading is pure (bytes in, rows out). ``preview_import`` only reads the database; ``apply_import``
upserts the valid rows by e-mail in the caller's transaction (one commit by the caller).

Rules for updates: a column that the file has sets the field (an empty cell clears it), except the
Kommune and its address (Art, Regierungsbezirk, Straße, PLZ, Ort, Behörde, Name des KI): an empty
cell there keeps what is stored, because several rows share one organisation. Unknown columns are
kept as extra fields of the contact (merged; empty cells add nothing).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select, text

from ..auth.services import audit
from ..errors import RowError
from ..extensions import db
from ..states import LabelledEnum
from . import reading
from .duplicates import Index as DuplicateIndex, Match, person_key
from .models import ORGANISATION_KINDS, REGIERUNGSBEZIRKE, Contact, Organisation, Verteiler
from .reading import MAX_ROWS, ImportFileError, Table, check_size  # noqa: F401  (the importer's public names)
from .signals import contacts_changed


# field → (German label, max length, belongs to the organisation)
FIELDS: dict[str, tuple[str, int, bool]] = {
    "organisation": ("Kommune", 200, True),
    "kind": ("Art", 40, True),
    "regierungsbezirk": ("Regierungsbezirk", 50, True),
    "ki_name": ("Name des KI", 200, True),
    "authority": ("Behörde", 200, True),
    "street": ("Straße", 200, True),
    "postcode": ("PLZ", 10, True),
    "town": ("Ort", 100, True),
    "anrede": ("Anrede", 20, False),
    "academic_title": ("Titel", 50, False),
    "office_title": ("Amtsbezeichnung", 100, False),
    "first_name": ("Vorname", 100, False),
    "last_name": ("Nachname", 100, False),
    "function": ("Funktion", 200, False),
    "email": ("E-Mail", 254, False),
    "phone": ("Telefon", 50, False),
    "notes": ("Notizen", 10000, False),
}
CONTACT_FIELDS = ("anrede", "academic_title", "office_title", "first_name", "last_name", "function", "phone", "notes")
ORGANISATION_FIELDS = ("kind", "regierungsbezirk", "ki_name", "authority", "street", "postcode", "town")

# Header spellings per field, compared after _header_key (case, blanks, hyphens, dots ignored).
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "organisation": ("Kommune", "Organisation", "Gebietskörperschaft", "Kreis/Stadt"),
    "kind": ("Art", "Typ", "Art der Kommune"),
    "regierungsbezirk": ("Regierungsbezirk", "RegBez", "Reg.-Bez."),
    "ki_name": ("Name des KI", "KI", "Integrationszentrum", "KI-Name"),
    "authority": ("Behörde", "Anschrift Behörde", "Dienststelle"),
    "street": ("Straße", "Strasse", "Str.", "Straße und Hausnummer", "Anschrift", "Postfach"),
    "postcode": ("PLZ", "Postleitzahl"),
    "town": ("Ort", "Stadt/Ort", "Wohnort"),
    "anrede": ("Anrede",),
    "academic_title": ("Titel", "Akademischer Titel", "Akad. Titel"),
    "office_title": ("Amtsbezeichnung", "Amtstitel", "Dienstbezeichnung"),
    "first_name": ("Vorname",),
    "last_name": ("Nachname", "Name", "Familienname"),
    "function": ("Funktion", "Position", "Rolle"),
    "email": ("E-Mail", "E-Mail-Adresse", "Mail", "Email-Adresse", "E-Mailadresse"),
    "phone": ("Telefon", "Telefonnummer", "Tel.", "Tel"),
    "notes": ("Notizen", "Bemerkung", "Bemerkungen", "Notiz"),
}
ANREDE_VALUES = {"frau": "frau", "herr": "herr", "herrn": "herr", "": "", "keineangabe": "", "divers": "", "-": "", "–": ""}
KIND_VALUES = {
    **{_k: _k for _k in ORGANISATION_KINDS},
    "kreis": "kreis", "kreisfreiestadt": "kreisfreie_stadt", "städteregion": "staedteregion",
    "staedteregion": "staedteregion", "sonstige": "sonstige", "sonstiges": "sonstige", "andere": "sonstige",
}
IGNORE = "-"   # mapping value: drop the column
EXTRA = ""     # mapping value: keep as extra field under its header


def _header_key(text: str) -> str:
    return re.sub(r"[\s\-_.:/]+", "", str(text or "")).casefold()


_ALIAS_INDEX = {_header_key(alias): name for name, aliases in HEADER_ALIASES.items() for alias in aliases}
_BEZIRK_INDEX = {
    _header_key(name.replace("ü", "ue").replace("ö", "oe")): name for name in REGIERUNGSBEZIRKE
} | {_header_key(name): name for name in REGIERUNGSBEZIRKE}


class RowStatus(LabelledEnum):
    """What applying the import does to one valid row's contact."""

    NEU = "neu", "neu"
    GEAENDERT = "geaendert", "geändert"
    UNVERAENDERT = "unveraendert", "unverändert"


# The key under which ``ImportResult.counts`` counts the rows that were refused.
INVALID = "ungueltig"


@dataclass
class RowResult:
    row: int
    email: str
    status: RowStatus
    name: str
    changes: list[tuple[str, str, str]] = field(default_factory=list)  # (label, old, new)
    values: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)
    duplicate: Match | None = None  # a new row that likely is an existing contact under another spelling


@dataclass
class ImportResult:
    file_kind: str
    headers: list[str]
    mapping: dict[str, str]            # header → field name, EXTRA or IGNORE
    unknown_columns: list[str]
    rows: list[RowResult] = field(default_factory=list)
    invalid: list[RowError] = field(default_factory=list)
    applied: bool = False
    new_organisations: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # "Zeile N: …", nothing rejected
    list_name: str = ""
    skipped: list[RowResult] = field(default_factory=list)  # likely duplicates not confirmed: not written

    @property
    def duplicates(self) -> list[RowResult]:
        return [row for row in self.rows if row.duplicate is not None]

    def of(self, status: RowStatus | str) -> list[RowResult]:
        return [row for row in self.rows if row.status == status]

    @property
    def counts(self) -> dict[str, int]:
        """Rows per status and the refused ones: {"neu": …, "geaendert": …, "unveraendert": …, "ungueltig": …}."""
        return {**{status.value: len(self.of(status)) for status in RowStatus}, INVALID: len(self.invalid)}

    def summary(self) -> str:
        c = self.counts
        parts = [*(f"{c[status]} {status.label}" for status in RowStatus), f"{c[INVALID]} ungültig"]
        if self.skipped:
            parts.append(f"{len(self.skipped)} wahrscheinliche Dubletten übersprungen")
        return ", ".join(parts)


# --- Reading (reading.py, xlsx.py) ------------------------------------------------------------------

def read_table(data: bytes, filename: str = "") -> Table:
    """CSV or XLSX by content; ImportFileError when unreadable or beyond the limits."""
    return reading.read_table(data, filename, lambda header: _header_key(header) in _ALIAS_INDEX)


# --- Columns ---------------------------------------------------------------------------------------

def match_columns(headers: list[str], mapping: dict[str, str] | None = None) -> tuple[dict[int, str], list[str]]:
    """Column index → field (or "extra:<header>"); and the headers nobody knows (for the mapping step).

    ``mapping`` (from the UI) maps an unknown header to a field, EXTRA (keep) or IGNORE (drop).
    """
    mapping = mapping or {}
    columns: dict[int, str] = {}
    unknown: list[str] = []
    taken: set[str] = set()
    for index, header in enumerate(headers):
        if not header.strip():
            continue
        name = _ALIAS_INDEX.get(_header_key(header))
        if name is None or name in taken:
            unknown.append(header)
            choice = mapping.get(header, EXTRA)
            if choice == IGNORE:
                continue
            if choice in FIELDS and choice not in taken:
                name = choice
            else:
                columns[index] = f"extra:{header.strip()}"
                continue
        columns[index] = name
        taken.add(name)
    if "email" not in taken:
        raise ImportFileError(
            "Die Datei hat keine Spalte „E-Mail“. Die erste Zeile muss die Spaltenüberschriften enthalten "
            "(z. B. Kommune, Anrede, Vorname, Nachname, E-Mail)."
        )
    return columns, unknown


# --- Validating and comparing ----------------------------------------------------------------------

def _normalise_row(number: int, values: dict[str, str]) -> dict[str, str]:
    """Checked, normalised values; RowError (German) for the first problem."""
    for name, value in values.items():
        label, limit, _ = FIELDS[name]
        if len(value) > limit:
            raise RowError(number, f"{label} ist zu lang (höchstens {limit} Zeichen).", field=name)
        if name != "notes" and ("\n" in value or "\r" in value):
            values[name] = re.sub(r"\s*[\r\n]+\s*", " ", value)
    raw_email = values.get("email", "")
    if not raw_email:
        raise RowError(number, "Die E-Mail-Adresse fehlt.", field="email")
    try:
        values["email"] = validate_email(raw_email, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise RowError(number, f"„{raw_email}“ ist keine gültige E-Mail-Adresse.", field="email") from None
    if "last_name" in values and not values["last_name"]:
        raise RowError(number, "Der Nachname fehlt.", field="last_name")
    if "anrede" in values:
        key = _header_key(values["anrede"])
        if key not in ANREDE_VALUES:
            raise RowError(number, f"Unbekannte Anrede „{values['anrede']}“ (erlaubt: Frau, Herr oder leer).", field="anrede")
        values["anrede"] = ANREDE_VALUES[key]
    if values.get("kind"):
        key = _header_key(values["kind"])
        if key not in KIND_VALUES:
            raise RowError(number, f"Unbekannte Art „{values['kind']}“ (erlaubt: Kreis, kreisfreie Stadt, StädteRegion, sonstige).", field="kind")
        values["kind"] = KIND_VALUES[key]
    if values.get("regierungsbezirk"):
        key = _header_key(values["regierungsbezirk"].removeprefix("Regierungsbezirk ").removeprefix("Bezirksregierung "))
        if key not in _BEZIRK_INDEX:
            raise RowError(number, f"Unbekannter Regierungsbezirk „{values['regierungsbezirk']}“.", field="regierungsbezirk")
        values["regierungsbezirk"] = _BEZIRK_INDEX[key]
    if values.get("postcode"):
        values["postcode"] = re.sub(r"^D\s*-\s*|\s", "", values["postcode"], flags=re.IGNORECASE)
    return values


def _label_of(name: str, value: str) -> str:
    if name == "kind":
        return ORGANISATION_KINDS.get(value, value)
    if name == "anrede":
        return {"frau": "Frau", "herr": "Herr", "": "keine Angabe"}.get(value, value)
    return value


@dataclass
class _OrgState:
    """An organisation as it will be after the import (existing or created by an earlier row)."""

    name: str
    values: dict[str, str]
    existing: Organisation | None
    set_by: dict[str, int] = field(default_factory=dict)  # field → row that set it in this file


def _analyse(table: Table, mapping: dict[str, str] | None) -> tuple[ImportResult, dict[str, _OrgState], dict[str, Contact]]:
    columns, unknown = match_columns(table.headers, mapping)
    result = ImportResult(
        file_kind=table.file_kind, headers=table.headers, unknown_columns=unknown,
        mapping={table.headers[i]: name if not name.startswith("extra:") else EXTRA for i, name in columns.items()},
    )
    parsed: list[tuple[int, dict[str, str], dict[str, str]]] = []
    seen: dict[str, int] = {}
    for number, cells in table.rows:
        values: dict[str, str] = {}
        extra: dict[str, str] = {}
        for index, name in columns.items():
            value = cells[index].strip() if index < len(cells) else ""
            if name.startswith("extra:"):
                if value:
                    extra[name[6:]] = value[:2000]
            else:
                values[name] = value
        try:
            values = _normalise_row(number, values)
        except RowError as error:
            result.invalid.append(error)
            continue
        if values["email"] in seen:
            result.invalid.append(RowError(number, f"Die E-Mail-Adresse {values['email']} steht schon in Zeile {seen[values['email']]}.", field="email"))
            continue
        seen[values["email"]] = number
        if not values["email"].partition("@")[0].isascii():
            # Valid (RFC 6531) and taken; only the transport of some relays cannot carry it.
            result.warnings.append(
                f"Zeile {number}: Die Adresse {values['email']} enthält vor dem @ Zeichen außerhalb von ASCII "
                "(z. B. Akzente). Sie wird übernommen; ältere Mailserver ohne SMTPUTF8 nehmen sie aber nicht an – "
                "dann schlägt nur die Nachricht an diese Adresse fehl."
            )
        parsed.append((number, values, extra))

    existing_contacts: dict[str, Contact] = {}
    emails = list(seen)
    for start in range(0, len(emails), 500):
        chunk = emails[start:start + 500]
        for contact in db.session.scalars(select(Contact).where(Contact.email.in_(chunk))):
            existing_contacts[contact.email] = contact
    organisations = {org.name.casefold(): org for org in db.session.scalars(select(Organisation))}
    states: dict[str, _OrgState] = {}

    for number, values, extra in parsed:
        contact = existing_contacts.get(values["email"])
        changes: list[tuple[str, str, str]] = []
        org_name = values.get("organisation", "")
        state: _OrgState | None = None
        if org_name:
            key = org_name.casefold()
            if key not in states:
                org = organisations.get(key)
                current = {name: getattr(org, name) or "" for name in ORGANISATION_FIELDS} if org else {name: "" for name in ORGANISATION_FIELDS}
                states[key] = _OrgState(name=org.name if org else org_name, values=current, existing=org)
            state = states[key]
            for name in ORGANISATION_FIELDS:
                new = values.get(name, "")
                old = state.values[name]
                if new and new != old:
                    if name in state.set_by:
                        # The first row of a Kommune decides; a contradicting later row must not flip it
                        # (else the same file would report changes on every re-import).
                        result.warnings.append(
                            f"Zeile {number}: {FIELDS[name][0]} „{new}“ für {state.name} weicht von Zeile "
                            f"{state.set_by[name]} ab („{old}“); übernommen wird Zeile {state.set_by[name]}."
                        )
                        continue
                    if state.existing is not None or old:
                        changes.append((f"{FIELDS['organisation'][0]} {state.name}: {FIELDS[name][0]}", _label_of(name, old), _label_of(name, new)))
                    state.values[name] = new
                if new:
                    state.set_by.setdefault(name, number)
            if state.existing is None and state.name not in result.new_organisations:
                result.new_organisations.append(state.name)

        display = " ".join(part for part in (values.get("first_name", ""), values.get("last_name", "")) if part) or values["email"]
        row = RowResult(row=number, email=values["email"], status=RowStatus.NEU, name=display, values=values, extra=extra)
        if contact is not None:
            for name in CONTACT_FIELDS:
                if name in values and (getattr(contact, name) or "") != values[name]:
                    changes.append((FIELDS[name][0], _label_of(name, getattr(contact, name) or ""), _label_of(name, values[name])))
            if state is not None:
                current_org = contact.organisation.name if contact.organisation else ""
                if current_org.casefold() != state.name.casefold():
                    changes.append((FIELDS["organisation"][0], current_org, state.name))
            stored_extra = contact.extra or {}
            for key, value in extra.items():
                if str(stored_extra.get(key, "")) != value:
                    changes.append((key, str(stored_extra.get(key, "")), value))
            row.status = RowStatus.GEAENDERT if changes else RowStatus.UNVERAENDERT
            row.changes = changes
        result.rows.append(row)
    _flag_duplicates(result)
    result.invalid.sort(key=lambda error: error.row)
    return result, states, existing_contacts


def _flag_duplicates(result: ImportResult) -> None:
    """Mark new rows that likely are a stored contact under another address or spelling of the name."""
    new_rows = result.of(RowStatus.NEU)
    if not new_rows:
        return
    index = DuplicateIndex()
    earlier: dict[tuple[str, str], RowResult] = {}  # the same person twice in one file, under two addresses
    for row in new_rows:
        first, last, org = (row.values.get(name, "") for name in ("first_name", "last_name", "organisation"))
        row.duplicate = index.find(email=row.email, first_name=first, last_name=last, organisation=org)
        key = person_key(first, last, org)
        if row.duplicate is None and key in earlier:
            row.duplicate = Match(None, earlier[key].name, org, "name", row=earlier[key].row)
        if key is not None:
            earlier.setdefault(key, row)
        if row.duplicate is not None:
            result.warnings.append(f"Zeile {row.row}: wahrscheinlich dieselbe Person wie {row.duplicate.describe()}"
                                   + (" (gleiche Adresse in anderer Schreibweise)" if row.duplicate.reason == "email" else ""))


# --- Entry points ----------------------------------------------------------------------------------

_IMPORT_LOCK = 0x4B49494D  # "KIIM"
CONCURRENT_CHANGE = ("Während des Imports wurden dieselben Kommunen oder Ansprechpersonen gleichzeitig an anderer Stelle "
                     "gespeichert. Es wurde nichts importiert; bitte starten Sie den Import erneut.")


def serialise_imports() -> None:
    """Let one import at a time compare and write, until its transaction ends.

    Two imports of the same file would otherwise both find a Kommune missing and both create it
    (a unique violation for all but one). PostgreSQL: a transaction-level advisory lock. SQLite: its
    write lock, taken now with a statement that writes nothing (busy_timeout waits for it), so the
    comparison below already sees what the import before has committed.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _IMPORT_LOCK})
    else:
        db.session.execute(text("DELETE FROM recipient_import_uploads WHERE 1 = 0"))


def preview_import(data: bytes, filename: str = "", mapping: dict[str, str] | None = None, *, limit: int = 0) -> ImportResult:
    """What an import would do; writes nothing."""
    check_size(data, limit)
    table = read_table(data, filename)
    result, _, _ = _analyse(table, mapping)
    return result


def apply_import(data: bytes, filename: str = "", mapping: dict[str, str] | None = None, *,
                 list_name: str = "", limit: int = 0, confirmed_duplicates: Iterable[int] | bool = ()) -> ImportResult:
    """Upsert the valid rows by e-mail (invalid rows are never written); flushes, the caller commits.

    With ``list_name`` every valid row's contact becomes a static member of that Verteiler (created
    when missing). A new row that likely duplicates a stored contact is skipped (``result.skipped``)
    unless its row number is in ``confirmed_duplicates`` (``True``: all of them): a second entry for
    the same person is never created silently.
    """
    check_size(data, limit)
    table = read_table(data, filename)
    serialise_imports()  # after reading the file, before reading the database
    result, states, existing_contacts = _analyse(table, mapping)
    if confirmed_duplicates is not True:
        confirmed = set(confirmed_duplicates or ())
        result.skipped = [row for row in result.duplicates if row.row not in confirmed]
        skipped = {row.row for row in result.skipped}
        result.rows = [row for row in result.rows if row.row not in skipped]
        _drop_unused_organisations(result, states)

    organisations: dict[str, Organisation] = {}
    for key, state in states.items():
        org = state.existing
        if org is None:
            org = Organisation(name=state.name[:200], kind=state.values["kind"] or "sonstige")
            db.session.add(org)
        for name in ORGANISATION_FIELDS:
            if state.values[name] and getattr(org, name) != state.values[name]:
                setattr(org, name, state.values[name])
        organisations[key] = org

    touched: list[Contact] = []
    for row in result.rows:
        contact = existing_contacts.get(row.email)
        if contact is None:
            contact = Contact(email=row.email, extra={})
            db.session.add(contact)
        for name in CONTACT_FIELDS:
            if name in row.values:
                setattr(contact, name, row.values[name])
        org_name = row.values.get("organisation", "")
        if org_name:
            contact.organisation = organisations[org_name.casefold()]
        if row.extra:
            contact.extra = {**(contact.extra or {}), **row.extra}  # a new dict: JSON columns track assignment
        touched.append(contact)

    verteiler = None
    if list_name:
        verteiler = db.session.scalar(select(Verteiler).where(Verteiler.name == list_name.strip()))
        if verteiler is None:
            verteiler = Verteiler(name=list_name.strip()[:200], filter=None)
            db.session.add(verteiler)
        present = {member.id for member in verteiler.members if member.id is not None}
        verteiler.members.extend(contact for contact in touched if contact.id is None or contact.id not in present)
        result.list_name = verteiler.name
    changed_ids = [contact.id for contact in touched if contact.id is not None and db.session.is_modified(contact)]
    changed_ids += [contact.id for org in organisations.values() if org.id is not None and db.session.is_modified(org)
                    for contact in org.contacts]
    db.session.flush()
    if changed_ids:
        contacts_changed.send(None, contact_ids=sorted(set(changed_ids)))
    result.applied = True
    audit("kontakte.importiert", verteiler, **result.counts, organisations_new=len(result.new_organisations),
          dubletten_uebersprungen=len(result.skipped))
    return result


def _drop_unused_organisations(result: ImportResult, states: dict[str, _OrgState]) -> None:
    """A Kommune that only skipped rows named is not created either."""
    used = {row.values.get("organisation", "").casefold() for row in result.rows}
    for key in [key for key, state in states.items() if state.existing is None and key not in used]:
        result.new_organisations.remove(states.pop(key).name)

"""The Verteiler's work: who receives a mailing, contact and list upkeep, DSGVO export/anonymisation.

Functions flush but never commit; the caller (view or CLI command) commits once.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Select, and_, delete, func, or_, select
from sqlalchemy.orm import selectinload

from ..auth.services import audit
from ..db_types import utcnow
from ..errors import NotFound, ValidationError
from ..extensions import db
from .models import (
    ANREDEN,
    ORGANISATION_KINDS,
    REGIERUNGSBEZIRKE,
    SQLITE_CASEFOLD,
    Contact,
    Organisation,
    Verteiler,
    verteiler_members,
)
from . import freshness
from .addresses import address_forms
from .signals import contact_erasing, contacts_changed

# Keys a filter (list page, saved Verteiler filter, resolve_recipients) may hold.
FILTER_KEYS = ("kind", "regierungsbezirk", "q", "organisation_id", "verteiler_id", "active", "frische")
SORTS = {
    "organisation": "Kommune",
    "name": "Name",
    "email": "E-Mail-Adresse",
    "kind": "Art",
    "regierungsbezirk": "Regierungsbezirk",
    "updated": "Geändert",
}


# --- Normalising input -------------------------------------------------------------------------

def normalise_email(raw: str) -> str:
    """Lower-case, IDNA, syntax checked without DNS; raises ValidationError in German."""
    value = (raw or "").strip()
    if not value:
        raise ValidationError("Die E-Mail-Adresse fehlt.", field="email")
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise ValidationError(f"„{value}“ ist keine gültige E-Mail-Adresse.", field="email") from None


def as_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple, set)):
        return [str(item) for item in value if str(item) != ""]
    return [str(value)]


def clean_filter(filters: Mapping[str, Any] | None) -> dict[str, Any]:
    """A validated copy: known keys only, kinds and Regierungsbezirke checked, empty values dropped."""
    result: dict[str, Any] = {}
    for key, value in (filters or {}).items():
        if key == "search":
            key = "q"
        if key not in FILTER_KEYS:
            raise ValidationError(f"Unbekanntes Filterkriterium „{key}“.", field="filter")
        if key == "q":
            text = str(value or "").strip()
            if text:
                result["q"] = text[:200]
        elif key in ("kind", "regierungsbezirk"):
            values = as_list(value)
            allowed = ORGANISATION_KINDS if key == "kind" else REGIERUNGSBEZIRKE
            for item in values:
                if item not in allowed:
                    label = "Art" if key == "kind" else "Regierungsbezirk"
                    raise ValidationError(f"Unbekannte {label} „{item}“.", field=key)
            if values:
                result[key] = values if len(values) > 1 else values[0]
        elif key in ("organisation_id", "verteiler_id"):
            if value not in (None, ""):
                try:
                    result[key] = int(value)
                except (TypeError, ValueError):
                    raise ValidationError("Ungültige Auswahl.", field=key) from None
        elif key == "frische":
            if value not in (None, "") and value not in freshness.CHOICES:
                raise ValidationError(f"Unbekannter Filter „{value}“.", field=key)
            if value:
                result[key] = value
        elif key == "active":
            if value in (None, "", "alle"):
                continue
            result["active"] = value in (True, "1", "true", "ja", "aktiv", 1)
    return result


def _filter_conditions(filters: Mapping[str, Any]) -> list[Any]:
    conditions: list[Any] = []
    if "kind" in filters:
        conditions.append(Organisation.kind.in_(as_list(filters["kind"])))
    if "regierungsbezirk" in filters:
        conditions.append(Organisation.regierungsbezirk.in_(as_list(filters["regierungsbezirk"])))
    if "organisation_id" in filters:
        conditions.append(Contact.organisation_id == filters["organisation_id"])
    if "active" in filters:
        conditions.append(Contact.active.is_(bool(filters["active"])))
    if filters.get("q"):
        conditions.append(_search_condition(filters["q"]))
    if filters.get("frische"):
        conditions.append(freshness.condition(filters["frische"]))
    return conditions


def _search_condition(text: str) -> Any:
    """Case-insensitive substring search over names, e-mail, function and organisation, Unicode-aware."""
    sqlite = db.session.get_bind().dialect.name == "sqlite"
    # casefold() turns ß into ss: fine when both sides are folded (SQLite), wrong for ILIKE (PostgreSQL).
    folded = text.casefold() if sqlite else text
    term = "%" + folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    columns = (Contact.first_name, Contact.last_name, Contact.email, Contact.function, Organisation.name)
    if sqlite:
        return or_(*(getattr(func, SQLITE_CASEFOLD)(column).like(term, escape="\\") for column in columns))
    return or_(*(column.ilike(term, escape="\\") for column in columns))


def _verteiler_condition(verteiler: Verteiler) -> Any:
    """Membership of a Verteiler: its static members ∪ its saved filter (``{}`` = everyone)."""
    static = Contact.id.in_(select(verteiler_members.c.contact_id).where(verteiler_members.c.verteiler_id == verteiler.id))
    if verteiler.filter is None:
        return static
    saved = clean_filter({k: v for k, v in verteiler.filter.items() if k not in ("verteiler_id", "active")})
    conditions = _filter_conditions(saved)
    if not conditions:
        return Contact.id.is_not(None)  # the empty filter: every contact
    return or_(static, and_(*conditions))


def contacts_query(filters: Mapping[str, Any] | None = None, sort: str = "organisation", descending: bool = False) -> Select:
    """SELECT of contacts (with organisation) matching a cleaned filter, in a stable order."""
    filters = clean_filter(filters)
    statement = select(Contact).outerjoin(Contact.organisation).options(selectinload(Contact.organisation))
    conditions = _filter_conditions(filters)
    if "verteiler_id" in filters:
        verteiler = db.session.get(Verteiler, filters["verteiler_id"])
        if verteiler is None:
            raise NotFound("Diesen Verteiler gibt es nicht.")
        conditions.append(_verteiler_condition(verteiler))
    if conditions:
        statement = statement.where(*conditions)
    return statement.order_by(*_order(sort, descending))


def _order(sort: str, descending: bool) -> list[Any]:
    columns = {
        "organisation": [Organisation.name, Contact.last_name, Contact.first_name],
        "name": [Contact.last_name, Contact.first_name],
        "email": [Contact.email],
        "kind": [Organisation.kind, Organisation.name],
        "regierungsbezirk": [Organisation.regierungsbezirk, Organisation.name],
        "updated": [Contact.updated_at],
    }.get(sort, [Organisation.name, Contact.last_name, Contact.first_name])
    ordered = [column.desc() if descending else column.asc() for column in columns]
    # Contacts without organisation last, then the id so that pages never overlap.
    return [Organisation.name.is_(None), *ordered, Contact.id.desc() if descending else Contact.id]


# --- Who receives a mailing -----------------------------------------------------------------------

def verteiler_by_name(name: str) -> Verteiler:
    verteiler = db.session.scalar(select(Verteiler).where(Verteiler.name == (name or "").strip()))
    if verteiler is None:
        raise NotFound(f"Verteiler „{name}“ gibt es nicht.")
    return verteiler


def resolve_recipients(*, verteiler_id: int | None = None, filters: Mapping[str, Any] | None = None,
                       contact_ids: Iterable[int] = ()) -> list[Contact]:
    """The active contacts of a Verteiler, of a filter, or with the given ids, ordered by organisation.

    Several arguments narrow each other down (a Verteiler and a filter: the filter applied to the
    Verteiler). ``filters={}`` means all active contacts; no argument at all means nobody.
    Raises NotFound for an unknown Verteiler.
    """
    criteria = {k: v for k, v in clean_filter(filters).items() if k != "active"}
    if verteiler_id is not None:
        criteria["verteiler_id"] = verteiler_id
    statement = contacts_query(criteria).where(Contact.active.is_(True), Contact.anonymised_at.is_(None))
    ids = [int(i) for i in contact_ids]
    if ids:
        statement = statement.where(Contact.id.in_(ids))
    elif verteiler_id is None and filters is None:
        return []  # nothing chosen means nobody, never everyone by accident
    return list(db.session.scalars(statement).unique())


def count_recipients(verteiler: Verteiler) -> int:
    statement = contacts_query({"verteiler_id": verteiler.id}).where(Contact.active.is_(True), Contact.anonymised_at.is_(None))
    return db.session.scalar(select(func.count()).select_from(statement.order_by(None).subquery())) or 0


# --- Contacts -----------------------------------------------------------------------------------

CONTACT_LIMITS = {
    "anrede": ("Anrede", 10), "academic_title": ("Titel", 50), "office_title": ("Amtsbezeichnung", 100),
    "first_name": ("Vorname", 100), "last_name": ("Nachname", 100), "function": ("Funktion", 200),
    "phone": ("Telefon", 50), "notes": ("Notizen", 10000),
}


def get_contact(contact_id: int) -> Contact:
    contact = db.session.get(Contact, contact_id)
    if contact is None:
        raise NotFound("Diese Ansprechperson gibt es nicht.")
    return contact


def save_contact(contact: Contact | None, data: Mapping[str, Any]) -> Contact:
    """Create (``contact=None``) or update a contact from form data; ValidationError at the field."""
    values: dict[str, Any] = {}
    for name, (label, limit) in CONTACT_LIMITS.items():
        text = str(data.get(name) or "")
        text = text.strip() if name == "notes" else " ".join(text.split())
        if len(text) > limit:
            raise ValidationError(f"{label}: höchstens {limit} Zeichen.", field=name)
        values[name] = text
    if values["anrede"] not in ANREDEN:
        raise ValidationError("Bitte eine Anrede aus der Liste wählen.", field="anrede")
    if not values["last_name"]:
        raise ValidationError("Bitte den Nachnamen angeben.", field="last_name")
    email = normalise_email(str(data.get("email") or ""))
    clash = db.session.scalar(select(Contact.id).where(Contact.email == email))
    if clash is not None and (contact is None or clash != contact.id):
        raise ValidationError("Diese E-Mail-Adresse gehört schon zu einer anderen Ansprechperson.", field="email")
    organisation_id = data.get("organisation_id") or None
    organisation = None
    if organisation_id:
        organisation = db.session.get(Organisation, int(organisation_id))
        if organisation is None:
            raise ValidationError("Diese Kommune gibt es nicht.", field="organisation_id")
    created = contact is None
    # A new address ends "Adresse unzustellbar": the flag was about the old one.
    cleared = not created and contact.email != email and contact.undeliverable_since is not None
    if cleared:
        contact.undeliverable_since = None
        contact.undeliverable_reason = ""
    if contact is None:
        contact = Contact(email=email, extra={})
        db.session.add(contact)
    for name, value in values.items():
        setattr(contact, name, value)
    contact.email = email
    contact.organisation = organisation
    if "active" in data:
        contact.active = bool(data["active"])
    changed = not created and db.session.is_modified(contact)
    db.session.flush()
    if changed:
        contacts_changed.send(None, contact_ids=[contact.id])
    audit("kontakt.angelegt" if created else "kontakt.geaendert", contact)
    if cleared:
        audit("kontakt.zustellbar", contact)
    return contact


def mark_undeliverable(contact: Contact, address: str, reason: str, when: datetime | None = None) -> bool:
    """Flag the contact "Adresse unzustellbar seit …" after a permanent bounce of a message to ``address``.

    Only while ``address`` is still the contact's address (in any spelling): a late bounce for an address
    changed since says nothing about the new one. The first date stays; the reason is the latest server's
    words. Returns True if the contact was not flagged before."""

    if contact.anonymised_at is not None or not (address_forms([address]) & address_forms([contact.email])):
        return False
    contact.undeliverable_reason = (reason or "")[:2000]
    newly = contact.undeliverable_since is None
    if newly:
        contact.undeliverable_since = when or utcnow()
    db.session.flush()
    if newly:
        audit("kontakt.unzustellbar", contact)
    return newly


def set_contact_active(contact: Contact, active: bool) -> None:
    if contact.anonymised_at is not None and active:
        raise ValidationError("Eine anonymisierte Ansprechperson kann nicht wieder aktiviert werden.")
    contact.active = active
    db.session.flush()
    audit("kontakt.aktiviert" if active else "kontakt.deaktiviert", contact)


# The Verteiler sits below letters, outbox and events, so they register here what they know about a
# contact: for the DSGVO export (name → function(contact) returning JSON-ready data) and for the
# contact page (name → function(contact) returning the rows to list there, newest first).
HISTORY_PROVIDERS: dict[str, Any] = {}
CONTACT_PAGE_PROVIDERS: dict[str, Any] = {}


def register_history_provider(name: str, provider: Any) -> None:
    HISTORY_PROVIDERS[name] = provider


def register_contact_page_provider(name: str, provider: Any) -> None:
    CONTACT_PAGE_PROVIDERS[name] = provider


def contact_history(contact: Contact) -> dict[str, list]:
    """What the other domains list on the contact page (letters, messages, invitations …)."""
    return {name: provider(contact) for name, provider in CONTACT_PAGE_PROVIDERS.items()}


def contact_data_export(contact: Contact) -> dict[str, Any]:
    """Everything KI-Post stores about one contact (Art. 15 DSGVO, DSG-09), JSON-ready; audited."""
    organisation = contact.organisation
    memberships = db.session.scalars(
        select(Verteiler).join(verteiler_members, verteiler_members.c.verteiler_id == Verteiler.id)
        .where(verteiler_members.c.contact_id == contact.id).order_by(Verteiler.name)
    ).all()
    data: dict[str, Any] = {
        "ansprechperson": {
            "id": contact.id,
            "anrede": ANREDEN.get(contact.anrede, contact.anrede),
            "titel": contact.academic_title,
            "amtsbezeichnung": contact.office_title,
            "vorname": contact.first_name,
            "nachname": contact.last_name,
            "funktion": contact.function,
            "e_mail": contact.email,
            "telefon": contact.phone,
            "aktiv": contact.active,
            "notizen": contact.notes,
            "zusatzfelder": contact.extra or {},
            "angelegt": contact.created_at.isoformat() if contact.created_at else None,
            "geaendert": contact.updated_at.isoformat() if contact.updated_at else None,
            "anonymisiert": contact.anonymised_at.isoformat() if contact.anonymised_at else None,
            "adresse_unzustellbar_seit": contact.undeliverable_since.isoformat() if contact.undeliverable_since else None,
            "grund_unzustellbar": contact.undeliverable_reason,
        },
        "kommune": None if organisation is None else {
            "name": organisation.name, "art": organisation.kind_label, "regierungsbezirk": organisation.regierungsbezirk,
            "ki": organisation.ki_name, "behoerde": organisation.authority, "strasse": organisation.street,
            "plz": organisation.postcode, "ort": organisation.town,
        },
        "verteiler_statisch": [verteiler.name for verteiler in memberships],
    }
    for name, provider in HISTORY_PROVIDERS.items():
        data[name] = provider(contact)
    audit("kontakt.auskunft", contact)
    return data


def anonymise_contact(contact: Contact) -> None:
    """Overwrite every personal field; the row stays so past mailings keep their counts (DSG-04)."""
    if contact.anonymised_at is not None:
        raise ValidationError("Diese Ansprechperson ist bereits anonymisiert.")
    scrubbed = _erase_copies(contact, deleting=False)
    for name in ("anrede", "academic_title", "office_title", "first_name", "function", "phone", "notes"):
        setattr(contact, name, "")
    contact.last_name = "Anonymisiert"
    contact.email = f"anonymisiert-{contact.id}@anonymisiert.invalid"
    contact.extra = {}
    contact.undeliverable_since = None
    contact.undeliverable_reason = ""
    contact.active = False
    contact.anonymised_at = utcnow()
    db.session.execute(delete(verteiler_members).where(verteiler_members.c.contact_id == contact.id))
    db.session.flush()
    audit("kontakt.anonymisiert", contact, **scrubbed)


def delete_contact(contact: Contact) -> None:
    """Delete the row; the other packages scrub their copies first (their rows stay for the counts)."""
    audit("kontakt.geloescht", contact, **_erase_copies(contact, deleting=True))
    db.session.delete(contact)
    db.session.flush()


def _erase_copies(contact: Contact, *, deleting: bool) -> dict[str, int]:
    """Let every package scrub its copies of the person; returns their counts for the audit entry."""
    counts: dict[str, int] = {}
    for _receiver, result in contact_erasing.send(None, contact=contact, delete=deleting):
        counts.update(result or {})
    return counts


# --- Organisations -------------------------------------------------------------------------------

ORGANISATION_LIMITS = {
    "name": ("Name", 200), "ki_name": ("Name des KI", 200), "authority": ("Behörde", 200),
    "street": ("Straße oder Postfach", 200), "postcode": ("PLZ", 10), "town": ("Ort", 100),
}


def organisations_with_counts() -> list[tuple[Organisation, int]]:
    """Every Kommune with its number of active contacts, in one query."""
    return [tuple(row) for row in db.session.execute(
        select(Organisation, func.count(Contact.id))
        .outerjoin(Contact, (Contact.organisation_id == Organisation.id) & Contact.active.is_(True))
        .group_by(Organisation.id).order_by(Organisation.name))]


def active_contact_choices() -> list[tuple[int, str]]:
    """(id, "Kommune: Vorname Nachname") of every active, not anonymised contact, for pickers."""
    rows = db.session.execute(
        select(Contact.id, Contact.first_name, Contact.last_name, Organisation.name)
        .outerjoin(Organisation, Contact.organisation_id == Organisation.id)
        .where(Contact.active.is_(True), Contact.anonymised_at.is_(None)).order_by(Organisation.name, Contact.last_name))
    return [(row.id, f"{row.name or '–'}: {row.first_name} {row.last_name}".strip()) for row in rows]


def organisation_choices() -> list[tuple[int, str]]:
    return [(org.id, org.name) for org in db.session.scalars(select(Organisation).order_by(Organisation.name))]


def save_organisation(organisation: Organisation | None, data: Mapping[str, Any]) -> Organisation:
    values: dict[str, str] = {}
    for name, (label, limit) in ORGANISATION_LIMITS.items():
        text = " ".join(str(data.get(name) or "").split())
        if len(text) > limit:
            raise ValidationError(f"{label}: höchstens {limit} Zeichen.", field=name)
        values[name] = text
    if not values["name"]:
        raise ValidationError("Bitte den Namen der Kommune angeben.", field="name")
    kind = str(data.get("kind") or "sonstige")
    if kind not in ORGANISATION_KINDS:
        raise ValidationError("Bitte eine Art aus der Liste wählen.", field="kind")
    bezirk = str(data.get("regierungsbezirk") or "")
    if bezirk and bezirk not in REGIERUNGSBEZIRKE:
        raise ValidationError("Bitte einen Regierungsbezirk aus der Liste wählen.", field="regierungsbezirk")
    clash = db.session.scalar(select(Organisation.id).where(func.lower(Organisation.name) == values["name"].lower()))
    if clash is not None and (organisation is None or clash != organisation.id):
        raise ValidationError("Eine Kommune mit diesem Namen gibt es schon.", field="name")
    created = organisation is None
    if organisation is None:
        organisation = Organisation(name=values["name"])
        db.session.add(organisation)
    for name, value in values.items():
        setattr(organisation, name, value)
    organisation.kind, organisation.regierungsbezirk = kind, bezirk
    changed = not created and db.session.is_modified(organisation)
    db.session.flush()
    if changed:
        contacts_changed.send(None, contact_ids=[contact.id for contact in organisation.contacts])
    audit("kommune.angelegt" if created else "kommune.geaendert", organisation)
    return organisation


# --- Verteiler -----------------------------------------------------------------------------------

def get_verteiler(verteiler_id: int) -> Verteiler:
    verteiler = db.session.get(Verteiler, verteiler_id)
    if verteiler is None:
        raise NotFound("Diesen Verteiler gibt es nicht.")
    return verteiler


def all_verteiler() -> list[Verteiler]:
    return list(db.session.scalars(select(Verteiler).order_by(Verteiler.name)))


def save_verteiler(verteiler: Verteiler | None, *, name: str, description: str = "",
                   filters: Mapping[str, Any] | None = None, member_ids: Sequence[int] = ()) -> Verteiler:
    """Create or update a Verteiler. ``filters=None``: static members only; ``{}``: everyone."""
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError("Bitte einen Namen angeben.", field="name")
    if len(name) > 200:
        raise ValidationError("Der Name ist zu lang (höchstens 200 Zeichen).", field="name")
    clash = db.session.scalar(select(Verteiler.id).where(Verteiler.name == name))
    if clash is not None and (verteiler is None or clash != verteiler.id):
        raise ValidationError("Einen Verteiler mit diesem Namen gibt es schon.", field="name")
    saved_filter = None
    if filters is not None:
        saved_filter = {k: v for k, v in clean_filter(filters).items() if k not in ("verteiler_id", "active")}
    ids = sorted({int(i) for i in member_ids})
    members = list(db.session.scalars(select(Contact).where(Contact.id.in_(ids)))) if ids else []
    if len(members) != len(ids):
        raise ValidationError("Mindestens eine ausgewählte Ansprechperson gibt es nicht mehr.", field="member_ids")
    created = verteiler is None
    if verteiler is None:
        verteiler = Verteiler(name=name)
        db.session.add(verteiler)
    verteiler.name, verteiler.description = name, (description or "").strip()[:5000]
    verteiler.filter = saved_filter
    verteiler.members = members
    db.session.flush()
    audit("verteiler.angelegt" if created else "verteiler.geaendert", verteiler, members=len(members), has_filter=saved_filter is not None)
    return verteiler


def delete_verteiler(verteiler: Verteiler) -> None:
    audit("verteiler.geloescht", verteiler)
    db.session.delete(verteiler)
    db.session.flush()


def describe_filter(filters: Mapping[str, Any] | None) -> str:
    """ "Art: Kreis; Regierungsbezirk: Köln" — for people, not machines."""
    if filters is None:
        return "kein Filter (nur feste Mitglieder)"
    if not filters:
        return "alle aktiven Ansprechpersonen"
    parts = []
    if "kind" in filters:
        parts.append("Art: " + ", ".join(ORGANISATION_KINDS.get(k, k) for k in as_list(filters["kind"])))
    if "regierungsbezirk" in filters:
        parts.append("Regierungsbezirk: " + ", ".join(as_list(filters["regierungsbezirk"])))
    if "q" in filters:
        parts.append(f"Suche: „{filters['q']}“")
    if "organisation_id" in filters:
        org = db.session.get(Organisation, filters["organisation_id"])
        parts.append(f"Kommune: {org.name if org else '(gelöscht)'}")
    return "; ".join(parts)


# --- Export ----------------------------------------------------------------------------------------

# The same headers the importer reads, so an exported file imports back unchanged.
EXPORT_HEADERS = ["Kommune", "Art", "Regierungsbezirk", "Anrede", "Titel", "Amtsbezeichnung", "Vorname", "Nachname",
                  "Funktion", "E-Mail", "Telefon", "Behörde", "Straße", "PLZ", "Ort", "Name des KI"]


def export_table(contacts: Sequence[Contact]) -> tuple[list[str], list[list[Any]]]:
    extra_keys: list[str] = []
    for contact in contacts:
        for key in contact.extra or {}:
            if key not in extra_keys and key not in EXPORT_HEADERS:
                extra_keys.append(key)
    rows = []
    for c in contacts:
        o = c.organisation
        rows.append([
            o.name if o else "", o.kind_label if o else "", o.regierungsbezirk if o else "",
            {"frau": "Frau", "herr": "Herr"}.get(c.anrede, ""), c.academic_title, c.office_title, c.first_name,
            c.last_name, c.function, c.email, c.phone, o.authority if o else "", o.street if o else "",
            o.postcode if o else "", o.town if o else "", o.ki_name if o else "",
            *[str((c.extra or {}).get(key, "")) for key in extra_keys],
        ])
    return [*EXPORT_HEADERS, *extra_keys], rows


def export_contacts(fmt: str, *, filters: Mapping[str, Any] | None = None, verteiler: Verteiler | None = None) -> tuple[bytes, int]:
    """(file bytes, number of contacts) as "csv" or "xlsx"; a Verteiler exports its active recipients."""
    from ..exports import csv_bytes, xlsx_bytes

    if fmt not in ("csv", "xlsx"):
        raise ValidationError("Bitte CSV oder XLSX wählen.", field="format")
    if verteiler is not None:
        contacts = resolve_recipients(verteiler_id=verteiler.id, filters=filters or {})
    else:
        contacts = list(db.session.scalars(contacts_query(filters)))
    headers, rows = export_table(contacts)
    title = verteiler.name if verteiler else "Verteiler"
    data = csv_bytes(headers, rows) if fmt == "csv" else xlsx_bytes(headers, rows, title)
    audit("kontakte.exportiert", verteiler, anzahl=len(contacts), format=fmt)
    return data, len(contacts)


def member_ids_from_emails(text: str) -> list[int]:
    """Contact ids for e-mail addresses given one per line (or separated by ; , blanks)."""
    import re

    wanted = []
    for raw in re.split(r"[\s;,]+", text or ""):
        if raw.strip():
            try:
                wanted.append(validate_email(raw.strip(), check_deliverability=False).normalized.lower())
            except EmailNotValidError:
                raise ValidationError(f"„{raw.strip()}“ ist keine gültige E-Mail-Adresse.", field="members") from None
    found: dict[str, int] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        for email, contact_id in db.session.execute(select(Contact.email, Contact.id).where(Contact.email.in_(chunk))):
            found[email] = contact_id
    missing = [email for email in wanted if email not in found]
    if missing:
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise ValidationError(f"Keine Ansprechperson mit dieser E-Mail-Adresse: {shown}", field="members")
    return list(dict.fromkeys(found[email] for email in wanted))


def verteiler_of(contact: Contact) -> list[Verteiler]:
    """The Verteiler this contact belongs to, as a member or through a saved filter."""
    result = []
    for verteiler in all_verteiler():
        statement = contacts_query({"verteiler_id": verteiler.id}).where(Contact.id == contact.id).order_by(None)
        if db.session.scalar(select(func.count()).select_from(statement.subquery())):
            result.append(verteiler)
    return result

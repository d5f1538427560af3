"""DIN 5008 address block, salutation and role wording for one recipient (standards.md §1.2, §1.7).

Pure: no database, no Flask. Accepts anything with the attributes of a ``Contact`` (``anrede`` in
{"frau", "herr", ""}, ``academic_title``, ``office_title``, ``first_name``, ``last_name``,
``organisation`` with ``authority``, ``name``, ``street``, ``postcode``, ``town``, ``kind``), ``None``
or an ``Organisation`` for a vacant post (nobody known by name).
"""
from __future__ import annotations

import re
from typing import Any

MAX_ADDRESS_LINES = 6  # DIN-15: the Anschriftzone has six lines
# A title longer than this does not fit after "Frau"/"Herrn" in the 85 mm field (ANR-08: next line).
MAX_ANREDE_LINE = 38

VACANT_SALUTATION = "Sehr geehrte Damen und Herren,"  # ANR-11
NEUTRAL_GROUP_SALUTATION = "Guten Tag,"

# Degrees written after the name and never used in the salutation (ANR-09).
_POSTNOMINAL = re.compile(
    r"^(?:B|M)\.?\s?(?:A|Sc|Eng|Ed|F\.?A|Mus|Phil)\.?$|^LL\.?\s?[BM]\.?$|^MBA$|^MPA$|^MPH$|^M\.?\s?P\.?\s?A\.?$",
)  # case-sensitive: "med." (Dr. med.) is not "M. Ed."
_WHITESPACE = re.compile(r"\s+")

ROLE_DEFAULTS = {"female": "Dezernentin", "male": "Dezernent", "area": "das KI"}


def _clean(value: Any) -> str:
    """One line of text: CR/LF, tabs and repeated blanks from data collapse to one blank."""
    return _WHITESPACE.sub(" ", str(value or "")).strip()


def is_vacant(recipient: Any) -> bool:
    """True for ``None``, an organisation, or a contact without a name: the post is addressed."""
    if recipient is None or not hasattr(recipient, "last_name"):
        return True
    return not _clean(getattr(recipient, "last_name", "")) and not _clean(getattr(recipient, "first_name", ""))


def _organisation(recipient: Any) -> Any:
    if recipient is None:
        return None
    if not hasattr(recipient, "last_name"):  # an Organisation itself
        return recipient
    return getattr(recipient, "organisation", None)


def split_title(academic_title: str) -> tuple[str, str]:
    """(before the name, after the name): "Dr. M. A." -> ("Dr.", "M. A.")."""
    title = _clean(academic_title)
    if not title:
        return "", ""
    if _POSTNOMINAL.match(title):
        return "", title
    # A trailing Bachelor/Master degree after a prefix title ("Dr. M. A.")
    for candidate in re.finditer(r"\s", title):
        head, tail = title[: candidate.start()], title[candidate.end():]
        if _POSTNOMINAL.match(tail):
            return head, tail
    return title, ""


def salutation_title(academic_title: str, anrede: str) -> str:
    """The one title used in the salutation: only the highest, a professorship spelled out (ANR-05/06/07)."""
    prefix, _ = split_title(academic_title)
    lowered = prefix.lower()
    if re.search(r"\bprof(\.|essor|essorin)?\b", lowered):
        return "Professorin" if anrede == "frau" else "Professor"
    if re.search(r"\bdr\.?", lowered):
        return "Dr."  # once, without "med."/"phil." (ANR-04, ANR-07)
    return ""


def name_line(contact: Any) -> str:
    """ "[Titel] Vorname Nachname [B./M. degree]" (ANR-04, ANR-09)."""
    prefix, postnominal = split_title(getattr(contact, "academic_title", ""))
    parts = [prefix, _clean(getattr(contact, "first_name", "")), _clean(getattr(contact, "last_name", "")), postnominal]
    return " ".join(part for part in parts if part)


def person_lines(contact: Any) -> list[str]:
    """The Anrede line(s) and the name line: the part ANR-T1 tables (ANR-01…09, DIN-19)."""
    if is_vacant(contact):
        return []
    anrede = _clean(getattr(contact, "anrede", "")).lower()
    office = _clean(getattr(contact, "office_title", ""))
    word = {"frau": "Frau", "herr": "Herrn"}.get(anrede, "")  # "Herrn": accusative (DIN-19)
    lines: list[str] = []
    if word and office and len(f"{word} {office}") <= MAX_ANREDE_LINE:
        lines.append(f"{word} {office}")  # ANR-08: the office title follows on the same line
    elif word:
        lines.append(word)
        if office:
            lines.append(office)  # ANR-08: a long title goes on the line below
    elif office:
        lines.append(office)  # no Anrede known (ANR-03): the office title still says who is meant
    lines.append(name_line(contact))
    return lines


def authority_lines(organisation: Any) -> list[str]:
    """The authority line(s): stored line breaks are kept as separate lines; the name if none is stored."""
    if organisation is None:
        return []
    raw = str(getattr(organisation, "authority", "") or "")
    lines = [_clean(line) for line in raw.splitlines()]
    lines = [line for line in lines if line]
    if not lines and _clean(getattr(organisation, "name", "")):
        lines = [_clean(organisation.name)]
    return lines


def postal_lines(organisation: Any) -> list[str]:
    """Street or Postfach, then "PLZ Ort" (DIN-18: five-digit PLZ, no space, no "D-")."""
    if organisation is None:
        return []
    street = _clean(getattr(organisation, "street", ""))
    postcode = re.sub(r"^D\s*-\s*|\s", "", _clean(getattr(organisation, "postcode", "")), flags=re.IGNORECASE)
    town = _clean(getattr(organisation, "town", ""))
    town_line = " ".join(part for part in (postcode, town) if part)
    return [line for line in (street, town_line) if line]


def address_lines(recipient: Any) -> list[str]:
    """The Anschriftzone: authority line(s), Frau/Herrn line, name, street, "PLZ Ort".

    No blank lines (DIN-16), at most six lines (DIN-15): when too long, authority lines are joined
    first, then a separate office-title line is dropped (the title is kept in the salutation).
    """
    organisation = _organisation(recipient)
    authority = authority_lines(organisation)
    person = person_lines(recipient)
    postal = postal_lines(organisation)
    while len(authority) + len(person) + len(postal) > MAX_ADDRESS_LINES and len(authority) > 1:
        authority = [*authority[:-2], f"{authority[-2]} – {authority[-1]}"]
    if len(authority) + len(person) + len(postal) > MAX_ADDRESS_LINES and len(person) == 3:
        person = [person[0], person[2]]
    lines = [line for line in (*authority, *person, *postal) if line]
    return lines[:MAX_ADDRESS_LINES]


def salutation(recipient: Any) -> str:
    """The Anrede line of the letter or mail (standards.md §1.7, ANR-01…ANR-11)."""
    if is_vacant(recipient):
        return VACANT_SALUTATION  # ANR-11
    anrede = _clean(getattr(recipient, "anrede", "")).lower()
    last_name = _clean(getattr(recipient, "last_name", ""))
    if anrede not in ("frau", "herr") or not last_name:
        # ANR-03: gender unknown, "divers" or nothing stored: the full name, titles as in the address.
        prefix, _ = split_title(getattr(recipient, "academic_title", ""))
        name = " ".join(p for p in (prefix, _clean(getattr(recipient, "first_name", "")), last_name) if p)
        return f"Guten Tag {name},"
    opening = "Sehr geehrte Frau" if anrede == "frau" else "Sehr geehrter Herr"
    parts = [opening, _clean(getattr(recipient, "office_title", "")), salutation_title(getattr(recipient, "academic_title", ""), anrede), last_name]
    return " ".join(part for part in parts if part) + ","


def role_wording(recipient: Any = None, case: str = "akkusativ", *, female: str = ROLE_DEFAULTS["female"],
                 male: str = ROLE_DEFAULTS["male"], area: str = ROLE_DEFAULTS["area"]) -> str:
    """The post, not the person: "die für das KI zuständige Dezernentin / den für das KI zuständigen Dezernenten".

    With a known Anrede only the matching form; for a vacant post or no Anrede both forms.
    ``case`` is "nominativ", "akkusativ" or "dativ".
    """
    forms = {
        "nominativ": (f"die für {area} zuständige {female}", f"der für {area} zuständige {male}"),
        "akkusativ": (f"die für {area} zuständige {female}", f"den für {area} zuständigen {male}en"),
        "dativ": (f"der für {area} zuständigen {female}", f"dem für {area} zuständigen {male}en"),
    }
    if case not in forms:
        raise ValueError(f"unknown case {case!r}")
    feminine, masculine = forms[case]
    anrede = "" if is_vacant(recipient) else _clean(getattr(recipient, "anrede", "")).lower()
    if anrede == "frau":
        return feminine
    if anrede == "herr":
        return masculine
    return f"{feminine} / {masculine}"

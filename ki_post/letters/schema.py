"""What a letter template can use: the placeholders, their example values, and a check of a
template's placeholders against them (typos found at upload, with a suggestion).

Pure data and functions (no Flask, no database): the upload check runs it in a child process.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from jinja2 import meta, nodes

LETTER_FIELDS = ("datum", "aktenzeichen", "betreff", "ansprechperson", "telefon", "telefax", "email")

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


CONTACT_KEYS = ("name", "vorname", "nachname", "titel", "anrede", "amtsbezeichnung", "funktion", "email", "telefon")
ORGANISATION_KEYS = ("name", "art", "behoerde", "strasse", "plz", "ort", "regierungsbezirk", "ki_name")
SIGNATORY_KEYS = ("name", "funktion")
# Top-level name -> the keys its value has (None: a plain value or a list of plain values).
SCHEMA: dict[str, tuple[str, ...] | None] = {
    "anrede": None, "anschrift": None, "funktion_empfaenger": None,
    "kontakt": CONTACT_KEYS, "organisation": ORGANISATION_KEYS,
    "ist_kreis": None, "ist_kreisfreie_stadt": None, "ist_staedteregion": None,
    **{name: None for name in LETTER_FIELDS},
    "unterzeichnende": None, "absender": tuple(DEFAULT_SENDER), "felder": None,
}
KNOWN_NAMES = frozenset(SCHEMA)
# Lists whose items have keys: {% for person in unterzeichnende %}{{ person.name }}
LIST_ITEM_KEYS: dict[str, tuple[str, ...]] = {"unterzeichnende": SIGNATORY_KEYS}
_DICT_METHODS = frozenset({"get", "items", "keys", "values"})
_GUARDING_FILTERS = frozenset({"default", "d"})


@dataclass
class References:
    """What a template reads: top-level names, keys of known objects, and the extra fields (felder)."""

    names: set[str] = field(default_factory=set)
    keys: set[tuple[str, str]] = field(default_factory=set)  # ("kontakt", "nachname"), ("unterzeichnende[]", "name")
    fields: set[str] = field(default_factory=set)  # felder.X printed as is: without a value the letter has a gap
    optional_fields: set[str] = field(default_factory=set)  # checked somewhere: |default, {% if %}, .get(…), or …

    def merge(self, other: References) -> None:
        self.names |= other.names
        self.keys |= other.keys
        self.fields |= other.fields
        self.optional_fields |= other.optional_fields

    @property
    def all_fields(self) -> set[str]:
        return self.fields | self.optional_fields


def _constant_key(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        return node.arg.value
    return None


class _Collector:
    def __init__(self, undeclared: set[str]):
        self.undeclared = undeclared
        self.result = References(names=set(undeclared))

    def visit(self, node: nodes.Node, guarded: bool = False, loops: dict[str, str] | None = None) -> None:
        loops = loops or {}
        if isinstance(node, nodes.For):
            self.visit(node.iter, guarded, loops)
            inner = dict(loops)
            if isinstance(node.target, nodes.Name) and isinstance(node.iter, nodes.Name) and node.iter.name in LIST_ITEM_KEYS:
                inner[node.target.name] = node.iter.name
            elif isinstance(node.target, nodes.Name):
                inner.pop(node.target.name, None)
            for child in (*node.body, *node.else_):
                self.visit(child, guarded, inner)
            if node.test is not None:
                self.visit(node.test, True, inner)
            return
        if isinstance(node, (nodes.If, nodes.CondExpr)):
            self.visit(node.test, True, loops)
            for child in node.iter_child_nodes(exclude=("test",)):
                self.visit(child, guarded, loops)
            return
        if isinstance(node, nodes.Filter) and node.name in _GUARDING_FILTERS and node.node is not None:
            self.visit(node.node, True, loops)
            for child in node.iter_child_nodes(exclude=("node",)):
                self.visit(child, guarded, loops)
            return
        if isinstance(node, nodes.Test):
            self.visit(node.node, True, loops)
            return
        if isinstance(node, nodes.Or):
            self.visit(node.left, True, loops)
            self.visit(node.right, guarded, loops)
            return
        if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr) and node.node.attr == "get" \
                and isinstance(node.node.node, nodes.Name) and node.node.node.name == "felder" and node.args \
                and isinstance(node.args[0], nodes.Const) and isinstance(node.args[0].value, str):
            self.result.optional_fields.add(node.args[0].value)
            for child in node.args[1:]:
                self.visit(child, guarded, loops)
            return
        key = _constant_key(node)
        if key is not None and isinstance(node.node, nodes.Name):
            root = node.node.name
            if root in loops:
                self.result.keys.add((loops[root] + "[]", key))
            elif root in self.undeclared:
                if root == "felder" and key not in _DICT_METHODS:
                    (self.result.optional_fields if guarded else self.result.fields).add(key)
                else:
                    self.result.keys.add((root, key))
        for child in node.iter_child_nodes():
            self.visit(child, guarded, loops)


def references(ast: nodes.Template) -> References:
    """Names, keys and extra fields a parsed template reads."""
    collector = _Collector(set(meta.find_undeclared_variables(ast)))
    collector.visit(ast)
    result = collector.result
    # A field the template checks somewhere ({% if felder.x %}, |default, .get) is optional everywhere.
    result.fields -= result.optional_fields
    return result


@dataclass(frozen=True)
class Unknown:
    placeholder: str  # "kontakt.nachnam"
    suggestion: str | None  # "kontakt.nachname"

    def __str__(self) -> str:
        return f"{self.placeholder} (meinten Sie {self.suggestion}?)" if self.suggestion else self.placeholder


def _suggest(word: str, choices: Iterable[str]) -> str | None:
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def unknown_placeholders(refs: References) -> list[Unknown]:
    """Placeholders KI-Post does not fill (they would stay empty), each with the closest known one."""
    result: list[Unknown] = []
    for name in sorted(refs.names - KNOWN_NAMES):
        result.append(Unknown(name, _suggest(name, KNOWN_NAMES)))
    for root, key in sorted(refs.keys):
        allowed = LIST_ITEM_KEYS.get(root[:-2]) if root.endswith("[]") else SCHEMA.get(root)
        if allowed is None or key in allowed or key in _DICT_METHODS:
            continue
        suggestion = _suggest(key, allowed)
        label = f"{root[:-2]}[…]" if root.endswith("[]") else root
        result.append(Unknown(f"{label}.{key}", f"{label}.{suggestion}" if suggestion else None))
    return result


def upload_warnings(refs: References, has_tags: bool) -> list[str]:
    warnings = []
    unknown = unknown_placeholders(refs)
    if unknown:
        warnings.append("Unbekannte Platzhalter (bleiben im Brief leer, bitte Schreibweise prüfen): "
                        + ", ".join(map(str, unknown)))
    if refs.all_fields:
        warnings.append("Die Vorlage erwartet diese Zusatzfelder (beim Erstellen als „name=Wert“ angeben): "
                        + ", ".join(f"felder.{name}" for name in sorted(refs.all_fields)))
    if not has_tags:
        warnings.append("Die Vorlage enthält keine Platzhalter: alle Briefe werden gleich.")
    return warnings

"""The Protokoll in German sentences: "Erika Muster hat zur Veranstaltung „Fachtag“ abgesagt (über den
persönlichen Link)." instead of "antwort.declined invitations #2".

SENTENCES maps each audit key that the code writes to a sentence template (one dict, so renamed keys
are renamed here). Fields: ``{wer}`` who acted, ``{objekt}`` the object with its article and a link,
``{person}`` the invited person (answers), ``{veranstaltung}`` the event named in the details, ``{weg}``
how an answer came in, and any detail by name. ``{anzahl:Einladung|Einladungen}`` writes a count with
the right noun, ``{feld?text}`` writes ``text`` only when the detail is set and not false. A key without
a sentence falls back to "X hat die Ansprechperson „…“ geändert" from the code's own words, never the code.

Names and links come from namers the higher layers register (``register_namer``): this module knows
no table but its own.
"""
from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from ..formatting import anzahl

SENTENCES: dict[str, str] = {
    "anmeldung": "{wer} hat sich angemeldet.",
    "konto.angelegt": "{wer} hat {objekt} angelegt (Rolle: {rolle}).",
    "konto.geaendert": "{wer} hat {objekt} geändert (Rolle: {rolle}{password_changed?, neues Passwort}{sessions_ended?, andere Sitzungen beendet}).",
    "absender.geaendert": "{wer} hat die Absenderangaben geändert{felder? ({felder})}.",
    "einstellungen.geaendert": "{wer} hat die Einstellungen geändert ({geaendert}).",
    "vorlage.hochgeladen": "{wer} hat {objekt} hochgeladen (Version {version}).",
    "rundschreiben.erstellt": "{wer} hat {letters:Brief|Briefe} erstellt ({objekt}){skipped?; {skipped} ohne Brief}.",
    "aussendung.rundschreiben": "{wer} hat {anzahl:Rundschreiben-Mail|Rundschreiben-Mails} vorbereitet ({objekt}){uebersprungen?; {uebersprungen} übersprungen}.",
    "veranstaltung.angelegt": "{wer} hat {objekt} angelegt.",
    "veranstaltung.geaendert": "{wer} hat {objekt} geändert{neu_erstellt?; {neu_erstellt} wartende Nachrichten neu geschrieben}.",
    "veranstaltung.veroeffentlicht": "{wer} hat {objekt} veröffentlicht.",
    "veranstaltung.abgesagt": "{wer} hat {objekt} abgesagt; {anzahl:Absage geht|Absagen gehen} an die Eingeladenen.",
    "veranstaltung.eingeladen": "{wer} hat für {objekt} {anzahl:Einladung|Einladungen} vorbereitet{uebersprungen?; {uebersprungen} übersprungen}.",
    "veranstaltung.erinnerung": "{wer} hat für {objekt} {anzahl:Erinnerung|Erinnerungen} vorbereitet.",
    "veranstaltung.kopiert": "{wer} hat {objekt} als Kopie einer früheren Veranstaltung angelegt{quelle_id? (Nummer {quelle_id})}.",
    "veranstaltung.erinnerung-automatik": "{wer} hat die automatischen Erinnerungen für {objekt} eingestellt{offene?; an alle ohne Antwort {offene} Tage vor der Antwortfrist}{teilnehmende?; an alle mit Zusage {teilnehmende} Tage vor Beginn}.",
    "veranstaltung.erinnerung-automatisch": "{wer} hat für {objekt} {anzahl:automatische Erinnerung|automatische Erinnerungen} versendet{uebersprungen?; {uebersprungen} übersprungen}.",
    "veranstaltung.nachbereitung": "{wer} hat für {objekt} {anzahl:Nachricht|Nachrichten} zur Nachbereitung vorbereitet{uebersprungen?; {uebersprungen} übersprungen}.",
    "einlass.anwesend": "{wer} hat beim Einlass von {objekt} eine Person als anwesend erfasst{begleitpersonen?, mit {begleitpersonen} Begleitperson(en)}.",
    "einlass.zurueckgenommen": "{wer} hat beim Einlass von {objekt} ein Abhaken zurückgenommen.",
    "einlass.vor-ort": "{wer} hat beim Einlass von {objekt} eine Person vor Ort angemeldet.",
    "einlass.vor-ort-entfernt": "{wer} hat beim Einlass von {objekt} eine vor Ort angemeldete Person aus der Liste entfernt.",
    "frage.angelegt": "{wer} hat für {objekt} eine Frage angelegt.",
    "frage.geaendert": "{wer} hat bei {objekt} eine Frage geändert.",
    "frage.geloescht": "{wer} hat bei {objekt} eine Frage gelöscht{antworten?; {antworten:Antwort|Antworten} mit gelöscht}.",
    "antwort.offen": "{wer} hat die Antwort von {person} zur Veranstaltung {veranstaltung} auf „offen“ gesetzt{weg}.",
    "antwort.zugesagt": "{person} hat zur Veranstaltung {veranstaltung} zugesagt{begleitpersonen? mit {begleitpersonen:Begleitperson|Begleitpersonen}}{weg}.",
    "antwort.abgesagt": "{person} hat zur Veranstaltung {veranstaltung} abgesagt{weg}.",
    "antwort.vorlaeufig": "{person} hat zur Veranstaltung {veranstaltung} vorläufig zugesagt{weg}.",
    "antwort.warteliste": "{person} hat zur Veranstaltung {veranstaltung} zugesagt und steht auf der Warteliste{weg}.",
    "antwort.nachgerueckt": "{person} ist bei der Veranstaltung {veranstaltung} von der Warteliste nachgerückt.",
    "kalenderantwort.uebernommen": "{wer} hat eine Kalenderantwort zur Veranstaltung {veranstaltung} übernommen.",
    "kalenderantwort.veraltet": "{wer} hat eine Kalenderantwort zu einer älteren Fassung der Veranstaltung {veranstaltung} nicht übernommen.",
    "kalenderantwort.ignoriert": "{wer} hat eine Kalenderantwort zur Veranstaltung {veranstaltung} ignoriert (neuere Antwort vorhanden oder ungültig).",
    "kalenderantwort.verspaetet": "{wer} hat eine Kalenderantwort zur Veranstaltung {veranstaltung} nach Ablauf der Antwortfrist erhalten; sie wartet auf Prüfung.",
    "kalenderantwort.unzugeordnet": "{wer} hat eine Kalenderantwort erhalten, die sich keiner Einladung zuordnen ließ.",
    "kalenderantwort.assigned": "{wer} hat eine Kalenderantwort von Hand zugeordnet.",
    "kalenderantwort.dismissed": "{wer} hat eine Kalenderantwort verworfen.",
    "kalenderantwort.unzugeordnet": "{wer} hat eine Kalenderantwort erhalten, die sich keiner Einladung zuordnen ließ.",
    "kalenderantwort.zugeordnet": "{wer} hat eine Kalenderantwort von Hand zugeordnet{frist_uebergangen? (nach Ablauf der Antwortfrist)}.",
    "kalenderantwort.verworfen": "{wer} hat eine Kalenderantwort verworfen.",
    "aussendung.freigegeben": "{wer} hat {objekt} zum Senden freigegeben.",
    "aussendung.pausiert": "{wer} hat {objekt} pausiert.",
    "aussendung.fortgesetzt": "{wer} hat {objekt} fortgesetzt.",
    "aussendung.abgebrochen": "{wer} hat {objekt} abgebrochen{anzahl?; {anzahl:Nachricht geht|Nachrichten gehen} nicht mehr hinaus}.",
    "aussendung.fehlgeschlagene-erneut": "{wer} hat {anzahl:fehlgeschlagene Nachricht|fehlgeschlagene Nachrichten} von {objekt} erneut in den Versand gegeben.",
    "aussendung.unklare-erneut": "{wer} hat {anzahl:unklare Nachricht|unklare Nachrichten} von {objekt} erneut in den Versand gegeben{zurueckgezogen?; {zurueckgezogen} überholte zurückgezogen}.",
    "aussendung.unklare-als-gesendet": "{wer} hat {anzahl:unklare Nachricht|unklare Nachrichten} von {objekt} als gesendet markiert.",
    "aussendung.testversand": "{wer} hat eine Testnachricht von {objekt} an sich gesendet.",
    "nachricht.erneut-gesendet": "{wer} hat {objekt} erneut in den Versand gegeben.",
    "nachricht.als-gesendet-markiert": "{wer} hat {objekt} als gesendet markiert.",
    "nachricht.unzustellbar": "{objekt} ist laut Zustellungsnachricht unzustellbar ({status}).",
    "kontakt.angelegt": "{wer} hat {objekt} angelegt.",
    "kontakt.geaendert": "{wer} hat {objekt} geändert.",
    "kontakt.aktiviert": "{wer} hat {objekt} aktiviert.",
    "kontakt.deaktiviert": "{wer} hat {objekt} deaktiviert.",
    "kontakt.unzustellbar": "Die Adresse von {objekt} ist unzustellbar (Zustellungsnachricht).",
    "kontakt.zustellbar": "{wer} hat die Adresse von {objekt} geändert; der Hinweis „unzustellbar“ ist aufgehoben.",
    "kontakt.auskunft": "{wer} hat eine Datenauskunft über {objekt} erstellt.",
    "kontakt.anonymisiert": "{wer} hat {objekt} anonymisiert.",
    "kontakt.geloescht": "{wer} hat {objekt} gelöscht.",
    "kontakt.bestaetigt": "{objekt} hat die eigenen Angaben als richtig bestätigt (Link „Angaben prüfen“).",
    "kontakt.uebergeben": "{wer} hat die Zuständigkeit von {objekt} an die Nachfolge übergeben ({verteiler:Verteiler|Verteiler} übertragen{einladungen?, {einladungen:Einladung|Einladungen} an die Nachfolge}{zurueckgezogen?, {zurueckgezogen:Nachricht|Nachrichten} zurückgezogen}).",
    "aussendung.angaben-pruefen": "{wer} hat die Bitte „Angaben prüfen“ an {anzahl:Ansprechperson|Ansprechpersonen} vorbereitet ({objekt}){uebersprungen?; {uebersprungen} übersprungen}.",
    "vorschlag.eingegangen": "Über den Link „Angaben prüfen“ ist {objekt} eingegangen.",
    "vorschlag.uebernommen": "{wer} hat {objekt} übernommen.",
    "vorschlag.abgelehnt": "{wer} hat {objekt} abgelehnt{begruendet? (mit Begründung)}.",
    "veranstaltung.uebergeben": "{wer} hat bei {objekt} die offene Einladung an die Nachfolge übergeben ({eingeladen:Einladung|Einladungen} neu, {zurueckgezogen:Nachricht|Nachrichten} zurückgezogen).",
    "kontakte.zusammengefuehrt": "{wer} hat eine doppelte Ansprechperson mit {objekt} zusammengeführt.",
    "kontakte.nachbereinigt": "{wer} hat Kopien von {kontakte:gelöschter Ansprechperson|gelöschten Ansprechpersonen} nachträglich bereinigt.",
    "kontakte.importiert": "{wer} hat Ansprechpersonen importiert ({neu} neu, {geaendert} geändert, {unveraendert} unverändert, {ungueltig} ungültig; {organisations_new:neue Kommune|neue Kommunen}){objekt?, dazu in {objekt}}.",
    "kontakte.exportiert": "{wer} hat {anzahl:Ansprechperson|Ansprechpersonen} exportiert ({format}){objekt? aus {objekt}}.",
    "kommune.angelegt": "{wer} hat {objekt} angelegt.",
    "kommune.geaendert": "{wer} hat {objekt} geändert.",
    "verteiler.angelegt": "{wer} hat {objekt} angelegt ({members:festes Mitglied|feste Mitglieder}{has_filter?, mit gespeichertem Filter}).",
    "verteiler.geaendert": "{wer} hat {objekt} geändert ({members:festes Mitglied|feste Mitglieder}{has_filter?, mit gespeichertem Filter}).",
    "verteiler.geloescht": "{wer} hat {objekt} gelöscht.",
}

# Who acted when no staff account did (AuditEntry.actor).
ACTORS = {
    "cli": "Die Kommandozeile", "rsvp-link": "Die eingeladene Person (persönlicher Link)",
    "imap": "Der Abruf der Kalenderantworten", "worker": "Der Versand", "anonym": "Jemand ohne Anmeldung",
}
WAYS = {"link": "über den persönlichen Link", "kalender": "mit dem Kalenderprogramm", "telefon": "per Telefon",
        "brief": "per Brief", "sachbearbeitung": "durch die Sachbearbeitung"}
# The object of an entry by its table: the words with article (accusative) for the sentence.
NOUNS = {
    "users": "das Konto", "events": "die Veranstaltung", "invitations": "die Einladung", "calendar_replies": "die Kalenderantwort",
    "outbox_mailings": "die Aussendung", "outbox_messages": "die Nachricht", "contacts": "die Ansprechperson",
    "organisations": "die Kommune", "verteiler": "den Verteiler", "letter_template_versions": "die Briefvorlage",
    "letter_runs": "den Briefsatz", "letter_sender_profiles": "die Absenderangaben",
    "contact_proposals": "einen Vorschlag",
}
# Words of the fallback, from the last part of a key (also German codes like "als-gesendet-markiert").
VERBS = {"geaendert": "geändert", "geloescht": "gelöscht", "veroeffentlicht": "veröffentlicht",
         "zurueckgezogen": "zurückgezogen", "nachgerueckt": "nachgerückt", "eingereiht": "vorbereitet"}


@dataclass(frozen=True)
class Named:
    """What a namer knows of one row: its name (never None: "gelöscht" when gone) and its page."""
    name: str
    url: str | None = None
    event_id: int | None = None  # invitations: their event


Namer = Callable[[Iterable[int]], Mapping[int, Named]]
_namers: dict[str, Namer] = {}


def register_namer(table: str, namer: Namer) -> None:
    _namers[table] = namer


class _Formatter(string.Formatter):
    """``{n:Einladung|Einladungen}`` writes a count with its noun; a missing detail writes nothing."""

    def get_field(self, field_name, args, kwargs):
        return kwargs.get(field_name), field_name

    def format_field(self, value, format_spec):
        if "|" in format_spec:
            singular, _, plural = format_spec.partition("|")
            return escape(anzahl(int(value or 0), singular, plural))
        if value is None:
            return ""
        return value if isinstance(value, Markup) else escape(value)


_formatter = _Formatter()
_CONDITION = re.compile(r"^(\w+)\?(.*)$", re.S)


def _expand(template: str, values: Mapping[str, Any]) -> str:
    """``{feld?text}`` first (the text may hold fields), then each field."""
    out, rest = [], template
    while "{" in rest:
        start = rest.index("{")
        depth, end = 0, start
        for end in range(start, len(rest)):
            depth += {"{": 1, "}": -1}.get(rest[end], 0)
            if depth == 0:
                break
        out.append(rest[:start])
        field = rest[start + 1:end]
        condition = _CONDITION.match(field)
        if condition:
            if values.get(condition.group(1)) not in (None, "", 0, False):
                out.append(_expand(condition.group(2), values))
        else:
            out.append(_formatter.vformat("{" + field + "}", (), values))
        rest = rest[end + 1:]
    out.append(rest)
    return "".join(str(part) for part in out)


def _link(text: str, url: str | None) -> Markup:
    quoted = escape(f"„{text}“")
    return Markup(f'<a href="{escape(url)}">{quoted}</a>') if url else quoted


def _fallback(action: str) -> str:
    last = action.rsplit(".", 1)[-1]
    verb = VERBS.get(last) or last.replace("-", " ").replace("ae", "ä").replace("oe", "ö").replace("ue", "ü")
    return "{wer} hat {objekt?{objekt} }" + verb + "."


def sentences(entries: Iterable[Any]) -> dict[int, Markup]:
    """One sentence (safe HTML with links) per audit entry id, names looked up once per table."""
    entries = list(entries)
    wanted: dict[str, set[int]] = {}
    for entry in entries:
        if entry.object_type and entry.object_id is not None:
            wanted.setdefault(entry.object_type, set()).add(entry.object_id)
        if isinstance(entry.details, dict) and isinstance(entry.details.get("event_id"), int):
            wanted.setdefault("events", set()).add(entry.details["event_id"])
    names = {table: _namers[table](ids) if table in _namers else {} for table, ids in wanted.items()}
    return {entry.id: sentence(entry, names) for entry in entries}


def sentence(entry: Any, names: Mapping[str, Mapping[int, Named]]) -> Markup:
    details = dict(entry.details or {}) if isinstance(entry.details, dict) else {}
    details.pop("ip", None)
    named = names.get(entry.object_type, {}).get(entry.object_id) if entry.object_id is not None else None
    noun = NOUNS.get(entry.object_type, "den Eintrag")
    objekt = Markup(f"{escape(noun)} {_link(named.name, named.url)}") if named else (
        Markup(escape(f"{noun} (gelöscht)")) if entry.object_type else "")
    if not objekt and "{objekt}" in SENTENCES.get(entry.action, ""):
        objekt = "einen Eintrag"  # written without its object (not done by the code today)
    event_id = details.get("event_id") or (named.event_id if named else None)
    event = names.get("events", {}).get(event_id) if event_id else None
    user = getattr(entry, "user", None)
    wer = user.name if user is not None else ACTORS.get(entry.actor, "Jemand")
    way = WAYS.get(details.get("kanal", ""), "")
    by = f"erfasst von {user.name}" if user is not None and details.get("kanal") not in ("link", "kalender") else ""
    weg = f" ({', '.join(part for part in (way, by) if part)})" if (way or by) else ""
    values = {**details, "wer": escape(wer), "objekt": objekt, "weg": weg,
              "person": escape(named.name) if named and entry.object_type == "invitations" else "jemand",
              "veranstaltung": _link(event.name, event.url) if event else "(gelöscht)",
              "rolle": {"lesen": "Lesen", "sachbearbeitung": "Sachbearbeitung", "admin": "Administration"}.get(details.get("role"), details.get("role"))}
    text = _expand(SENTENCES.get(entry.action) or _fallback(entry.action), values)
    text = text[:1].upper() + text[1:]
    return Markup(text)

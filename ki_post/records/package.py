"""An Akten-Export as one ZIP: the files, and a manifest in CSV and XML that describes each of them.

The manifest lists every file of the ZIP except itself and LIESMICH.txt (who exported it when, how to read
the manifest) (name, title, kind, media type, created,
SHA-256, size in bytes, number of entries), in the same order in both forms; the XML also carries what
the export is about and the notes (e.g. "not finished when exported"). Pure: no database.
"""
from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO

from lxml import etree

from .. import exports
from ..formatting import BERLIN

MANIFEST_CSV = "manifest.csv"
MANIFEST_XML = "manifest.xml"
README = "LIESMICH.txt"
NAMESPACE = "urn:ki-post:akten-export:1"
MANIFEST_HEADER = ["Datei", "Titel", "Art", "Medientyp", "Erstellt", "SHA-256", "Größe (Bytes)", "Anzahl"]


def timestamp(value: datetime) -> str:
    """ISO 8601 in German local time with its offset (2026-12-02T10:15:00+01:00)."""
    return value.astimezone(BERLIN).isoformat(timespec="seconds")


@dataclass
class Entry:
    name: str
    title: str
    kind: str
    mimetype: str
    created: datetime
    data: bytes
    count: int = 1  # entries it holds: 1 for a document, rows for a log

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def row(self) -> list[str]:
        return [self.name, self.title, self.kind, self.mimetype, timestamp(self.created), self.sha256, str(len(self.data)),
                str(self.count)]


@dataclass
class Package:
    """What one export holds: ``subject`` ("Rundschreiben …"), ``reference`` ("aussendung-12"), files, notes."""

    subject: str
    reference: str
    created: datetime
    entries: list[Entry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Who made the export ("Erika Muster (erika@…)", "Kommandozeile"); set by the view or command.
    exported_by: str = ""
    _names: set[str] = field(default_factory=set)

    def add(self, name: str, title: str, kind: str, mimetype: str, created: datetime, data: bytes, count: int = 1) -> Entry:
        folder, _, base = name.rpartition("/")
        base = base.replace("\\", "_").strip() or "datei"
        stem, dot, ext = base.rpartition(".")
        candidate, number = (f"{folder}/" if folder else "") + base, 2
        while candidate.lower() in self._names or candidate in (MANIFEST_CSV, MANIFEST_XML, README):
            candidate = (f"{folder}/" if folder else "") + (f"{stem} ({number}).{ext}" if dot else f"{base} ({number})")
            number += 1
        self._names.add(candidate.lower())
        entry = Entry(candidate, title, kind, mimetype, created, data, count)
        self.entries.append(entry)
        return entry

    def readme(self) -> bytes:
        """LIESMICH.txt: what the export is, who made it when, and how to read the manifest."""
        lines = [f"Akten-Export: {self.subject}", f"Kennung: {self.reference}",
                 f"Erstellt: {timestamp(self.created)}" + (f" von {self.exported_by}" if self.exported_by else ""),
                 f"Dateien: {len(self.entries)} (ohne LIESMICH.txt und Manifest)", ""]
        lines += [f"Hinweis: {note}" for note in self.notes] + ([""] if self.notes else [])
        lines += ["manifest.csv und manifest.xml beschreiben jede Datei mit denselben Angaben:",
                  "- Datei: Pfad in der ZIP-Datei; Titel und Art: was sie ist; Medientyp: Dateiformat (MIME);",
                  "- Erstellt: wann der Inhalt entstand (bei Briefen: wann sie erstellt bzw. versandt wurden);",
                  "- SHA-256: Prüfsumme, mit der sich die Unversehrtheit der Datei prüfen lässt;",
                  "- Größe (Bytes); Anzahl: Einträge, die sie enthält – 1 bei einem Dokument, die Zahl der",
                  "  Zeilen bei einer Liste oder einem Protokoll, der Personen bei einer Teilnehmerliste."]
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")

    def manifest_csv(self) -> bytes:
        return exports.csv_bytes(MANIFEST_HEADER, (entry.row() for entry in self.entries))

    def manifest_xml(self) -> bytes:
        root = etree.Element(f"{{{NAMESPACE}}}aktenexport", nsmap={None: NAMESPACE})
        root.set("kennung", self.reference)
        root.set("erstellt", timestamp(self.created))
        root.set("anzahl", str(len(self.entries)))
        if self.exported_by:
            root.set("ausgefuehrt_von", _xml_text(self.exported_by))
        etree.SubElement(root, f"{{{NAMESPACE}}}betreff").text = _xml_text(self.subject)
        for note in self.notes:
            etree.SubElement(root, f"{{{NAMESPACE}}}hinweis").text = _xml_text(note)
        files = etree.SubElement(root, f"{{{NAMESPACE}}}dateien")
        for entry in self.entries:
            element = etree.SubElement(files, f"{{{NAMESPACE}}}datei")
            for tag, value in zip(("name", "titel", "art", "medientyp", "erstellt", "sha256", "groesse", "anzahl"), entry.row()):
                etree.SubElement(element, f"{{{NAMESPACE}}}{tag}").text = _xml_text(value)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

    def write(self, target: str | IO[bytes]) -> None:
        """The ZIP: LIESMICH.txt (a reading aid, outside the manifest like the manifest itself), the files,
        the manifest."""
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(_info(README, self.created, zipfile.ZIP_DEFLATED), self.readme())
            for entry in self.entries:
                # PDFs and DOCX are compressed already: stored as they are, byte for byte.
                method = zipfile.ZIP_STORED if entry.mimetype in _COMPRESSED else zipfile.ZIP_DEFLATED
                archive.writestr(_info(entry.name, entry.created, method), entry.data)
            archive.writestr(_info(MANIFEST_CSV, self.created, zipfile.ZIP_DEFLATED), self.manifest_csv())
            archive.writestr(_info(MANIFEST_XML, self.created, zipfile.ZIP_DEFLATED), self.manifest_xml())


_COMPRESSED = {"application/pdf", "application/zip",
               "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}
_ILLEGAL_XML = str.maketrans({code: None for code in (*range(0, 9), 11, 12, *range(14, 32))})


def _xml_text(value: str) -> str:
    return str(value).translate(_ILLEGAL_XML)


def _info(name: str, created: datetime, method: int) -> zipfile.ZipInfo:
    local = created.astimezone(BERLIN)
    info = zipfile.ZipInfo(name, date_time=(max(local.year, 1980), local.month, local.day, local.hour, local.minute,
                                            local.second))
    info.compress_type = method
    info.external_attr = 0o644 << 16
    return info

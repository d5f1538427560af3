"""The DOCX package (a ZIP): bounded reading, raw-copy writing, print merge, plain text.

Reading is bounded before anything is inflated: the sizes in the ZIP directory are checked against
caps (a small file that unpacks to hundreds of MB is refused at once), and members are then read in
chunks, never past the size they declare. Writing copies untouched members with their compressed
bytes as stored; only rendered parts are compressed anew.
"""
from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from lxml import etree

from ..errors import ValidationError

DOCX_MIMETYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
# Parts that are filled in: body, headers, footers, footnotes, endnotes, core properties (title etc.).
RENDERABLE = re.compile(r"^(word/(document|header\d*|footer\d*|footnotes|endnotes)\.xml|docProps/core\.xml)$")
# A letter template is a few hundred KB unpacked, images included; these caps leave ample room and
# stop a "ZIP bomb" (590 KB that unpack to 157 MB) before it costs time or memory.
MAX_UNPACKED_BYTES = 50 * 1024 * 1024
MAX_PART_BYTES = 5 * 1024 * 1024  # each XML part that is filled in (≈ 1,000 pages of text)
MAX_MEMBERS = 2000
_CHUNK = 1024 * 1024
_PART_LABELS = {"word/document.xml": "Haupttext", "docProps/core.xml": "Dokumenteigenschaften"}
_KIND_LABELS = {"header": "Kopfzeile", "footer": "Fußzeile", "footnotes": "Fußnoten", "endnotes": "Endnoten"}
_REFERENCE_TYPES = {"first": " (erste Seite)", "even": " (gerade Seiten)", "default": ""}


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.0f} MB"


def check_directory(data: bytes) -> zipfile.ZipFile:
    """A DOCX judged by its ZIP directory alone (nothing inflated): a Word document, small enough unpacked."""
    if not data:
        raise ValidationError("Die Datei ist leer.", field="file")
    if not data.startswith(b"PK"):
        raise ValidationError(
            "Die Datei ist kein Word-Dokument im DOCX-Format. Bitte in Word oder LibreOffice "
            "„Speichern unter … Word-Dokument (.docx)“ wählen.", field="file")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, NotImplementedError, zlib.error) as exc:
        raise ValidationError(f"Die DOCX-Datei ist beschädigt: das ZIP-Archiv lässt sich nicht lesen ({exc}).", field="file") from None
    if len(infos) > MAX_MEMBERS:
        raise ValidationError(f"Die DOCX-Datei enthält zu viele Teile (mehr als {MAX_MEMBERS}).", field="file")
    total = sum(info.file_size for info in infos)
    if total > MAX_UNPACKED_BYTES:
        raise ValidationError(
            f"Die DOCX-Datei ist entpackt zu groß ({_mb(total)}, höchstens {_mb(MAX_UNPACKED_BYTES)}). "
            "Bitte große Bilder verkleinern oder entfernen.", field="file")
    for info in infos:
        if RENDERABLE.match(info.filename) and info.file_size > MAX_PART_BYTES:
            raise ValidationError(
                f"Der Teil „{part_label(info.filename)}“ der DOCX-Datei ist entpackt zu groß "
                f"({_mb(info.file_size)}, höchstens {_mb(MAX_PART_BYTES)}).", field="file")
    names = {info.filename for info in infos}
    if "word/document.xml" not in names or "[Content_Types].xml" not in names:
        raise ValidationError(
            "Die Datei ist ein ZIP-Archiv, aber kein Word-Dokument (word/document.xml fehlt).", field="file")
    return archive


def open_docx(data: bytes) -> zipfile.ZipFile:
    """The ZIP of a DOCX, checked: a Word document, small enough unpacked, and intact."""
    archive = check_directory(data)
    try:
        # testzip reads in 1 MB chunks and stops at each member's declared size.
        bad = archive.testzip()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, NotImplementedError, zlib.error) as exc:
        raise ValidationError(f"Die DOCX-Datei ist beschädigt: das ZIP-Archiv lässt sich nicht lesen ({exc}).", field="file") from None
    if bad is not None:
        raise ValidationError(f"Die DOCX-Datei ist beschädigt: der Teil „{bad}“ ist fehlerhaft.", field="file")
    return archive


def read_member(archive: zipfile.ZipFile, name: str) -> bytes:
    """A member's bytes, read in chunks: memory never exceeds its declared (and checked) size."""
    info = archive.getinfo(name)
    chunks, size = [], 0
    with archive.open(info) as member:
        while chunk := member.read(_CHUNK):
            size += len(chunk)
            if size > info.file_size:
                raise ValidationError(f"Die DOCX-Datei ist beschädigt: der Teil „{name}“ ist größer als angegeben.", field="file")
            chunks.append(chunk)
    return b"".join(chunks)


def part_label(name: str, references: Mapping[str, str] | None = None) -> str:
    """A part as Word calls it: Haupttext, Kopfzeile (erste Seite), Fußzeile …"""
    if references and name in references:
        return references[name]
    if name in _PART_LABELS:
        return _PART_LABELS[name]
    match = re.match(r"word/(header|footer|footnotes|endnotes)(\d*)\.xml", name)
    if match:
        return f"{_KIND_LABELS[match[1]]} {match[2]}".strip()
    return name


def header_footer_labels(archive: zipfile.ZipFile) -> dict[str, str]:
    """Header/footer part name -> "Kopfzeile (erste Seite)" etc., from the section properties."""
    try:
        rels = etree.fromstring(read_member(archive, "word/_rels/document.xml.rels"))
        document = read_member(archive, "word/document.xml").decode("utf-8", "replace")
    except (KeyError, etree.XMLSyntaxError):
        return {}
    targets = {rel.get("Id"): "word/" + rel.get("Target", "").lstrip("/").removeprefix("word/") for rel in rels}
    labels: dict[str, str] = {}
    for kind, ref_type, rid in re.findall(r'<w:(header|footer)Reference\b[^>]*?w:type="(\w+)"[^>]*?r:id="([^"]+)"', document):
        name = targets.get(rid)
        if name and name not in labels:
            labels[name] = _KIND_LABELS[kind] + _REFERENCE_TYPES.get(ref_type, "")
    return labels


@dataclass(frozen=True)
class Member:
    info: zipfile.ZipInfo
    raw: bytes  # compressed bytes exactly as stored in the template


def raw_members(data: bytes, archive: zipfile.ZipFile) -> list[Member]:
    members = []
    for info in archive.infolist():
        # Local header: 30 fixed bytes, then name and extra field of the *local* header's lengths.
        start = info.header_offset
        name_len, extra_len = struct.unpack("<HH", data[start + 26:start + 30])
        begin = start + 30 + name_len + extra_len
        members.append(Member(info, data[begin:begin + info.compress_size]))
    return members


# -- ZIP writing with raw member copies -----------------------------------------------------------
_DOS_DATE_TIME = (0x21, 0)  # 1980-01-01 00:00, for rendered parts: output bytes depend only on content


def _local_header(name: bytes, method: int, crc: int, csize: int, usize: int, flags: int, dostime: tuple[int, int]) -> bytes:
    return struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, flags, method, dostime[1], dostime[0], crc, csize, usize, len(name), 0) + name


def _central_header(name: bytes, method: int, crc: int, csize: int, usize: int, flags: int, dostime: tuple[int, int], offset: int) -> bytes:
    return struct.pack(
        "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, flags, method, dostime[1], dostime[0], crc, csize, usize,
        len(name), 0, 0, 0, 0, 0, offset,
    ) + name


def _dostime(info: zipfile.ZipInfo) -> tuple[int, int]:
    y, mo, d, h, mi, s = info.date_time
    return ((y - 1980) << 9 | mo << 5 | d, h << 11 | mi << 5 | s // 2)


@dataclass(frozen=True)
class Packed:
    raw: bytes
    crc: int
    size: int
    method: int = zipfile.ZIP_DEFLATED


def pack(data: bytes) -> Packed:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return Packed(compressor.compress(data) + compressor.flush(), zlib.crc32(data), len(data))


def pack_stored(data: bytes) -> Packed:
    """Stored, not compressed: for a small part that changes per letter (the core properties, ~1 KB),
    where setting up a compressor costs more than the few hundred bytes it would save."""
    return Packed(data, zlib.crc32(data), len(data), zipfile.ZIP_STORED)


def assemble_zip(members: list[Member], replaced: Mapping[str, bytes], added: Iterable[tuple[str, bytes]] = (),
                 packed: Mapping[str, Packed] | None = None) -> bytes:
    chunks: list[bytes] = []
    central: list[bytes] = []
    offset = 0
    added = list(added)
    new_members = [Member(zipfile.ZipInfo(name), b"") for name, _ in added]
    ready = dict(packed or {})
    ready.update({name: pack(data) for name, data in {**replaced, **dict(added)}.items()})
    members = [*members, *new_members]
    for member in members:
        info = member.info
        name = info.filename.encode("utf-8")
        flags = 0x800 if not info.filename.isascii() else 0
        new = ready.get(info.filename)
        if new is None:
            method, crc, csize, usize, raw = info.compress_type, info.CRC, info.compress_size, info.file_size, member.raw
            dostime = _dostime(info)
        else:
            raw = new.raw
            method, crc, csize, usize, dostime = new.method, new.crc, len(raw), new.size, _DOS_DATE_TIME
        header = _local_header(name, method, crc, csize, usize, flags, dostime)
        chunks.append(header)
        chunks.append(raw)
        central.append(_central_header(name, method, crc, csize, usize, flags, dostime, offset))
        offset += len(header) + len(raw)
    directory = b"".join(central)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(directory), offset, 0)
    return b"".join(chunks) + directory + end


# -- print merge: many letters, one DOCX, one section per letter ------------------------------------
_REFERENCE = re.compile(r'<w:(header|footer)Reference w:type="(\w+)" r:id="([^"]+)"/>')
_SECTION_TAIL = re.compile(r"<w:(?:lnNumType|pgNumType|cols|formProt|vAlign|noEndnote|titlePg|textDirection|bidi|rtlGutter|docGrid|printerSettings|sectPrChange)\b")
_PART_TYPES = {
    "header": "application/vnd.openxmlformats-officedocument.wordprocessingml.header+xml",
    "footer": "application/vnd.openxmlformats-officedocument.wordprocessingml.footer+xml",
}
_REL_TYPE = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"


def _restart_numbering(sect: str) -> str:
    """Each letter is its own section: new page, page numbers from 1 (w:pgNumType w:start="1")."""
    sect = re.sub(r"<w:pgNumType\b[^>]*/>", "", sect)
    sect = re.sub(r"<w:type\b[^>]*/>", "", sect)
    match = _SECTION_TAIL.search(sect)
    at = match.start() if match else sect.rindex("</w:sectPr>")
    sect = sect[:at] + '<w:pgNumType w:start="1"/>' + sect[at:]
    refs = list(_REFERENCE.finditer(sect))
    at = refs[-1].end() if refs else sect.index(">") + 1
    return sect[:at] + '<w:type w:val="nextPage"/>' + sect[at:]


_CACHED_SECTIONPAGES = re.compile(r'(SECTIONPAGES\b.*?fldCharType="separate"/>.*?<w:t(?: [^>]*)?>)[^<]*(</w:t>)', re.DOTALL)


def merge_letters(letters: Iterable[bytes], page_counts: list[int] | None = None) -> bytes:
    """One DOCX for printing: every letter in its own section, starting on a new page, with its own
    first-page header/footer (w:titlePg) and "Seite 1 von N" restarting (PAGE + SECTIONPAGES).

    All letters must come from the same template. Identical headers/footers are stored once.
    ``page_counts`` (pages per letter, e.g. measured by LibreOffice) are written as the fields'
    cached results: Word recomputes SECTIONPAGES itself, LibreOffice 7 shows the cached value.
    """
    base: zipfile.ZipFile | None = None
    base_members: list[Member] = []
    parts: dict[bytes, str] = {}  # header/footer bytes -> rId in the merged document
    added: list[tuple[str, bytes]] = []
    replaced: dict[str, bytes] = {}
    new_rels: list[str] = []
    bodies: list[tuple[str, str]] = []
    document_head = ""
    for number, docx in enumerate(letters):
        archive = zipfile.ZipFile(io.BytesIO(docx))
        document = archive.read("word/document.xml").decode("utf-8")
        rels = archive.read("word/_rels/document.xml.rels").decode("utf-8")
        targets = dict(re.findall(r'Id="([^"]+)"[^>]*?Target="([^"]+)"', rels))
        targets.update({rid: target for target, rid in re.findall(r'Target="([^"]+)"[^>]*?Id="([^"]+)"', rels)})
        start = document.index("<w:body>") + len("<w:body>")
        end = document.rindex("</w:body>")
        if base is None:
            base = archive
            base_members = raw_members(docx, archive)
            document_head = document[:start]
        inner = document[start:end]
        cut = inner.rindex("<w:sectPr")
        content, sect = inner[:cut], inner[cut:]

        def swap(match: re.Match) -> str:
            kind, rid = match[1], match[3]
            name = "word/" + targets[rid]
            data = archive.read(name).replace(b" NUMPAGES ", b" SECTIONPAGES ")
            if page_counts is not None:
                data = _CACHED_SECTIONPAGES.sub(rf"\g<1>{page_counts[number]}\g<2>", data.decode("utf-8")).encode("utf-8")
            if data not in parts:
                if number == 0:
                    parts[data] = rid
                    replaced[name] = data
                else:
                    new_rid = f"rIdKiPost{len(added) + 1}"
                    part_name = f"word/{kind}KiPost{len(added) + 1}.xml"
                    added.append((part_name, data))
                    new_rels.append(f'<Relationship Id="{new_rid}" Type="{_REL_TYPE}{kind}" Target="{part_name[5:]}"/>')
                    parts[data] = new_rid
            return match[0].replace(f'r:id="{rid}"', f'r:id="{parts[data]}"')

        sect = _restart_numbering(_REFERENCE.sub(swap, sect))
        bodies.append((content, sect))
    if base is None:
        raise ValidationError("Keine Briefe zum Zusammenführen.")
    pieces = []
    for index, (content, sect) in enumerate(bodies):
        pieces.append(content)
        if index < len(bodies) - 1:
            # A 1-pt paragraph carries the section break, so no letter gains an extra line.
            pieces.append('<w:p><w:pPr><w:spacing w:before="0" w:after="0" w:line="20" w:lineRule="exact"/>'
                          f'<w:rPr><w:sz w:val="2"/></w:rPr>{sect}</w:pPr></w:p>')
        else:
            pieces.append(sect)
    replaced["word/document.xml"] = (document_head + "".join(pieces) + "</w:body></w:document>").encode("utf-8")
    rels = base.read("word/_rels/document.xml.rels").decode("utf-8")
    replaced["word/_rels/document.xml.rels"] = rels.replace("</Relationships>", "".join(new_rels) + "</Relationships>").encode("utf-8")
    types = base.read("[Content_Types].xml").decode("utf-8")
    overrides = "".join(
        f'<Override PartName="/{name}" ContentType="{_PART_TYPES["header" if "header" in name else "footer"]}"/>'
        for name, _ in added)
    replaced["[Content_Types].xml"] = types.replace("</Types>", overrides + "</Types>").encode("utf-8")
    return assemble_zip(base_members, replaced, added)


# -- many letters into one ZIP on disk ------------------------------------------------------------
def write_letters_zip(target: str | Path | IO[bytes], named_documents: Iterable[tuple[str, bytes]]) -> int:
    """Stream (file name, docx bytes) pairs into a ZIP on disk; returns how many were written.

    DOCX files are ZIPs already, so they are stored, not compressed again: memory stays flat
    (only the central directory grows) and writing costs little more than the disk write.
    """
    count = 0
    used: set[str] = set()
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, document in named_documents:
            archive.writestr(unique_name(name, used), document)
            count += 1
    return count


def unique_name(name: str, used: set[str]) -> str:
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    candidate, n = name, 2
    while candidate.lower() in used:
        candidate = f"{stem} ({n}){'.' + ext if ext else ''}"
        n += 1
    used.add(candidate.lower())
    return candidate


def document_text(docx: bytes) -> str:
    """Plain text of a DOCX's body, frames, headers and footers — for previews (mail-merge style)."""
    archive = zipfile.ZipFile(io.BytesIO(docx))
    ns = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
    names = sorted(n for n in archive.namelist() if re.match(r"word/header\d*\.xml$", n))
    names += ["word/document.xml"]
    names += sorted(n for n in archive.namelist() if re.match(r"word/footer\d*\.xml$", n))
    lines: list[str] = []
    for name in names:
        root = etree.fromstring(archive.read(name))
        for paragraph in root.iter(f"{ns}p"):
            parts = []
            for el in paragraph.iter(f"{ns}t", f"{ns}tab", f"{ns}br", f"{ns}instrText", f"{ns}fldSimple"):
                if el.tag == f"{ns}t":
                    parts.append(el.text or "")
                elif el.tag == f"{ns}tab":
                    parts.append("\t")
                elif el.tag == f"{ns}br":
                    parts.append("\n")
            lines.append("".join(parts))
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()

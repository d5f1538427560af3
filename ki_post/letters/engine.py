"""The DOCX engine: compile a docxtpl/Jinja template once, render many letters fast.

Pure: bytes in, bytes out, no database, no Flask. A template is compiled once — docxtpl's own XML
clean-up (``DocxTemplate.patch_xml``) on every part that contains tags, then one sandboxed Jinja
template per such part. Per letter only those parts are rendered; every other ZIP member is copied
with its already-compressed bytes, CRC and sizes unchanged (no inflate/deflate). That is what makes
it ~20–50× faster than docxtpl's load-render-save per letter.
"""
from __future__ import annotations

import io
import re
import struct
import traceback
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from docxtpl import DocxTemplate
from jinja2 import ChainableUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from lxml import etree

from ..errors import ValidationError

DOCX_MIMETYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
# Parts docxtpl renders: body, headers, footers, footnotes, core properties (title etc.).
_RENDERABLE = re.compile(r"^(word/(document|header\d*|footer\d*|footnotes|endnotes)\.xml|docProps/core\.xml)$")
MAX_UNPACKED_BYTES = 200 * 1024 * 1024  # a "ZIP bomb" must not reach the XML parser
_HAS_TAG = re.compile(r"\{(?:<[^>]*>)*[{%#]")
_PART_LABELS = {"word/document.xml": "Haupttext", "docProps/core.xml": "Dokumenteigenschaften"}
# docxtpl's instance methods patch_xml/resolve_listing need no document state; one bare instance serves all.
_DOCXTPL = DocxTemplate.__new__(DocxTemplate)


def part_label(name: str) -> str:
    if name in _PART_LABELS:
        return _PART_LABELS[name]
    match = re.match(r"word/(header|footer|footnotes|endnotes)(\d*)\.xml", name)
    if match:
        kind = {"header": "Kopfzeile", "footer": "Fußzeile", "footnotes": "Fußnoten", "endnotes": "Endnoten"}[match[1]]
        return f"{kind} {match[2]}".strip()
    return name


class _LenientUndefined(ChainableUndefined):
    """A missing placeholder renders empty (the upload check warns about unknown names beforehand)."""


def make_environment() -> SandboxedEnvironment:
    # autoescape=True escapes & < > " ' as XML-safe entities: data can never break the document XML,
    # and data is only ever inserted, never parsed as a template.
    env = SandboxedEnvironment(autoescape=True, undefined=_LenientUndefined, keep_trailing_newline=True)
    return env


@dataclass(frozen=True)
class _Member:
    info: zipfile.ZipInfo
    raw: bytes  # compressed bytes exactly as stored in the template


@dataclass
class CompiledTemplate:
    """A template ready to render: ordered members, of which some have a compiled Jinja template."""

    members: list[_Member]
    templates: dict[str, Any]  # member name -> jinja2.Template
    variables: set[str] = field(default_factory=set)
    # Per part, the last raw render and its finished member: headers, footers and properties often
    # render the same for every recipient, so their post-processing and deflate run once.
    _last: dict[str, tuple[str, _Packed]] = field(default_factory=dict, repr=False)

    # -- rendering ---------------------------------------------------------------------------------
    def render(self, context: Mapping[str, Any]) -> bytes:
        """One personalised DOCX as bytes."""
        packed: dict[str, _Packed] = {}
        for name, template in self.templates.items():
            raw = self._render_raw(name, template, context)
            last = self._last.get(name)
            if last is not None and last[0] == raw:
                packed[name] = last[1]
                continue
            item = _pack(_postprocess(raw).encode("utf-8"))
            self._last[name] = (raw, item)
            packed[name] = item
        return assemble_zip(self.members, {}, packed=packed)

    @staticmethod
    def _render_raw(name: str, template: Any, context: Mapping[str, Any], *, sample: bool = False) -> str:
        """One part filled in; every failure becomes a German ValidationError (never a 500)."""
        try:
            return template.render(context)
        except SecurityError as exc:
            raise ValidationError(f"Die Vorlage versucht einen unerlaubten Zugriff ({exc}).") from None
        except TemplateError as exc:
            raise ValidationError(f"Fehler beim Ausfüllen der Vorlage ({part_label(name)}): {exc}") from None
        except Exception as exc:  # noqa: BLE001 - the template's own expressions: {{ 1/0 }}, {{ 1 + 'a' }}, range(10**9)
            raise _runtime_error(name, exc, sample=sample) from None

    def render_parts(self, context: Mapping[str, Any]) -> dict[str, bytes]:
        """Every tagged part filled in once (the upload check with example data); failures are German."""
        return {name: _postprocess(self._render_raw(name, template, context, sample=True)).encode("utf-8")
                for name, template in self.templates.items()}

    def render_many(self, contexts: Iterable[Mapping[str, Any]]) -> Iterator[bytes]:
        for context in contexts:
            yield self.render(context)


def _postprocess(xml: str) -> str:
    # Undo the line breaks added before compiling (they give Jinja errors a paragraph number).
    xml = xml.replace("\n<w:p>", "<w:p>").replace("\n<w:p ", "<w:p ")
    xml = xml.replace("{_{", "{{").replace("}_}", "}}").replace("{_%", "{%").replace("%_}", "%}")
    # docxtpl turns \n, \t, \a, \f from data into breaks/tabs/paragraphs; its regex pass is costly,
    # so only run it when the rendered text actually contains such a character.
    if "\t" in xml or "\a" in xml or "\f" in xml or "\n" in xml:
        xml = _DOCXTPL.resolve_listing(xml)
    return xml


# -- compiling and validation ----------------------------------------------------------------------
def _open_zip(data: bytes) -> zipfile.ZipFile:
    if not data:
        raise ValidationError("Die Datei ist leer.", field="file")
    if not data.startswith(b"PK"):
        raise ValidationError(
            "Die Datei ist kein Word-Dokument im DOCX-Format. Bitte in Word oder LibreOffice "
            "„Speichern unter … Word-Dokument (.docx)“ wählen.", field="file")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        if sum(info.file_size for info in archive.infolist()) > MAX_UNPACKED_BYTES:
            raise ValidationError("Die DOCX-Datei ist entpackt zu groß (mehr als 200 MB).", field="file")
        bad = archive.testzip()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, zlib.error) as exc:
        raise ValidationError(f"Die DOCX-Datei ist beschädigt: das ZIP-Archiv lässt sich nicht lesen ({exc}).", field="file") from None
    if bad is not None:
        raise ValidationError(f"Die DOCX-Datei ist beschädigt: der Teil „{bad}“ ist fehlerhaft.", field="file")
    names = set(archive.namelist())
    if "word/document.xml" not in names or "[Content_Types].xml" not in names:
        raise ValidationError(
            "Die Datei ist ein ZIP-Archiv, aber kein Word-Dokument (word/document.xml fehlt).", field="file")
    return archive


def _raw_members(data: bytes, archive: zipfile.ZipFile) -> list[_Member]:
    members = []
    for info in archive.infolist():
        # Local header: 30 fixed bytes, then name and extra field of the *local* header's lengths.
        start = info.header_offset
        name_len, extra_len = struct.unpack("<HH", data[start + 26:start + 30])
        begin = start + 30 + name_len + extra_len
        members.append(_Member(info, data[begin:begin + info.compress_size]))
    return members


def _paragraph_text(line: str) -> str:
    text = re.sub(r"<[^>]+>", "", line)
    return re.sub(r"\s+", " ", text).strip()


def _syntax_error(name: str, source: str, exc: TemplateSyntaxError) -> ValidationError:
    lines = source.split("\n")
    lineno = exc.lineno or 1
    paragraph = _paragraph_text(lines[lineno - 1]) if 0 < lineno <= len(lines) else ""
    tags = re.findall(r"\{[{%#].*?(?:[}%#]\}|$)", paragraph)
    tag = tags[-1] if tags else paragraph
    where = f"{part_label(name)}, Absatz {max(lineno - 1, 1)}"
    short = paragraph if len(paragraph) <= 160 else paragraph[:157] + "…"
    return ValidationError(
        f"Fehler in einem Platzhalter: „{tag}“ ({where}, im Text „{short}“). "
        f"Bitte Klammern und Schreibweise prüfen – {{{{ … }}}} für Werte, {{% … %}} für Bedingungen. "
        f"(Technische Meldung: {exc.message})",
        field="file",
    )


_RUNTIME_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (ZeroDivisionError, "Division durch null"),
    (OverflowError, "eine Zahl oder ein Bereich ist zu groß"),
    (TypeError, "Werte passen nicht zusammen, z. B. Zahl und Text"),
    (MemoryError, "zu viel Speicher nötig"),
)


def _runtime_error(name: str, exc: Exception, *, sample: bool) -> ValidationError:
    # Jinja rewrites tracebacks so that template frames carry the template line; the compiled source
    # starts every paragraph on its own line, hence line - 1 = paragraph (as in _syntax_error).
    lines = [frame.lineno for frame in traceback.extract_tb(exc.__traceback__) if frame.filename == "<template>"]
    where = part_label(name) + (f", Absatz {max(lines[-1] - 1, 1)}" if lines else "")
    reason = next((text for kind, text in _RUNTIME_REASONS if isinstance(exc, kind)), "ein Platzhalter löst einen Fehler aus")
    what = "mit Beispieldaten füllen" if sample else "mit diesen Angaben füllen"
    return ValidationError(
        f"Die Vorlage lässt sich nicht {what}: {reason} ({where}). "
        f"Bitte die Platzhalter dort prüfen. (Technische Meldung: {type(exc).__name__}: {exc})",
        field="file" if sample else None,
    )


def _referenced_names(ast: nodes.Template) -> set[str]:
    return set(meta.find_undeclared_variables(ast))


def compile_template(data: bytes, env: SandboxedEnvironment | None = None) -> CompiledTemplate:
    """Check and compile a DOCX template; raises ``ValidationError`` with a German message."""
    env = env or make_environment()
    archive = _open_zip(data)
    members = _raw_members(data, archive)
    templates: dict[str, Any] = {}
    variables: set[str] = set()
    for member in members:
        name = member.info.filename
        if not _RENDERABLE.match(name):
            continue
        xml = archive.read(name).decode("utf-8")
        if not _HAS_TAG.search(xml):
            continue
        # The declaration's line break would make every letter look like it has data line breaks.
        xml = re.sub(r"^(<\?xml[^>]*\?>)\s+", r"\1", xml)
        source = _DOCXTPL.patch_xml(xml)
        source = re.sub(r"<w:p([ >])", r"\n<w:p\1", source)
        try:
            ast = env.parse(source)
            templates[name] = env.from_string(ast)
        except TemplateSyntaxError as exc:
            raise _syntax_error(name, source, exc) from None
        variables |= _referenced_names(ast)
    return CompiledTemplate(members=members, templates=templates, variables=variables)


def check_rendered(parts: Mapping[str, bytes]) -> None:
    """The rendered XML must be well-formed (e.g. a tag that cuts a table apart gives broken XML)."""
    for name, xml in parts.items():
        try:
            etree.fromstring(xml)
        except etree.XMLSyntaxError as exc:
            raise ValidationError(
                f"Die Vorlage ergibt beim Ausfüllen kein gültiges Word-Dokument ({part_label(name)}: {exc}). "
                "Meist steht ein {%p …%}- oder {%tr …%}-Platzhalter nicht in einem eigenen Absatz bzw. einer eigenen Tabellenzeile.",
                field="file",
            ) from None


@dataclass
class TemplateReport:
    compiled: CompiledTemplate
    unknown: list[str]
    warnings: list[str]


def validate_template(data: bytes, known: Iterable[str], sample_context: Mapping[str, Any]) -> TemplateReport:
    """Compile, render once with example data, and list placeholders KI-Post does not know."""
    compiled = compile_template(data)
    check_rendered(compiled.render_parts(sample_context))
    unknown = sorted(compiled.variables - set(known))
    warnings = []
    if unknown:
        warnings.append(
            "Unbekannte Platzhalter (bleiben im Brief leer, bitte Schreibweise prüfen): " + ", ".join(unknown))
    if not compiled.templates:
        warnings.append("Die Vorlage enthält keine Platzhalter: alle Briefe werden gleich.")
    return TemplateReport(compiled, unknown, warnings)


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
class _Packed:
    raw: bytes
    crc: int
    size: int


def _pack(data: bytes) -> _Packed:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return _Packed(compressor.compress(data) + compressor.flush(), zlib.crc32(data), len(data))


def assemble_zip(members: list[_Member], replaced: Mapping[str, bytes], added: Iterable[tuple[str, bytes]] = (),
                 packed: Mapping[str, _Packed] | None = None) -> bytes:
    chunks: list[bytes] = []
    central: list[bytes] = []
    offset = 0
    added = list(added)
    new_members = [_Member(zipfile.ZipInfo(name), b"") for name, _ in added]
    ready = dict(packed or {})
    ready.update({name: _pack(data) for name, data in {**replaced, **dict(added)}.items()})
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
            method, crc, csize, usize, dostime = zipfile.ZIP_DEFLATED, new.crc, len(raw), new.size, _DOS_DATE_TIME
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
    base_members: list[_Member] = []
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
            base_members = _raw_members(docx, archive)
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

"""The DOCX engine: compile a docxtpl/Jinja template once, render many letters fast.

Pure: bytes in, bytes out, no database, no Flask. A template is compiled once — its tags made
whole and plain (``wordml``: split runs, LibreOffice's entities, Word's typographic quotes), then
docxtpl's own XML clean-up (``DocxTemplate.patch_xml``) on every part that contains tags, then one
bounded, sandboxed Jinja template per such part (``sandbox``). Per letter only those parts are
rendered; every other ZIP member is copied with its already-compressed bytes, CRC and sizes
unchanged (no inflate/deflate). That is what makes it ~20–50× faster than docxtpl's
load-render-save per letter. Errors are German and point to the placeholder as the user wrote it
(``diagnostics``).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from docxtpl import DocxTemplate
from jinja2 import ChainableUndefined, TemplateSyntaxError, nodes
from lxml import etree

from ..errors import ValidationError
from . import diagnostics, docprops, sandbox, schema, wordml
from .docx_package import (  # noqa: F401 - the engine's public API, re-exported
    DOCX_MIMETYPE, MAX_MEMBERS, MAX_PART_BYTES, MAX_UNPACKED_BYTES, RENDERABLE, Member, Packed, assemble_zip, check_directory,
    document_text, header_footer_labels, merge_letters, open_docx, pack, part_label, raw_members, read_member, pack_stored,
    unique_name, write_letters_zip,
)

_HAS_TAG = re.compile(r"\{(?:<[^>]*>)*[{%#]")
_OBJECT_TAG = re.compile(r"\{\{(?:p|r|tr|tc)\s")
# docxtpl's instance methods patch_xml/resolve_listing need no document state; one bare instance serves all.
_DOCXTPL = DocxTemplate.__new__(DocxTemplate)


class _LenientUndefined(ChainableUndefined):
    """A missing placeholder renders empty (upload and run checks warn about unknown names beforehand)."""


def make_environment() -> sandbox.LetterEnvironment:
    # autoescape=True escapes & < > " ' as XML-safe entities: data can never break the document XML,
    # and data is only ever inserted, never parsed as a template.
    return sandbox.LetterEnvironment(autoescape=True, undefined=_LenientUndefined, keep_trailing_newline=True)


@dataclass
class _Part:
    name: str
    label: str  # as Word calls it: Haupttext, Kopfzeile (erste Seite) …
    template: Any  # jinja2.Template
    source: str  # what Jinja compiled (for locating runtime errors)
    xml: bytes  # the part as stored (for error messages in the user's terms)

    @property
    def pages(self) -> bool:
        return self.name == "word/document.xml"


_CORE = "docProps/core.xml"
_STYLES = "word/styles.xml"


@dataclass(frozen=True)
class DocumentProperties:
    """What the PDF/A of a letter names: its title and author (the sending authority)."""

    title: str
    author: str


@dataclass
class CompiledTemplate:
    """A template ready to render: ordered members, of which some have a compiled Jinja template."""

    members: list[Member]
    parts: dict[str, _Part]
    env: sandbox.LetterEnvironment
    references: schema.References = field(default_factory=schema.References)
    # Parts changed once at compile time (styles.xml with the default language de-DE), and the core
    # properties as stored when they hold no tag (they get title and author per letter).
    fixed: dict[str, Packed] = field(default_factory=dict)
    core_xml: bytes | None = None
    # Per part, the last raw render and its finished member: headers, footers and properties often
    # render the same for every recipient, so their post-processing and deflate run once.
    _last: dict[str, tuple[str, Packed]] = field(default_factory=dict, repr=False)

    @property
    def templates(self) -> dict[str, Any]:
        return {name: part.template for name, part in self.parts.items()}

    # -- rendering ---------------------------------------------------------------------------------
    def render(self, context: Mapping[str, Any], properties: DocumentProperties | None = None) -> bytes:
        """One personalised DOCX as bytes; a failure is a German ``ValidationError``.

        With ``properties`` the letter's core properties get that title and author, so that its PDF/A
        names them."""
        packed: dict[str, Packed] = dict(self.fixed)
        with sandbox.budget():
            raws = {name: self._render_raw(part, context) for name, part in self.parts.items()}
        if properties is not None and (_CORE in raws or self.core_xml is not None):
            raws[_CORE] = raws.get(_CORE, self.core_xml.decode("utf-8") if self.core_xml is not None else "")
        for name, raw in raws.items():
            key = raw if name != _CORE or properties is None else f"{raw}\0{properties.title}\0{properties.author}"
            last = self._last.get(name)
            if last is not None and last[0] == key:
                packed[name] = last[1]
                continue
            xml = _postprocess(raw).encode("utf-8") if name in self.parts else raw.encode("utf-8")
            if name == _CORE and properties is not None:
                xml = docprops.core_properties(xml, title=properties.title, author=properties.author)
            item = pack_stored(xml) if name == _CORE and properties is not None else pack(xml)
            self._last[name] = (key, item)
            packed[name] = item
        return assemble_zip(self.members, {}, packed=packed)

    def _render_raw(self, part: _Part, context: Mapping[str, Any], *, sample: bool = False) -> str:
        """One part filled in; every failure becomes a German ValidationError (never a 500)."""
        try:
            return part.template.render(context)
        except ValidationError:
            raise
        except Exception as exc:  # noqa: BLE001 - the template's own expressions: {{ 1/0 }}, limits, docxtpl objects …
            raise diagnostics.runtime_error(part.xml, part.label, part.source, exc, context, self.env,
                                            sample=sample, pages=part.pages) from None

    def render_parts(self, context: Mapping[str, Any], seconds: float = sandbox.RENDER_SECONDS) -> dict[str, bytes]:
        """Every tagged part filled in once (the upload check with example data); failures are German."""
        with sandbox.budget(seconds):
            return {name: _postprocess(self._render_raw(part, context, sample=True)).encode("utf-8")
                    for name, part in self.parts.items()}

    def label(self, name: str) -> str:
        part = self.parts.get(name)
        return part.label if part is not None else part_label(name)


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
def _compile_part(env: sandbox.LetterEnvironment, name: str, label: str, raw: bytes) -> tuple[_Part, schema.References]:
    try:
        xml = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"Die DOCX-Datei ist beschädigt: „{label}“ ist kein gültiger Text (UTF-8).", field="file") from None
    # The declaration's line break would make every letter look like it has data line breaks.
    xml = re.sub(r"^(<\?xml[^>]*\?>)\s+", r"\1", xml)
    merged = wordml.merge_tag_runs(xml)
    if _OBJECT_TAG.search(merged):
        error = diagnostics.find_unsupported_tags(raw, label, pages=name == "word/document.xml")
        if error is not None:
            raise error
    source = _DOCXTPL.patch_xml(wordml.normalise_tags(merged))
    source = re.sub(r"<w:p([ >])", r"\n<w:p\1", source)
    try:
        ast = env.parse(source)
        if any(ast.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends, nodes.Block))):
            # Valid Jinja, but a letter has no other templates to include: refuse it here, not per letter.
            raise diagnostics.first_tag_error(env, raw, label, pages=name == "word/document.xml")
        references = schema.references(ast)
        template = env.from_string(env.guard(ast))
    except TemplateSyntaxError as exc:
        raise diagnostics.syntax_error(env, raw, label, exc, source, pages=name == "word/document.xml") from None
    except (RecursionError, MemoryError, ValueError) as exc:
        # Thousands of nested brackets, a number with more digits than Python reads …
        raise ValidationError(f"Die Vorlage lässt sich nicht übersetzen ({label}): ein Platzhalter ist zu "
                              f"verschachtelt oder zu lang. (Technische Meldung: {type(exc).__name__})", field="file") from None
    return _Part(name, label, template, source, raw), references


def compile_template(data: bytes, env: sandbox.LetterEnvironment | None = None) -> CompiledTemplate:
    """Check and compile a DOCX template; raises ``ValidationError`` with a German message."""
    env = env or make_environment()
    archive = open_docx(data)
    members = raw_members(data, archive)
    labels = header_footer_labels(archive)
    parts: dict[str, _Part] = {}
    references = schema.References()
    for member in members:
        name = member.info.filename
        if not RENDERABLE.match(name):
            continue
        raw = read_member(archive, name)
        if not _HAS_TAG.search(raw.decode("utf-8", "replace")):
            continue
        part, part_references = _compile_part(env, name, part_label(name, labels), raw)
        parts[name] = part
        references.merge(part_references)
    fixed: dict[str, Packed] = {}
    names = {member.info.filename for member in members}
    if _STYLES in names:
        styles = read_member(archive, _STYLES)
        patched = docprops.default_language(styles)
        if patched != styles:
            fixed[_STYLES] = pack(patched)
    core_xml = read_member(archive, _CORE) if _CORE in names and _CORE not in parts else None
    return CompiledTemplate(members=members, parts=parts, env=env, references=references, fixed=fixed, core_xml=core_xml)


def check_rendered(parts: Mapping[str, bytes], compiled: CompiledTemplate | None = None) -> None:
    """The rendered XML must be well-formed (e.g. a tag that cuts a table apart gives broken XML)."""
    for name, xml in parts.items():
        try:
            etree.fromstring(xml)
        except etree.XMLSyntaxError as exc:
            label = compiled.label(name) if compiled is not None else part_label(name)
            raise ValidationError(
                f"Die Vorlage ergibt beim Ausfüllen kein gültiges Word-Dokument ({label}: {exc}). "
                "Meist steht ein {%p …%}- oder {%tr …%}-Platzhalter nicht in einem eigenen Absatz bzw. einer eigenen Tabellenzeile.",
                field="file",
            ) from None


@dataclass
class TemplateReport:
    compiled: CompiledTemplate
    unknown: list[schema.Unknown]
    warnings: list[str]

    @property
    def fields(self) -> list[str]:
        return sorted(self.compiled.references.all_fields)


def validate_template(data: bytes, sample_context: Mapping[str, Any] | None = None,
                      seconds: float = sandbox.RENDER_SECONDS) -> TemplateReport:
    """Compile, render once with example data, and list placeholders KI-Post does not know."""
    compiled = compile_template(data)
    check_rendered(compiled.render_parts(sample_context if sample_context is not None else schema.sample_context(), seconds),
                   compiled)
    unknown = schema.unknown_placeholders(compiled.references)
    return TemplateReport(compiled, unknown, schema.upload_warnings(compiled.references, bool(compiled.parts)))

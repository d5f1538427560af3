"""Word and LibreOffice documents as they really are, made ready for Jinja — and a map back to them.

Before Jinja sees a part, every tag (``{{ … }}``, ``{% … %}``) is made whole and plain:

- runs: Word splits a tag wherever formatting, spell-checking or editing history changes
  (``{</w:t></w:r><w:r><w:t>{ name }}``); the markup in between is dropped, as docxtpl does;
- entities: LibreOffice writes ``"`` and ``'`` as ``&quot;``/``&apos;`` (and ``<`` as ``&lt;``);
- typographic quotes: Word's AutoCorrect turns ``"Kreis"`` into ``„Kreis“`` as you type
  (``„“ ‚‘ “” ‘’ «» ‹›``); a string opened with one of them becomes a plain ``"…"``/``'…'``
  string, while such characters *inside* a plain string stay text (written as ``\\u201e``);
- invisible characters (soft hyphen, zero-width space) vanish, special spaces become spaces.

For error messages the module also reads a part as a user sees it: paragraphs in reading order
(every paragraph counts, empty ones and table cells too, like the ¶ marks Word shows), with table
position, text box and — when Word saved its page layout — the page.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from lxml import etree

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"

# Opening quote -> family; any quote of the family (or its ASCII quote) closes the string.
_DOUBLE = "„“”«»‟″"
_SINGLE = "‚‘’‹›‛′"
_TYPOGRAPHIC = _DOUBLE + _SINGLE
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"), None)
_SPACES = dict.fromkeys(map(ord, "\u00a0\u2002\u2003\u2007\u2009\u202f\u3000"), " ")
_ENTITY = re.compile(r"&(#x[0-9a-fA-F]+|#[0-9]+|quot|apos|amp|lt|gt);")
_NAMED = {"quot": '"', "apos": "'", "amp": "&", "lt": "<", "gt": ">"}
# A whole tag inside one text run (after merging); tags still holding markup are left alone.
TAG = re.compile(r"\{\{(?P<expr>[^<]*?)\}\}|\{%(?P<stmt>[^<]*?)%\}|\{#(?P<comment>[^<]*?)#\}")


# -- making tags whole -------------------------------------------------------------------------------
def _strip_markup(match: re.Match) -> str:
    return re.sub(r"</w:t>.*?(?:<w:t>|<w:t [^>]*>)", "", match.group(0), flags=re.DOTALL)


def merge_tag_runs(xml: str) -> str:
    """docxtpl's first two clean-up steps: ``{<markup>{`` → ``{{`` and no run boundaries inside a tag."""
    xml = re.sub(r"(?<={)(<[^>]*>)+(?=[\{%\#])|(?<=[%\}\#])(<[^>]*>)+(?=\})", "", xml, flags=re.DOTALL)
    return re.sub(r"{%(?:(?!%}).)*|{#(?:(?!#}).)*|{{(?:(?!}}).)*", _strip_markup, xml, flags=re.DOTALL)


def decode_entities(text: str) -> str:
    def one(match: re.Match) -> str:
        name = match.group(1)
        if name.startswith("#x"):
            return chr(int(name[2:], 16))
        if name.startswith("#"):
            return chr(int(name[1:]))
        return _NAMED[name]

    return _ENTITY.sub(one, text)


def _escape_in_string(char: str, delimiter: str) -> str:
    if char in _TYPOGRAPHIC:
        return f"\\u{ord(char):04x}"
    if char == delimiter:
        return "\\" + char
    return char


def normalise_tag_text(text: str) -> str:
    """The inside of one tag, entity-decoded: typographic quotes as strings, odd spaces as spaces."""
    text = text.translate(_INVISIBLE)
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char in "\"'":
            # A plain string: copied as written; typographic quotes in it stay text (as escapes).
            out.append(char)
            i += 1
            while i < n and text[i] != char:
                if text[i] == "\\" and i + 1 < n:
                    out.append(text[i:i + 2])
                    i += 2
                    continue
                out.append(_escape_in_string(text[i], char))
                i += 1
            if i < n:
                out.append(char)
                i += 1
        elif char in _TYPOGRAPHIC:
            family, ascii_quote = (_DOUBLE, '"') if char in _DOUBLE else (_SINGLE, "'")
            out.append(ascii_quote)
            i += 1
            while i < n and text[i] not in family and text[i] != ascii_quote:
                if text[i] == "\\" and i + 1 < n:
                    out.append(text[i:i + 2])
                    i += 2
                    continue
                out.append(_escape_in_string(text[i], ascii_quote))
                i += 1
            if i < n:
                out.append(ascii_quote)
                i += 1
        else:
            out.append(char.translate(_SPACES))
            i += 1
    return "".join(out)


def _xml_safe(text: str) -> str:
    # Back into XML text, so the part stays well-formed for docxtpl's clean-up; Jinja never sees
    # these entities because docxtpl turns &lt;/&gt; back inside tags and & is left decoded.
    return text.replace("<", "&lt;").replace(">", "&gt;")


def normalise_tags(xml: str) -> str:
    """Every whole tag of a part, decoded and normalised (comments are left as they are)."""
    def one(match: re.Match) -> str:
        if match.group("comment") is not None:
            return match.group(0)
        opening, closing = match.group(0)[:2], match.group(0)[-2:]
        inner = match.group("expr") if match.group("expr") is not None else match.group("stmt")
        return opening + _xml_safe(normalise_tag_text(decode_entities(inner))) + closing

    return TAG.sub(one, xml)


_DOCXTPL_PREFIX = re.compile(r"^(p|tr|tc|r)\s")


def split_prefix(inner: str) -> tuple[str, str]:
    """``{%p if x %}`` → ("p", " if x "): docxtpl's paragraph/row/cell/run marker and the rest."""
    match = _DOCXTPL_PREFIX.match(inner)
    return (match.group(1), inner[1 if match.group(1) in ("p", "r") else 2:]) if match else ("", inner)


def canonical(tag: str) -> str:
    """A tag reduced to what Jinja compiles: no docxtpl marker, no whitespace control, single spaces."""
    inner = tag[2:-2]
    _prefix, inner = split_prefix(inner)
    inner = inner.strip().strip("-+").strip()
    return tag[:2] + " ".join(inner.split()) + tag[-2:]


# -- reading a part as the user sees it -------------------------------------------------------------
@dataclass
class Paragraph:
    number: int  # in reading order: the body's paragraphs, or those of one text box
    text: str
    table: tuple[int, int, int] | None = None  # table, row, column (1-based)
    textbox_anchor: int | None = None  # the body paragraph a text box hangs on
    page: int | None = None

    def where(self, part: str) -> str:
        page = f"Seite {self.page}, " if self.page else ""
        if self.textbox_anchor is not None:
            return f"{part}, {page}Textfeld bei Absatz {self.textbox_anchor}, dort Absatz {self.number}"
        table = f" (Tabelle {self.table[0]}, Zeile {self.table[1]}, Spalte {self.table[2]})" if self.table else ""
        return f"{part}, {page}Absatz {self.number}{table}"


def _in_fallback(element: etree._Element) -> bool:
    return any(parent.tag == MC_FALLBACK for parent in element.iterancestors())


def read_paragraphs(xml: bytes | str, *, pages: bool = False) -> list[Paragraph]:
    """Paragraphs of a part in reading order (a text box's copy in ``mc:Fallback`` is skipped)."""
    try:
        root = etree.fromstring(xml.encode("utf-8") if isinstance(xml, str) else xml)
    except etree.XMLSyntaxError:
        return []
    rendered = pages and root.find(f".//{W}lastRenderedPageBreak") is not None
    page = 1
    body_number = 0
    # Keyed by the elements themselves: that keeps lxml's proxies (and so their identity) alive.
    box_numbers: dict[etree._Element, int] = {}
    tables: dict[etree._Element, int] = {}
    by_element: dict[etree._Element, Paragraph] = {}
    result: list[Paragraph] = []
    for element in root.iter(f"{W}p"):
        if _in_fallback(element):
            continue
        box = next(element.iterancestors(f"{W}txbxContent"), None)
        anchor = None
        if box is not None:
            outer = next(box.iterancestors(f"{W}p"), None)
            host = by_element.get(outer) if outer is not None else None
            anchor = 0 if host is None else host.number if host.textbox_anchor is None else host.textbox_anchor
            box_numbers[box] = box_numbers.get(box, 0) + 1
            number = box_numbers[box]
        else:
            body_number += 1
            number = body_number
        if rendered and element.find(f"{W}pPr/{W}pageBreakBefore") is not None:
            page += 1
        texts: list[str] = []
        start_page = None
        for node in element.iter(f"{W}t", f"{W}tab", f"{W}br", f"{W}lastRenderedPageBreak"):
            if next(node.iterancestors(f"{W}p"), None) is not element or _in_fallback(node):
                continue
            if node.tag == f"{W}lastRenderedPageBreak" or (node.tag == f"{W}br" and node.get(f"{W}type") == "page"):
                page += 1
                if node.tag == f"{W}br":
                    texts.append(" ")
                continue
            if start_page is None:
                start_page = page
            texts.append({f"{W}t": node.text or "", f"{W}tab": "\t"}.get(node.tag, " "))
        table = None
        cell = next(element.iterancestors(f"{W}tc"), None)
        if cell is not None and box is None:
            row = cell.getparent()
            grid = row.getparent()
            tables.setdefault(grid, len(tables) + 1)
            rows = [r for r in grid if r.tag == f"{W}tr"]
            cells = [c for c in row if c.tag == f"{W}tc"]
            table = (tables[grid], rows.index(row) + 1, cells.index(cell) + 1)
        paragraph = Paragraph(number, "".join(texts), table, anchor, (start_page or page) if rendered else None)
        by_element[element] = paragraph
        result.append(paragraph)
        # A paragraph that ends a section starts the next page (unless the section is continuous).
        section = element.find(f"{W}pPr/{W}sectPr")
        if rendered and section is not None:
            kind = section.find(f"{W}type")
            if kind is None or kind.get(f"{W}val") != "continuous":
                page += 1
    return result


@dataclass
class TagHit:
    paragraph: Paragraph
    start: int
    end: int
    text: str  # as written (entities decoded by the XML parser)
    closed: bool = True

    @property
    def kind(self) -> str:
        return self.text[:2]


_OPENERS = re.compile(r"\{\{|\{%|\{#")
_CLOSERS = {"{{": "}}", "{%": "%}", "{#": "#}"}


def find_tags(paragraphs: list[Paragraph]) -> Iterator[TagHit]:
    """Every tag of every paragraph, in order; an opener without its closer runs to the paragraph's end."""
    for paragraph in paragraphs:
        text = paragraph.text
        position = 0
        while True:
            match = _OPENERS.search(text, position)
            if match is None:
                break
            closer = _CLOSERS[match.group(0)]
            end = text.find(closer, match.end())
            if end < 0:
                yield TagHit(paragraph, match.start(), len(text), text[match.start():], closed=False)
                break
            yield TagHit(paragraph, match.start(), end + 2, text[match.start():end + 2])
            position = end + 2


def surroundings(hit: TagHit, width: int = 50) -> str:
    """The paragraph's text around a tag, shortened with … so it can be found with Ctrl+F."""
    text = hit.paragraph.text
    start, end = max(hit.start - width, 0), min(hit.end + width, len(text))
    return ("…" if start else "") + text[start:end].strip() + ("…" if end < len(text) else "")

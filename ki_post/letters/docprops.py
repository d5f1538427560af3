"""Title, author and language of a DOCX, so that its PDF/A names them (files for the e-Akte).

LibreOffice takes the PDF's Title and Author (DocInfo and XMP dc:title/dc:creator) from the core
properties (docProps/core.xml) and the document language (/Lang) from the default run language of the
styles (w:docDefaults), not from dc:language. So both parts are set. Pure: bytes in, bytes out.
"""
from __future__ import annotations

import re
from xml.sax.saxutils import escape

LANGUAGE = "de-DE"
_DOC_DEFAULTS = re.compile(rb"<w:docDefaults\s*/>|<w:docDefaults>.*?</w:docDefaults>", re.S)
_RPR_DEFAULT = re.compile(rb"<w:rPrDefault\s*/>|<w:rPrDefault>.*?</w:rPrDefault>", re.S)
_LANG = re.compile(rb"<w:lang\b[^>]*?/>")
_LANG_VAL = re.compile(rb'w:val="[^"]*"')


def default_language(styles_xml: bytes, language: str = LANGUAGE) -> bytes:
    """styles.xml with ``language`` as the default language of every run (other scripts' languages kept)."""
    lang = language.encode("ascii")
    found = _DOC_DEFAULTS.search(styles_xml)
    if found is None:  # no defaults at all: add them as the first child of w:styles
        opening = re.search(rb"<w:styles\b[^>]*>", styles_xml)
        if opening is None:
            return styles_xml
        block = b'<w:docDefaults><w:rPrDefault><w:rPr><w:lang w:val="' + lang + b'"/></w:rPr></w:rPrDefault></w:docDefaults>'
        return styles_xml[:opening.end()] + block + styles_xml[opening.end():]
    defaults = found.group(0)
    rpr_default = _RPR_DEFAULT.search(defaults)
    if rpr_default is None:
        new = defaults.replace(b"<w:docDefaults/>", b"<w:docDefaults></w:docDefaults>").replace(
            b"<w:docDefaults>", b'<w:docDefaults><w:rPrDefault><w:rPr><w:lang w:val="' + lang + b'"/></w:rPr></w:rPrDefault>', 1)
    else:
        block = rpr_default.group(0)
        lang_element = _LANG.search(block)
        if lang_element is not None:
            element = lang_element.group(0)
            if _LANG_VAL.search(element):
                element = _LANG_VAL.sub(b'w:val="' + lang + b'"', element, count=1)
            else:
                element = element.replace(b"<w:lang", b'<w:lang w:val="' + lang + b'"', 1)
            new_block = block[:lang_element.start()] + element + block[lang_element.end():]
        elif b"<w:rPr>" in block:
            # w:lang is the last but one of the run properties a default may hold; last is safe for LibreOffice and Word.
            new_block = block.replace(b"</w:rPr>", b'<w:lang w:val="' + lang + b'"/></w:rPr>', 1)
        else:
            new_block = b'<w:rPrDefault><w:rPr><w:lang w:val="' + lang + b'"/></w:rPr></w:rPrDefault>'
        new = defaults[:rpr_default.start()] + new_block + defaults[rpr_default.end():]
    return styles_xml[:found.start()] + new + styles_xml[found.end():]


_CORE_ELEMENTS = {tag: re.compile(rb"<" + tag + rb"(?:\s[^>]*)?(?:/>|>(.*?)</" + tag + rb">)", re.S)
                  for tag in (b"dc:title", b"dc:creator", b"dc:language")}


def _element(xml: bytes, tag: bytes) -> re.Match | None:
    return _CORE_ELEMENTS[tag].search(xml)


def _set(xml: bytes, tag: bytes, value: str, *, only_if_empty: bool) -> bytes:
    text = escape(value).encode("utf-8")
    found = _element(xml, tag)
    if found is None:
        closing = xml.rfind(b"</cp:coreProperties>")
        return xml if closing < 0 else xml[:closing] + b"<" + tag + b">" + text + b"</" + tag + b">" + xml[closing:]
    if only_if_empty and (found.group(1) or b"").strip():
        return xml
    return xml[:found.start()] + b"<" + tag + b">" + text + b"</" + tag + b">" + xml[found.end():]


def core_properties(core_xml: bytes, *, title: str = "", author: str = "", language: str = LANGUAGE) -> bytes:
    """docProps/core.xml with the title and author of the record (whatever the template said: a title
    left from the template's making, "Dokument1", or a person who made it are no record's metadata) and
    the language (where the template has none)."""
    if title:
        core_xml = _set(core_xml, b"dc:title", title, only_if_empty=False)
    if author:
        core_xml = _set(core_xml, b"dc:creator", author, only_if_empty=False)
    return _set(core_xml, b"dc:language", language, only_if_empty=True)


def apply_to_document(document, *, title: str, author: str) -> None:
    """The same for a document built with python-docx (sign-in sheet, participant list)."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    properties = document.core_properties
    properties.title, properties.author, properties.language, properties.comments = title, author, LANGUAGE, ""
    styles = document.styles.element
    defaults = styles.find(qn("w:docDefaults"))
    if defaults is None:
        defaults = OxmlElement("w:docDefaults")
        styles.insert(0, defaults)
    run_default = defaults.find(qn("w:rPrDefault"))
    if run_default is None:
        run_default = OxmlElement("w:rPrDefault")
        defaults.insert(0, run_default)
    run_properties = run_default.find(qn("w:rPr"))
    if run_properties is None:
        run_properties = OxmlElement("w:rPr")
        run_default.append(run_properties)
    lang = run_properties.find(qn("w:lang"))
    if lang is None:
        lang = OxmlElement("w:lang")
        run_properties.append(lang)
    lang.set(qn("w:val"), LANGUAGE)

"""Regenerate templates/letters/rundschreiben.docx: a DIN 5008 Form A circular with docxtpl tags.

    python scripts/build_letter_template.py [OUT]

Geometry from docs standards.md §1.1 (DIN-01…14): A4, left margin 25 mm, right 20 mm; address
field 85 × 45 mm at x 20 / y 27 mm as a frame anchored to the page (Rücksendeangabe in the first
5 mm, Anschriftzone from y 44.7 mm); information block at x 125 / y 32 mm, 75 mm wide; fold marks
at 87 and 192 mm and the hole mark at 148.5 mm on page 1; "Seite X von Y" right-aligned in the
footer of every page. Blank lines are modelled as paragraph spacing only (BODY-T1: never mixed).
"""
from __future__ import annotations

import io
import re
import sys
import zipfile
from pathlib import Path

from docx import Document
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
from docx.oxml import OxmlElement, parse_xml
from docx.oxml.ns import nsdecls, qn
from docx.shared import Mm, Pt, Twips

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "templates" / "letters" / "rundschreiben.docx"

# Twips (1 mm = 56.693 tw), values from standards.md §1.1.
PAGE_W, PAGE_H = 11906, 16838            # DIN-01
LEFT, RIGHT = 1417, 1134                 # DIN-02, DIN-03
TOP = 1531                               # DIN-04: letterhead ends at 27 mm
BOTTOM = 2098                            # 37 mm: room for the Geschäftsangaben in the footer
ADDRESS = dict(x=1134, y=1531, w=4819, h=2551)   # DIN-05
INFO = dict(x=7087, y=1814, w=4252)               # DIN-09
LINE = 253                               # one line of 11 pt Arial, single spacing
BETREFF_Y_MM = 88                        # ≥ 2 blank lines below the address field / info block (DIN-24)

FONT = "Arial"


def mm_pt(mm: float) -> str:
    return f"{mm * 72 / 25.4:.2f}pt"


def frame(paragraph, *, x: int, y: int, w: int, h: int | None = None) -> None:
    """w:framePr anchored to the page (DIN-T6): position independent of header height."""
    attrs = {
        "w:w": str(w), "w:hSpace": "0", "w:wrap": "around", "w:vAnchor": "page", "w:hAnchor": "page",
        "w:x": str(x), "w:y": str(y),
    }
    if h is not None:
        attrs.update({"w:h": str(h), "w:hRule": "exact"})
    element = OxmlElement("w:framePr")
    for key, value in attrs.items():
        element.set(qn(key), value)
    paragraph._p.get_or_add_pPr().insert(0, element)


def fmt(paragraph, *, size: float | None = None, after: int = 0, before: int = 0, exact: int | None = None,
        indent: int = 0, align=None, tab: int | None = None, keep_next: bool = False):
    pf = paragraph.paragraph_format
    pf.space_after = Twips(after)
    pf.space_before = Twips(before)
    if exact:
        pf.line_spacing_rule = WD_LINE_SPACING.EXACTLY
        pf.line_spacing = Twips(exact)
    if indent:
        pf.left_indent = Twips(indent)
    if align is not None:
        pf.alignment = align
    if tab:
        pf.tab_stops.add_tab_stop(Twips(tab))
    if keep_next:
        pf.keep_with_next = True
    if size:
        mark = paragraph._p.get_or_add_pPr()
        rpr = OxmlElement("w:rPr")
        sz = OxmlElement("w:sz")
        sz.set(qn("w:val"), str(int(size * 2)))
        rpr.append(sz)
        mark.append(rpr)
    return paragraph


def run(paragraph, text: str, *, size: float | None = None, bold: bool = False):
    r = paragraph.add_run(text)
    r.bold = bold or None
    if size:
        r.font.size = Pt(size)
    return r


def field(paragraph, instr: str, placeholder: str, size: float | None = None) -> None:
    """A complex field (PAGE, NUMPAGES) with a cached result, as Word writes it."""
    def piece(xml: str):
        r = paragraph.add_run()
        if size:
            r.font.size = Pt(size)
        r._r.append(parse_xml(xml))

    piece(f'<w:fldChar {nsdecls("w")} w:fldCharType="begin"/>')
    piece(f'<w:instrText {nsdecls("w")} xml:space="preserve"> {instr} \\* MERGEFORMAT </w:instrText>')
    piece(f'<w:fldChar {nsdecls("w")} w:fldCharType="separate"/>')
    r = paragraph.add_run(placeholder)
    if size:
        r.font.size = Pt(size)
    piece(f'<w:fldChar {nsdecls("w")} w:fldCharType="end"/>')


def page_line(container, size: float = 9) -> None:
    p = container.add_paragraph()
    fmt(p, align=WD_ALIGN_PARAGRAPH.RIGHT, size=size)
    run(p, "Seite ", size=size)
    field(p, "PAGE", "1", size)
    run(p, " von ", size=size)
    field(p, "NUMPAGES", "1", size)


def marks(paragraph) -> None:
    """Fold marks (87/192 mm) and hole mark (148.5 mm) as page-anchored hairlines (DIN-10…13)."""
    for name, y_mm, length in (("Falzmarke 1", 87, 2.5), ("Lochmarke", 148.5, 4), ("Falzmarke 2", 192, 2.5)):
        xml = (
            f'<w:r {nsdecls("w")}><w:pict xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office">'
            f'<v:line id="{name.replace(" ", "")}" o:spid="_x0000_s{int(y_mm * 10)}" alt="{name}" from="{mm_pt(5)},{mm_pt(y_mm)}" '
            f'to="{mm_pt(5 + length)},{mm_pt(y_mm)}" strokeweight="0.25pt" strokecolor="black" '
            f'style="position:absolute;mso-position-horizontal-relative:page;mso-position-vertical-relative:page;z-index:-1">'
            f'</v:line></w:pict></w:r>'
        )
        paragraph._p.append(parse_xml(xml))


def no_borders(table) -> None:
    tbl_pr = table._tbl.tblPr
    borders = OxmlElement("w:tblBorders")
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV"):
        e = OxmlElement(f"w:{edge}")
        e.set(qn("w:val"), "nil")
        borders.append(e)
    tbl_pr.append(borders)


def signatures(body) -> None:
    """Two signatories per row of a borderless table (the reference circular is co-signed by two
    heads of unit of two ministries); more than two continue in a further row.

    The rows are a docxtpl row loop over pairs. A row never breaks across pages and its paragraphs
    keep with the next, so closing and signatures stay together; the text starts at the
    Fluchtlinie (no table indent, no left cell margin) like every other line of the letter.
    """
    width = PAGE_W - LEFT - RIGHT
    table = body.add_table(rows=3, cols=2)
    table.alignment = WD_TABLE_ALIGNMENT.LEFT
    no_borders(table)
    tbl_pr = table._tbl.tblPr
    for old in tbl_pr.findall(qn("w:tblW")):
        tbl_pr.remove(old)
    tbl_pr.append(parse_xml(f'<w:tblW {nsdecls("w")} w:w="{width}" w:type="dxa"/>'))
    tbl_pr.append(parse_xml(f'<w:tblInd {nsdecls("w")} w:w="0" w:type="dxa"/>'))
    tbl_pr.append(parse_xml(f'<w:tblLayout {nsdecls("w")} w:type="fixed"/>'))
    tbl_pr.append(parse_xml(f'<w:tblCellMar {nsdecls("w")}><w:top w:w="0" w:type="dxa"/><w:left w:w="0" w:type="dxa"/>'
                            f'<w:bottom w:w="0" w:type="dxa"/><w:right w:w="113" w:type="dxa"/></w:tblCellMar>'))
    # python-docx writes tblPr children in call order; the schema wants this order.
    order = ("tblStyle", "tblpPr", "tblOverlap", "bidiVisual", "tblStyleRowBandSize", "tblStyleColBandSize", "tblW", "jc",
             "tblCellSpacing", "tblInd", "tblBorders", "shd", "tblLayout", "tblCellMar", "tblLook")
    children = sorted(tbl_pr, key=lambda e: order.index(e.tag.split("}")[1]) if e.tag.split("}")[1] in order else len(order))
    for child in children:
        tbl_pr.append(child)
    for column, grid_col in enumerate(table._tbl.tblGrid.findall(qn("w:gridCol"))):
        grid_col.set(qn("w:w"), str(width // 2 + (width % 2 if column else 0)))
    for row in table.rows:
        for column, cell in enumerate(row.cells):
            cell.width = Twips(width // 2 + (width % 2 if column else 0))
    table.cell(0, 0).paragraphs[0].add_run("{%tr for paar in unterzeichnende|batch(2) %}")
    table.cell(2, 0).paragraphs[0].add_run("{%tr endfor %}")
    row = table.rows[1]
    row._tr.get_or_add_trPr().append(OxmlElement("w:cantSplit"))
    for column, cell in enumerate(row.cells):
        # DIN-29: at least three blank lines for the handwritten signature above the typed name.
        guard_open, guard_close = ("{% if paar|length > 1 %}", "{% endif %}") if column else ("", "")
        name, function = cell.paragraphs[0], cell.add_paragraph()
        fmt(name, before=3 * LINE, keep_next=True)
        run(name, f"{guard_open}{{{{ paar[{column}].name }}}}{guard_close}")
        fmt(function, keep_next=True)
        run(function, f"{guard_open}{{{{ paar[{column}].funktion }}}}{guard_close}")
    # Word wants a paragraph after a table at the end of the body: a 1 pt carrier, no blank line.
    end = body.add_paragraph()
    fmt(end, exact=20, size=1)


def set_language(doc) -> None:
    styles = doc.styles.element
    rpr_default = styles.find(qn("w:docDefaults")).find(qn("w:rPrDefault"))
    rpr = rpr_default.find(qn("w:rPr"))
    for old in rpr.findall(qn("w:lang")):
        rpr.remove(old)
    lang = OxmlElement("w:lang")
    lang.set(qn("w:val"), "de-DE")
    lang.set(qn("w:eastAsia"), "en-US")
    lang.set(qn("w:bidi"), "ar-SA")
    rpr.append(lang)
    settings = doc.settings.element
    for old in settings.findall(qn("w:themeFontLang")):
        settings.remove(old)
    theme = OxmlElement("w:themeFontLang")
    theme.set(qn("w:val"), "de-DE")
    # Schema order: themeFontLang comes late in w:settings; before clrSchemeMapping if present.
    anchor = settings.find(qn("w:clrSchemeMapping"))
    if anchor is not None:
        anchor.addprevious(theme)
    else:
        settings.append(theme)


BODY = [
    "mit diesem Schreiben informieren wir Sie über den weiteren Ausbau der Kommunalen Integrationszentren (KI) "
    "in Nordrhein-Westfalen, den der Landtag für die Jahre 2017 ff. beschlossen hat.",
    "Die im September 2016 vorgelegte Evaluation zeigt, wie gut die KI in den Kommunen angenommen werden und "
    "wie sehr sie die Zusammenarbeit von Verwaltung, Schulen und Zivilgesellschaft stärken. Für Ihre "
    "Unterstützung vor Ort danken wir Ihnen herzlich.",
    "Die zusätzlichen Stellen werden – wie die Grundförderung – unbefristet gefördert. Die in den Jahren 2015 "
    "und 2016 zusätzlich bereitgestellten Stellen für Lehrkräfte stehen bis einschließlich 2019 weiter zur "
    "Verfügung; das Programm KOMM-AN NRW wird 2017 mit unverändertem Mittelansatz fortgeführt.",
]
KREIS = (
    "Für {{ organisation.name }} als Kreis mit einem Kommunalen Integrationszentrum stehen ab 2017 Zuwendungen "
    "für drei weitere Personalstellen mit bis zu 50.000 Euro je Stelle zur Verfügung. Zusätzlich werden dem "
    "Kreis 1,5 weitere Lehrkräfte abgeordnet."
)
STADT = (
    "Als kreisfreie Stadt erhält {{ organisation.name }} ab 2017 eine weitere abgeordnete Lehrkraft und kann "
    "Zuwendungen für zwei weitere Personalstellen mit bis zu 50.000 Euro je Stelle beantragen."
)
OTHER = (
    "Über die Ausstattung Ihres Kommunalen Integrationszentrums ab 2017 informieren wir Sie gesondert."
)
AFTER = [
    "Darüber hinaus erhalten alle Kreise und kreisfreien Städte künftig Sachmittel von bis zu 50.000 Euro für "
    "niedrigschwellige Dolmetscherdienste oder Angebote von Integrationslotsinnen und -lotsen. Wie Sie die "
    "Fachkräfte vor Ort einsetzen, entscheiden Sie mit Ihren Partnern; wir unterstützen Sie dabei gern.",
    "Am 8. Februar 2017 wird das Teilhabe- und Integrationsgesetz fünf Jahre alt – und mit ihm § 7, die "
    "Grundlage der Kommunalen Integrationszentren. Aus diesem Anlass laden wir Sie zu einer kleinen Feier "
    "ein; die Einladung erhalten Sie mit gesonderter Post.",
]


def build(out: Path = OUT) -> Path:
    doc = Document()
    normal = doc.styles["Normal"]
    normal.font.name = FONT
    normal.font.size = Pt(11)
    rfonts = normal.element.get_or_add_rPr().find(qn("w:rFonts"))
    for attr in ("w:ascii", "w:hAnsi", "w:cs", "w:eastAsia"):
        rfonts.set(qn(attr), FONT)
    normal.paragraph_format.space_after = Pt(0)
    normal.paragraph_format.line_spacing = 1.0
    set_language(doc)

    props = doc.core_properties
    props.title = "{{ betreff }}"
    props.subject = "Rundschreiben"
    props.author = "{{ absender.ministerium }}"
    props.language = "de-DE"
    props.keywords = "Rundschreiben, Kommunale Integrationszentren"
    props.comments = "Erzeugt von scripts/build_letter_template.py (KI-Post)"

    section = doc.sections[0]
    section.page_width, section.page_height = Twips(PAGE_W), Twips(PAGE_H)
    section.left_margin, section.right_margin = Twips(LEFT), Twips(RIGHT)
    section.top_margin, section.bottom_margin = Twips(TOP), Twips(BOTTOM)
    section.header_distance, section.footer_distance = Mm(10), Mm(8)
    section.different_first_page_header_footer = True

    # -- page 1 header: letterhead (ministry) and fold/hole marks ---------------------------------
    header = section.first_page_header
    p = header.paragraphs[0]
    fmt(p, align=WD_ALIGN_PARAGRAPH.RIGHT)
    run(p, "{{ absender.ministerium_zeile1 }}", size=12, bold=True)
    p2 = header.add_paragraph()
    fmt(p2, align=WD_ALIGN_PARAGRAPH.RIGHT)
    run(p2, "{{ absender.ministerium_zeile2 }}", size=12, bold=True)
    marks(p2)

    # Follow-up pages: the ministry in small type, no address field, no information block (DIN-34).
    follow = section.header.paragraphs[0]
    fmt(follow, align=WD_ALIGN_PARAGRAPH.RIGHT)
    run(follow, "{{ absender.ministerium }}", size=8)

    # -- footers: "Seite X von Y" on every page; Geschäftsangaben on page 1 (DIN-35) ----------------
    first_footer = section.first_page_footer
    first_footer.paragraphs[0]._p.getparent().remove(first_footer.paragraphs[0]._p)
    width = PAGE_W - LEFT - RIGHT
    table = first_footer.add_table(rows=1, cols=3, width=Twips(width))
    table.alignment = WD_TABLE_ALIGNMENT.LEFT
    no_borders(table)
    for cell, text in zip(table.rows[0].cells, (
        "Dienstgebäude und Lieferanschrift:\n{{ absender.dienstgebaeude }}",
        "{{ absender.kommunikation }}",
        "Öffentliche Verkehrsmittel:\n{{ absender.verkehr }}",
    )):
        cell.width = Twips(width // 3)
        cp = cell.paragraphs[0]
        fmt(cp, size=7.5)
        head, _, rest = text.partition("\n")
        if rest:
            run(cp, head, size=7.5, bold=True)
            cp.add_run().add_break()
            run(cp, rest, size=7.5)
        else:
            run(cp, head, size=7.5)
    # After the table, so the footer ends with a paragraph as Word expects.
    page_line(first_footer)
    footer = section.footer
    footer.paragraphs[0]._p.getparent().remove(footer.paragraphs[0]._p)
    page_line(footer)

    # -- address field (DIN-05…08): one frame, Rücksendeangabe then Anschriftzone ----------------
    body = doc
    first = body.paragraphs[0] if body.paragraphs else body.add_paragraph()
    p = first
    frame(p, **ADDRESS)
    # 5 mm line, then 12.7 mm Zusatz- und Vermerkzone (empty): the Anschriftzone starts at 44.7 mm.
    fmt(p, size=7, exact=283, after=720, indent=283)
    run(p, "{{ absender.ruecksendeangabe }}", size=7)
    for text in ("{%p for zeile in anschrift %}", "{{ zeile }}", "{%p endfor %}"):
        p = body.add_paragraph()
        frame(p, **ADDRESS)
        fmt(p, size=10, exact=255, indent=283)
        run(p, text, size=10)

    # -- information block (DIN-09, DIN-21/22) -----------------------------------------------------
    info_lines = [
        ("Ansprechperson", None),
        ("{{ ansprechperson }}", None),
        ("Telefon", "{{ telefon }}"),
        ("Telefax", "{{ telefax }}"),
        ("E-Mail", "{{ email }}"),
        ("", None),
        ("Aktenzeichen", "{{ aktenzeichen }}"),
        ("bei Antwort bitte angeben", "small"),
        ("", None),
        ("Datum", "{{ datum }}"),
    ]
    for label, value in info_lines:
        p = body.add_paragraph()
        frame(p, **INFO)
        # 9 pt: the "gestalteter Informationsblock" (DIN-21) must fit an e-mail address into 75 mm.
        fmt(p, size=9, exact=220, tab=1191)  # value column 21 mm in: one space after "Aktenzeichen"
        if value == "small":
            run(p, label, size=7.5)
        elif value is None:
            run(p, label, size=9)
        else:
            run(p, label, size=9)
            run(p, "\t" + value, size=9)

    # -- Betreff (DIN-24/25), Anrede (DIN-26/27), text (DIN-28) ------------------------------------
    p = body.add_paragraph()
    fmt(p, before=round((BETREFF_Y_MM - 27) * 56.693), after=2 * LINE, keep_next=True)
    run(p, "{{ betreff }}", bold=True)
    p = body.add_paragraph()
    fmt(p, after=LINE, keep_next=True)
    run(p, "{{ anrede }}")
    for text in BODY:
        run(fmt(body.add_paragraph(), after=LINE), text)
    for text in ("{%p if ist_kreis %}", KREIS, "{%p elif ist_kreisfreie_stadt %}", STADT, "{%p else %}", OTHER, "{%p endif %}"):
        p = body.add_paragraph()
        fmt(p, after=0 if text.startswith("{%p") else LINE)
        run(p, text)
    for number, text in enumerate(AFTER, start=1):
        # The last paragraph goes with the closing: the signatures never stand alone on a page.
        run(fmt(body.add_paragraph(), after=LINE, keep_next=number == len(AFTER)), text)

    # -- closing (DIN-29): Grußformel, "Im Auftrag", the signatories side by side ------------------
    run(fmt(body.add_paragraph(), after=LINE, keep_next=True), "Mit freundlichen Grüßen")
    run(fmt(body.add_paragraph(), keep_next=True), "Im Auftrag")
    signatures(body)

    sect_pr = doc.element.body.sectPr
    # Page geometry checked by DIN-T5: w:pgSz 11906 × 16838, w:pgMar left 1417 / right 1134.
    assert sect_pr.find(qn("w:pgSz")).get(qn("w:w")) == str(PAGE_W)
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    doc.save(buffer)
    out.write_bytes(_without_leftovers(buffer.getvalue()))
    return out


# python-docx's default document brings a thumbnail of another document and a 430 kB
# stylesWithEffects.xml that Word 2010 no longer needs; both would go into every letter.
_LEFTOVERS = ("docProps/thumbnail.jpeg", "word/stylesWithEffects.xml")
_STYLE_REFERENCE = re.compile(rb'<w:(?:pStyle|rStyle|tblStyle|numStyleLink|styleLink) w:val="([^"]+)"')


def _used_styles_only(styles_xml: bytes, others: list[bytes]) -> bytes:
    """Keep the default styles, those the parts name and what they are based on or linked to.

    python-docx's default styles.xml defines 164 styles (350 kB); every letter is a copy of the
    template, so they made up half of each archived letter and of what LibreOffice parses per PDF.
    The latent style list stays: Word offers its built-in styles from it when someone edits the file.
    """
    from lxml import etree

    root = etree.fromstring(styles_xml)
    styles = {style.get(qn("w:styleId")): style for style in root.iter(qn("w:style"))}
    wanted = {style_id for style_id, style in styles.items() if style.get(qn("w:default")) == "1"}
    for xml in others:
        wanted |= {m.decode() for m in _STYLE_REFERENCE.findall(xml)}
    todo = list(wanted)
    while todo:
        style = styles.get(todo.pop())
        for link in ("basedOn", "next", "link"):
            element = style.find(qn(f"w:{link}")) if style is not None else None
            if element is not None and element.get(qn("w:val")) not in wanted:
                wanted.add(element.get(qn("w:val")))
                todo.append(element.get(qn("w:val")))
    for style_id, style in styles.items():
        if style_id not in wanted:
            root.remove(style)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)


def _without_leftovers(data: bytes) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    others = [source.read(name) for name in source.namelist() if name.endswith(".xml") and name != "word/styles.xml"]
    target = io.BytesIO()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            if info.filename in _LEFTOVERS:
                continue
            content = source.read(info.filename)
            if info.filename.endswith(".rels") or info.filename == "[Content_Types].xml":
                text = content.decode("utf-8")
                for leftover in _LEFTOVERS:
                    base = leftover.rsplit("/", 1)[-1]
                    text = re.sub(rf'<(Relationship|Override)\b[^>]*{re.escape(base)}"[^>]*/>', "", text)
                content = text.encode("utf-8")
            elif info.filename == "word/styles.xml":
                content = _used_styles_only(content, others)
            archive.writestr(info, content)
    return target.getvalue()


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    print(build(target))

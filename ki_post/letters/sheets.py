"""Label sheets as DOCX with exact geometry: name badges, table cards, address labels, window envelopes.

A sheet is one table per page: fixed column widths, exact row heights, no cell margins, no borders;
gaps between labels are empty columns and rows. The inner margin of a label is paragraph
indentation, so the table itself starts exactly at the page margin. Text is fitted beforehand with
the real font metrics (``textfit``) and set with explicit line breaks and exact line spacing, so
LibreOffice has nothing left to break or grow. Each page is its own section (the paragraph that
must follow a table carries the section break), so a full page never spills a blank one.
Frames (cut guides), footer lines, a tent card's turned back face and its fold line are shapes
anchored to the page (``sheet_shapes``) in that same paragraph, so they add no height to the page.

The stocks are a declarative table (``STOCKS``): add a line for another sheet. All sizes in mm.
"""
from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from copy import deepcopy
from dataclasses import dataclass
from itertools import count
from xml.sax.saxutils import escape

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.oxml import parse_xml
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.opc.packuri import PackURI
from docx.opc.part import Part
from docx.oxml.ns import nsdecls, qn
from docx.shared import Mm

from ..errors import ValidationError
from . import sheet_shapes
from .fontmetrics import FONT_NAME
from .textfit import LEADING, Block, FittedBlock, fit

TWIPS_PER_MM = 1440 / 25.4


@dataclass(frozen=True)
class Stock:
    name: str
    title: str  # German, shown in help texts and the README
    kind: str  # "namensschild", "tischkarte", "etikett", "fenster"
    page_w: float
    page_h: float
    margin_left: float  # page edge to the first label's left edge
    margin_top: float  # page edge to the first label's top edge
    cols: int
    rows: int
    label_w: float
    label_h: float
    pitch_x: float  # left edge to the next label's left edge
    pitch_y: float
    pad: tuple[float, float, float, float] = (5, 5, 5, 5)  # inside the label: left, top, right, bottom
    valign: str = "center"
    qr_w: float = 0.0  # width of the QR column when a QR code is printed (0: none possible)
    # Fixed zones (top offset, height inside the label): block k is fitted into zone k on its own.
    zones: tuple[tuple[float, float], ...] = ()
    # A tent card: the label is the front face; below the fold the back face repeats it turned by 180°.
    tent: bool = False
    frame: str = ""  # colour (hex) of a thin cut frame around each label; "" for none

    @property
    def per_page(self) -> int:
        return self.cols * self.rows

    def label_rect(self, index: int) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the label at position ``index`` on its page, from the top left corner."""
        row, col = divmod(index % self.per_page, self.cols)
        x0, y0 = self.margin_left + col * self.pitch_x, self.margin_top + row * self.pitch_y
        return x0, y0, x0 + self.label_w, y0 + self.label_h

    def text_width(self, with_qr: bool) -> float:
        """Width (mm) the text of a label may use: inside the padding, left of the QR column if there is one."""
        left, _top, right, _bottom = self.pad
        return self.label_w - left - right - (self.qr_w - right / 2 if with_qr and self.qr_w else 0.0)


BADGE_FRAME = "B3B3B3"  # light grey cut guide (0.25 pt) around each badge, for plain paper
FOLD_LINE, CUT_LINE = "808080", "C8C8C8"  # tent cards: dashed fold (0.5 pt), light cut line (0.25 pt) between the cards
FOOTER = (7.0, 5.0)  # largest and smallest size (pt) of a label's footer line (e.g. the event's title)
FOOTER_GAP = 1.5  # mm kept free between the label's text and its footer
# The footer's box ends this far above the padding: its descenders reach ~0.3 mm below an exact line.
FOOTER_LIFT = 0.5

# Measure the sheets you buy: makers differ by a millimetre; a new stock is one more line here.
STOCKS: dict[str, Stock] = {stock.name: stock for stock in (
    # Name badges 90 × 54 mm (the size of common badge holder inserts), 2 × 4 with gaps for cutting.
    Stock("namensschild-90x54", "Namensschilder 90 × 54 mm, 8 je A4-Bogen (2 × 4, mit Zwischenraum)", "namensschild",
          210, 297, 10, 27, 2, 4, 90, 54, 100, 63, qr_w=24, frame=BADGE_FRAME),
    # The same size edge to edge, 2 × 5 (perforated business-card style sheets).
    Stock("namensschild-90x54-10", "Namensschilder 90 × 54 mm, 10 je A4-Bogen (2 × 5, randlos aneinander)", "namensschild",
          210, 297, 15, 13.5, 2, 5, 90, 54, 90, 54, qr_w=24, frame=BADGE_FRAME),
    # Tent cards: A4 landscape, two cards of 148.5 × 210 mm, folded at 105 mm (dashed fold line, light
    # cut line between the cards): the upper half faces the room as an A6 face (148.5 × 105 mm), the
    # lower half is the back face with the same text turned by 180° for the other side of the table.
    Stock("tischkarte-a6", "Tischkarten zum Falten, A6 quer, Text vorn und hinten, 2 je A4-Bogen (quer, Falz bei 105 mm)", "tischkarte",
          297, 210, 0, 0, 2, 1, 148.5, 105, 148.5, 105, pad=(10, 10, 10, 10), qr_w=32, tent=True),
    Stock("etikett-70x37", "Adressetiketten 70 × 37 mm, 24 je A4-Bogen (3 × 8)", "etikett",
          210, 297, 0, 0.5, 3, 8, 70, 37, 70, 37, pad=(6, 3, 3, 3)),
    Stock("etikett-70x36", "Adressetiketten 70 × 36 mm, 24 je A4-Bogen (3 × 8)", "etikett",
          210, 297, 0, 4.5, 3, 8, 70, 36, 70, 36, pad=(6, 3, 3, 3)),
    # One A4 sheet per recipient, the address in the DIN 5008 address field of Form B (x 20–105 mm,
    # y 45–90 mm; text from 25 mm): folded twice it shows through the window of a DIN lang envelope.
    Stock("fensterumschlag-din-lang", "Anschriftenblatt für Fensterumschlag DIN lang (Anschriftfeld nach DIN 5008, Form B)",
          "fenster", 210, 297, 20, 45, 1, 1, 85, 45, 85, 45, pad=(5, 0, 0, 0), valign="top",
          zones=((0, 5), (17.7, 27.3))),  # Rücksendeangabe 45–50 mm, Anschriftzone 62.7–90 mm (DIN 5008)
)}


def stocks_of(kind: str) -> list[Stock]:
    return [stock for stock in STOCKS.values() if stock.kind == kind]


def stock_among(name: str, allowed: list[Stock], what: str) -> Stock:
    """The stock called ``name`` if it is one of ``allowed``; else a German error naming the choices."""
    stock = STOCKS.get(name)
    if stock is None or stock not in allowed:
        raise ValidationError(f"Unbekannter {what} „{name}“. Möglich: {', '.join(s.name for s in allowed)}.", "stock")
    return stock


@dataclass(frozen=True)
class Label:
    blocks: tuple[Block, ...]
    qr: str | None = None  # text of a QR code printed at the right of the label
    footer: str = ""  # a small line at the bottom of the label (e.g. the event's title), shrunk to fit


def _tw(mm: float) -> int:
    return round(mm * TWIPS_PER_MM)


def _edges(starts_and_widths: list[tuple[float, float]], end: float) -> list[tuple[float, bool]]:
    """Grid columns (or rows) as (size in twips rounded without drift, is_label)."""
    cuts: list[tuple[float, bool]] = []
    position = 0.0
    for start, width in starts_and_widths:
        if start > position + 1e-6:
            cuts.append((start, False))
        cuts.append((start + width, True))
        position = start + width
    if end > position + 1e-6:
        cuts.append((end, False))
    result, previous = [], 0
    for cut, is_label in cuts:
        twips = _tw(cut)
        result.append((twips - previous, is_label))
        previous = twips
    return result


def _run_xml(text: str, size_pt: float, bold: bool) -> str:
    properties = f'<w:rPr>{"<w:b/><w:bCs/>" if bold else ""}<w:sz w:val="{round(size_pt * 2)}"/><w:szCs w:val="{round(size_pt * 2)}"/></w:rPr>'
    return f'<w:r>{properties}<w:t xml:space="preserve">{escape(text)}</w:t></w:r>'


def _paragraph_xml(block: FittedBlock, indent: tuple[float, float], align: str) -> str:
    line = _tw(block.size_pt * LEADING * 25.4 / 72)
    runs = "<w:r><w:br/></w:r>".join(_run_xml(text, block.size_pt, block.bold) for text in block.lines)
    return (f'<w:p><w:pPr><w:widowControl w:val="0"/><w:suppressAutoHyphens/>'
            f'<w:spacing w:before="{_tw(block.space_before_mm)}" w:after="0" w:line="{line}" w:lineRule="exact"/>'
            f'<w:ind w:left="{_tw(indent[0])}" w:right="{_tw(indent[1])}"/><w:jc w:val="{align}"/></w:pPr>{runs}</w:p>')


TINY_PARAGRAPH = ('<w:p><w:pPr><w:spacing w:before="0" w:after="0" w:line="20" w:lineRule="exact"/>'
                  '<w:rPr><w:sz w:val="2"/></w:rPr></w:pPr></w:p>')


def _cell_xml(width: int, content: str, valign: str = "top") -> str:
    return (f'<w:tc><w:tcPr><w:tcW w:w="{width}" w:type="dxa"/><w:vAlign w:val="{valign}"/></w:tcPr>'
            f'{content or TINY_PARAGRAPH}</w:tc>')


def _fit_zones(stock: Stock, label: Label, width: float) -> list[FittedBlock]:
    """Each block in its own zone; the space before a block puts it at the top of its zone."""
    fitted, position = [], 0.0
    for block, (offset, height) in zip(label.blocks, stock.zones):
        for part in fit([block], width, height) if block.text.strip() else []:
            fitted.append(FittedBlock(part.lines, part.size_pt, part.bold, offset - position))
            position = offset + part.height_mm - part.space_before_mm
    return fitted


def _spacer(height_mm: float) -> str:
    return f'<w:p><w:pPr><w:spacing w:before="0" w:after="0" w:line="{_tw(height_mm)}" w:lineRule="exact"/></w:pPr></w:p>'


def _label_cells(stock: Stock, label: Label | None, widths: tuple[int, int], index: int,
                 relate: Callable[[bytes], str]) -> tuple[str, str | None, list[str]]:
    """The text cell, (with a QR column) the QR cell and the shapes of one label; the QR picture is added later."""
    if label is None:
        return _cell_xml(widths[0], ""), (_cell_xml(widths[1], "") if widths[1] else None), []
    left, top, right, bottom = stock.pad
    with_qr = bool(widths[1])
    inner_w = stock.text_width(with_qr)
    right_indent = right / 2 if with_qr else right
    height = stock.label_h - top - bottom
    x0, y0, x1, y1 = stock.label_rect(index)
    shapes, spacer = [], ""
    if stock.frame:
        shapes.append(sheet_shapes.rect(x0, y0, x1, y1, color=stock.frame))
    if label.footer.strip():  # at the bottom of the text column; the centred text keeps above it
        (part,) = fit([Block(label.footer, *FOOTER)], inner_w, height)
        box_y = y1 - bottom - FOOTER_LIFT - part.height_mm
        shapes.append(sheet_shapes.text_box(x0 + left, box_y, inner_w, part.height_mm,
                                            _paragraph_xml(part, (0, 0), "center"), anchor="b"))
        height -= part.height_mm + FOOTER_LIFT + FOOTER_GAP
        spacer = _spacer(part.height_mm + FOOTER_LIFT + FOOTER_GAP)
    fitted = _fit_zones(stock, label, inner_w) if stock.zones else fit(label.blocks, inner_w, height)
    if stock.valign == "top" and fitted and top:
        first = fitted[0]
        fitted[0] = FittedBlock(first.lines, first.size_pt, first.bold, first.space_before_mm + top)
    align = "center" if stock.kind in ("namensschild", "tischkarte") else "left"
    text = "".join(_paragraph_xml(block, (left, right_indent), align) for block in fitted)
    if stock.tent and fitted:  # the back face: the text column mirrored about the fold, turned by 180°
        back_h = stock.label_h - top - bottom
        svg = sheet_shapes.turned_text_svg(fitted, inner_w, back_h)
        shapes.append(sheet_shapes.picture(x0 + x1 - (x0 + left + inner_w), y1 + bottom, inner_w, back_h, relate(svg)))
    text_cell = _cell_xml(widths[0], text + spacer if text else "", stock.valign)
    if not with_qr:
        return text_cell, None, shapes
    return text_cell, _cell_xml(widths[1], "<!--qr-->" if label.qr else "", "center"), shapes


def _sheet_lines(stock: Stock) -> list[str]:
    """A tent card's dashed fold line and the light cut line between the cards."""
    if not stock.tent:
        return []
    fold = stock.margin_top + stock.label_h
    lines = [sheet_shapes.line(0, fold, stock.page_w, fold, width_pt=0.5, color=FOLD_LINE, dash="lgDash")]
    for col in range(1, stock.cols):
        x = stock.margin_left + col * stock.pitch_x
        lines.append(sheet_shapes.line(x, 0, x, stock.page_h, color=CUT_LINE, dash="solid"))
    return lines


def _page_table(stock: Stock, labels: Sequence[Label | None], with_qr: bool,
                relate: Callable[[bytes], str]) -> tuple[str, list[str]]:
    """The page's table and the shapes (frames, footers, back faces, fold lines) anchored to the page."""
    spans = []
    for col in range(stock.cols):
        x = stock.margin_left + col * stock.pitch_x
        if with_qr:
            spans += [(x, stock.label_w - stock.qr_w), (x + stock.label_w - stock.qr_w, stock.qr_w)]
        else:
            spans.append((x, stock.label_w))
    last_x = stock.margin_left + (stock.cols - 1) * stock.pitch_x + stock.label_w
    columns = _edges([(start - stock.margin_left, width) for start, width in spans], last_x - stock.margin_left)
    rows = _edges([(row * stock.pitch_y, stock.label_h) for row in range(stock.rows)],
                  (stock.rows - 1) * stock.pitch_y + stock.label_h)
    grid = "".join(f'<w:gridCol w:w="{width}"/>' for width, _ in columns)
    no_border = "".join(f'<w:{side} w:val="nil"/>' for side in ("top", "left", "bottom", "right", "insideH", "insideV"))
    zero = "".join(f'<w:{side} w:w="0" w:type="dxa"/>' for side in ("top", "left", "bottom", "right"))
    body, index, shapes = [], 0, _sheet_lines(stock)
    for height, is_label_row in rows:
        cells, col = [], 0
        while col < len(columns):
            width, is_label = columns[col]
            if is_label_row and is_label:
                label = labels[index] if index < len(labels) else None
                qr_width = columns[col + 1][0] if with_qr else 0
                text_cell, qr_cell, label_shapes = _label_cells(stock, label, (width, qr_width), index, relate)
                index += 1
                cells += [text_cell] + ([qr_cell] if qr_cell else [])
                shapes += label_shapes
                col += 2 if with_qr else 1
            else:
                cells.append(_cell_xml(width, ""))
                col += 1
        body.append(f'<w:tr><w:trPr><w:cantSplit/><w:trHeight w:val="{height}" w:hRule="exact"/></w:trPr>{"".join(cells)}</w:tr>')
    total = sum(width for width, _ in columns)
    return (f'<w:tbl {nsdecls("w")}><w:tblPr><w:tblW w:w="{total}" w:type="dxa"/><w:jc w:val="left"/>'
            f'<w:tblInd w:w="0" w:type="dxa"/><w:tblBorders>{no_border}</w:tblBorders><w:tblLayout w:type="fixed"/>'
            f'<w:tblCellMar>{zero}</w:tblCellMar><w:tblLook w:val="0000"/></w:tblPr>'
            f'<w:tblGrid>{grid}</w:tblGrid>{"".join(body)}</w:tbl>'), shapes


def _qr_png(text: str) -> bytes:
    import segno

    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buffer, kind="png", scale=8, border=0)
    return buffer.getvalue()


def _set_defaults(document) -> None:
    """Liberation Sans and de-DE on the document defaults (the PDF's /Lang comes from here)."""
    styles = document.styles.element
    defaults = styles.find(qn("w:docDefaults"))
    run_properties = defaults.find(qn("w:rPrDefault")).find(qn("w:rPr"))
    for tag in ("w:rFonts", "w:lang"):
        for old in run_properties.findall(qn(tag)):
            run_properties.remove(old)
    fonts = parse_xml(f'<w:rFonts {nsdecls("w")} w:ascii="{FONT_NAME}" w:hAnsi="{FONT_NAME}" w:cs="{FONT_NAME}" w:eastAsia="{FONT_NAME}"/>')
    run_properties.insert(0, fonts)
    run_properties.append(parse_xml(f'<w:lang {nsdecls("w")} w:val="de-DE" w:eastAsia="de-DE" w:bidi="ar-SA"/>'))
    for style in document.styles:
        element = style.element.find(qn("w:rPr"))
        if element is not None:
            for tag in ("w:rFonts", "w:lang"):
                for old in element.findall(qn(tag)):
                    element.remove(old)


def sheet_docx(stock: Stock, labels: Sequence[Label], *, title: str, author: str) -> bytes:
    """The labels on as many sheets of ``stock`` as needed (at least one), as DOCX."""
    document = Document()
    _set_defaults(document)
    properties = document.core_properties
    properties.title, properties.author, properties.language = title, author, "de-DE"
    properties.comments = properties.subject = properties.keywords = ""
    properties.last_modified_by = author
    section = document.sections[0]
    section.page_width, section.page_height = Mm(stock.page_w), Mm(stock.page_h)
    section.orientation = WD_ORIENT.LANDSCAPE if stock.page_w > stock.page_h else WD_ORIENT.PORTRAIT
    table_h = (stock.rows - 1) * stock.pitch_y + stock.label_h
    section.top_margin, section.left_margin = Mm(stock.margin_top), Mm(stock.margin_left)
    section.right_margin = Mm(max(0.0, stock.page_w - stock.margin_left - (stock.cols - 1) * stock.pitch_x - stock.label_w))
    # Room below the table for the one small paragraph a DOCX needs after it (else a blank page follows).
    section.bottom_margin = Mm(max(0.0, min(10.0, stock.page_h - stock.margin_top - table_h - 1.0)))
    section.header_distance = section.footer_distance = Mm(0)
    body = document.element.body
    for paragraph in list(body.findall(qn("w:p"))):
        body.remove(paragraph)
    final_section = body.find(qn("w:sectPr"))
    with_qr = stock.qr_w > 0 and any(label.qr for label in labels)
    pictures = count(1)

    def relate(svg: bytes) -> str:  # an SVG picture in the package; its relationship id
        part = Part(PackURI(f"/word/media/rueckseite{next(pictures)}.svg"), "image/svg+xml", svg, document.part.package)
        return document.part.relate_to(part, RT.IMAGE)

    pages = [labels[start:start + stock.per_page] for start in range(0, len(labels), stock.per_page)] or [[]]
    for number, page in enumerate(pages):
        table_xml, shapes = _page_table(stock, page, with_qr, relate)
        table = parse_xml(table_xml)
        qr_paragraphs = [comment.getparent() for comment in table.iter() if comment.tag is not None
                         and callable(comment.tag) and comment.text == "qr"]
        codes = [label.qr for label in page if label.qr]
        for cell, code in zip(qr_paragraphs, codes):
            size = Mm(stock.qr_w - 4)
            inline = document.part.new_pic_inline(io.BytesIO(_qr_png(code)), size, size)
            paragraph = parse_xml(f'<w:p {nsdecls("w")}><w:pPr><w:spacing w:before="0" w:after="0"/><w:jc w:val="center"/>'
                                  f'</w:pPr><w:r/></w:p>')
            drawing = parse_xml(f'<w:drawing {nsdecls("w")}/>')
            drawing.append(inline)
            paragraph.find(qn("w:r")).append(drawing)
            for comment in [node for node in cell if node.tag is not None and callable(node.tag)]:
                cell.remove(comment)
            cell.append(paragraph)
        body.insert(len(body) - 1, table)
        after = parse_xml(sheet_shapes.paragraph("".join(shapes)))  # the page's shapes, anchored to the page
        if number < len(pages) - 1:
            after.find(qn("w:pPr")).append(deepcopy(final_section))
        body.insert(len(body) - 1, after)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()

"""Shapes placed on a label sheet by page position (DrawingML anchors): lines, frames, text boxes, pictures.

A tent card's back face is the same text turned by 180°, so that it reads right from the other side
of the table. LibreOffice 7.4 turns none of the ways a DOCX offers for that: a table cell turns text
by 90° only, and a text box (``wps:wsp`` with ``xfrm rot="10800000"``, ``bodyPr rot``, flipH/flipV,
in a turned group, or as VML with ``rotation:180``) comes out upright. What it does turn is an SVG
picture: its ``<text>`` in a ``rotate(180)`` group stays text in the PDF (real glyphs of the
embedded Liberation Sans, found by pdftotext). So the back face is an SVG built from the same fitted
lines as the front. The SVG sits in the picture's main blip (LibreOffice reads it; the DOCX is only
the road to the PDF). All sizes in mm.
"""
from __future__ import annotations

from itertools import count
from xml.sax.saxutils import escape

from .fontmetrics import FONT_NAME, MM_PER_PT
from .textfit import FittedBlock

EMU_PER_MM = 36000
NAMESPACES = ('xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
              'xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" '
              'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
              'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape"')
_ids = count(1000)


def _emu(mm: float) -> int:
    return round(mm * EMU_PER_MM)


def _anchor(x: float, y: float, w: float, h: float, shape: str, name: str) -> str:
    number = next(_ids)
    return (f'<w:r><w:drawing><wp:anchor distT="0" distB="0" distL="0" distR="0" simplePos="0" '
            f'relativeHeight="{number}" behindDoc="0" locked="1" layoutInCell="0" allowOverlap="1">'
            f'<wp:simplePos x="0" y="0"/>'
            f'<wp:positionH relativeFrom="page"><wp:posOffset>{_emu(x)}</wp:posOffset></wp:positionH>'
            f'<wp:positionV relativeFrom="page"><wp:posOffset>{_emu(y)}</wp:posOffset></wp:positionV>'
            f'<wp:extent cx="{_emu(w)}" cy="{_emu(h)}"/><wp:effectExtent l="0" t="0" r="0" b="0"/><wp:wrapNone/>'
            f'<wp:docPr id="{number}" name="{name} {number}"/><wp:cNvGraphicFramePr/>'
            f'<a:graphic><a:graphicData uri="http://schemas.microsoft.com/office/word/2010/wordprocessingShape">'
            f'{shape}</a:graphicData></a:graphic></wp:anchor></w:drawing></w:r>')


def line(x0: float, y0: float, x1: float, y1: float, *, width_pt: float = 0.25, color: str = "808080",
         dash: str = "dash") -> str:
    """A straight line (horizontal or vertical) from (x0, y0) to (x1, y1), from the top left of the page."""
    w, h = abs(x1 - x0), abs(y1 - y0)
    shape = (f'<wps:wsp><wps:cNvCnPr/><wps:spPr><a:xfrm><a:off x="0" y="0"/><a:ext cx="{_emu(w)}" cy="{_emu(h)}"/></a:xfrm>'
             f'<a:prstGeom prst="line"><a:avLst/></a:prstGeom><a:noFill/>'
             f'<a:ln w="{round(width_pt * 12700)}"><a:solidFill><a:srgbClr val="{color}"/></a:solidFill>'
             f'<a:prstDash val="{dash}"/></a:ln></wps:spPr><wps:bodyPr/></wps:wsp>')
    return _anchor(min(x0, x1), min(y0, y1), w, h, shape, "Linie")


def rect(x0: float, y0: float, x1: float, y1: float, *, width_pt: float = 0.25, color: str = "B3B3B3") -> str:
    """The outline of a rectangle (a cut frame), no fill."""
    shape = (f'<wps:wsp><wps:cNvSpPr/><wps:spPr><a:xfrm><a:off x="0" y="0"/><a:ext cx="{_emu(x1 - x0)}" cy="{_emu(y1 - y0)}"/>'
             f'</a:xfrm><a:prstGeom prst="rect"><a:avLst/></a:prstGeom><a:noFill/>'
             f'<a:ln w="{round(width_pt * 12700)}"><a:solidFill><a:srgbClr val="{color}"/></a:solidFill></a:ln>'
             f'</wps:spPr><wps:bodyPr/></wps:wsp>')
    return _anchor(x0, y0, x1 - x0, y1 - y0, shape, "Rahmen")


def text_box(x: float, y: float, w: float, h: float, paragraphs: str, *, anchor: str = "ctr") -> str:
    """A box of ``paragraphs`` (w:p XML) at (x, y) of size w × h, the text at its top, centre (ctr) or bottom (b)."""
    shape = (f'<wps:wsp><wps:cNvSpPr txBox="1"/><wps:spPr><a:xfrm><a:off x="0" y="0"/>'
             f'<a:ext cx="{_emu(w)}" cy="{_emu(h)}"/></a:xfrm><a:prstGeom prst="rect"><a:avLst/></a:prstGeom>'
             f'<a:noFill/><a:ln><a:noFill/></a:ln></wps:spPr>'
             f'<wps:txbx><w:txbxContent>{paragraphs}</w:txbxContent></wps:txbx>'
             f'<wps:bodyPr rot="0" vert="horz" wrap="square" lIns="0" tIns="0" rIns="0" bIns="0" anchor="{anchor}" '
             f'anchorCtr="0"><a:noAutofit/></wps:bodyPr></wps:wsp>')
    return _anchor(x, y, w, h, shape, "Textfeld")


def paragraph(runs: str) -> str:
    """A paragraph (namespaces declared) that holds anchored shapes and takes no room."""
    return (f'<w:p {NAMESPACES}><w:pPr><w:spacing w:before="0" w:after="0" w:line="20" w:lineRule="exact"/>'
            f'<w:rPr><w:sz w:val="2"/></w:rPr></w:pPr>{runs}</w:p>')


def picture(x: float, y: float, w: float, h: float, relationship: str, name: str = "Rückseite") -> str:
    """The picture of relationship ``relationship`` at (x, y), w × h, anchored to the page."""
    number = next(_ids)
    shape = (f'<pic:pic xmlns:pic="http://schemas.openxmlformats.org/drawingml/2006/picture"><pic:nvPicPr>'
             f'<pic:cNvPr id="{number}" name="{name} {number}.svg"/><pic:cNvPicPr/></pic:nvPicPr><pic:blipFill>'
             f'<a:blip xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" r:embed="{relationship}"/>'
             f'<a:stretch><a:fillRect/></a:stretch></pic:blipFill><pic:spPr><a:xfrm><a:off x="0" y="0"/>'
             f'<a:ext cx="{_emu(w)}" cy="{_emu(h)}"/></a:xfrm><a:prstGeom prst="rect"><a:avLst/></a:prstGeom></pic:spPr></pic:pic>')
    return _anchor(x, y, w, h, shape, name).replace(
        "http://schemas.microsoft.com/office/word/2010/wordprocessingShape", "http://schemas.openxmlformats.org/drawingml/2006/picture")


ASCENT, DESCENT = 0.905, 0.212  # Liberation Sans (hhea), in em: the baseline within a line of LEADING × size


def turned_text_svg(blocks: list[FittedBlock], w: float, h: float) -> bytes:
    """The fitted lines centred in a w × h box, turned by 180° about its centre, as SVG (user units: 1/100 mm)."""
    total = sum(block.height_mm for block in blocks)
    y, texts = (h - total) / 2, []
    for block in blocks:
        y += block.space_before_mm
        size = block.size_pt * MM_PER_PT
        for line in block.lines:
            baseline = y + (block.line_height_mm - (ASCENT + DESCENT) * size) / 2 + ASCENT * size
            weight = ' font-weight="bold"' if block.bold else ""
            texts.append(f'<text x="{w * 50:.0f}" y="{baseline * 100:.0f}" font-size="{size * 100:.1f}"{weight} '
                         f'text-anchor="middle" xml:space="preserve">{escape(line)}</text>')
            y += block.line_height_mm
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}mm" height="{h}mm" viewBox="0 0 {w * 100:.0f} {h * 100:.0f}">'
            f'<g transform="rotate(180 {w * 50:.0f} {h * 50:.0f})" font-family="{FONT_NAME}" fill="#000000">'
            f'{"".join(texts)}</g></svg>').encode()

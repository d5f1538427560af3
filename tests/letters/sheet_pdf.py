"""Reading label sheets back from the PDF: word boxes (pdftotext -bbox), fonts (pdffonts), PDF/A facts (pikepdf)."""
from __future__ import annotations

import io
import re
import shutil
import subprocess
from dataclasses import dataclass
from html import unescape

import pytest

from ki_post.letters import pdf

MM = 72 / 25.4

needs_pdf_tools = pytest.mark.skipif(
    not pdf.pdf_available() or not shutil.which("pdftotext") or not shutil.which("pdffonts"),
    reason="LibreOffice (soffice) oder poppler-utils fehlen: apt-get install libreoffice-writer-nogui poppler-utils")


@dataclass
class Word:
    page: int
    text: str
    x0: float  # mm from the left edge
    y0: float  # mm from the top edge
    x1: float
    y1: float


@dataclass
class Page:
    width: float  # mm
    height: float


WORD = re.compile(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</word>')
PAGE = re.compile(r'<page width="([\d.]+)" height="([\d.]+)">')


def words(data: bytes) -> tuple[list[Page], list[Word]]:
    html = subprocess.run(["pdftotext", "-bbox", "-", "-"], input=data, capture_output=True, check=True).stdout.decode()
    pages, found = [], []
    for number, chunk in enumerate(html.split("<page ")[1:]):
        size = PAGE.search("<page " + chunk)
        pages.append(Page(float(size.group(1)) / MM, float(size.group(2)) / MM))
        for x0, y0, x1, y1, text in WORD.findall(chunk):
            found.append(Word(number, unescape(text), float(x0) / MM, float(y0) / MM, float(x1) / MM, float(y1) / MM))
    return pages, found


def in_rect(word: Word, rect: tuple[float, float, float, float], tolerance: float = 0.0) -> bool:
    x0, y0, x1, y1 = rect
    return (word.x0 >= x0 - tolerance and word.y0 >= y0 - tolerance
            and word.x1 <= x1 + tolerance and word.y1 <= y1 + tolerance)


def by_label(found: list[Word], stock) -> dict[tuple[int, int], list[Word]]:
    """Words grouped by (page, position on the page) of the label whose rectangle holds their centre;
    a word outside every label fails the test."""
    groups: dict[tuple[int, int], list[Word]] = {}
    for word in found:
        cx, cy = (word.x0 + word.x1) / 2, (word.y0 + word.y1) / 2
        for index in range(stock.per_page):
            x0, y0, x1, y1 = stock.label_rect(index)
            if x0 <= cx <= x1 and y0 <= cy <= y1:
                groups.setdefault((word.page, index), []).append(word)
                break
        else:
            raise AssertionError(f"„{word.text}“ (Seite {word.page + 1}, {word.x0:.1f}/{word.y0:.1f} mm) liegt auf keinem Etikett")
    return groups


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def label_text(group: list[Word]) -> str:
    """The words of one label in reading order, without blanks (lines may break anywhere)."""
    return "".join(word.text for word in sorted(group, key=lambda w: (round(w.y0, 1), w.x0)))


def fonts_embedded(data: bytes) -> list[tuple[str, str]]:
    out = subprocess.run(["pdffonts", "-"], input=data, capture_output=True, check=True).stdout.decode()
    rows = [line.split() for line in out.splitlines()[2:] if line.strip()]
    return [(row[0], row[-5]) for row in rows]


def pdfa_facts(data: bytes) -> dict[str, object]:
    """What pikepdf reads of the PDF/A markers; the PDF/A-2b profile itself is validated on the way."""
    import pikepdf

    from tests.pdfa import validate

    validate(data)

    with pikepdf.open(io.BytesIO(data)) as document:
        metadata = document.open_metadata()
        return {"part": metadata.get("pdfaid:part"), "lang": str(document.Root.get("/Lang", "")),
                "struct": "/StructTreeRoot" in document.Root, "title": str(document.docinfo.get("/Title", "")),
                "author": str(document.docinfo.get("/Author", "")), "pages": len(document.pages),
                "images": sum(len(page.get_images()) for page in document.pages)}


def image_rects(data: bytes) -> list[tuple[int, float, float, float, float]]:
    """(page, x0, y0, x1, y1) in mm from the top left of every image drawn (the ``cm`` in force at its ``Do``)."""
    import pikepdf

    found = []
    with pikepdf.open(io.BytesIO(data)) as document:
        for number, page in enumerate(document.pages):
            height = float(page.mediabox[3])
            xobjects = page.resources.get("/XObject", {})
            images = {str(key) for key in xobjects.keys() if xobjects[key].get("/Subtype") == "/Image"}
            stack, matrix = [], pikepdf.Matrix()
            for operands, operator in pikepdf.parse_content_stream(page):
                name = str(operator)
                if name == "q":
                    stack.append(matrix)
                elif name == "Q":
                    matrix = stack.pop()
                elif name == "cm":
                    matrix = pikepdf.Matrix(*[float(value) for value in operands]) @ matrix
                elif name == "Do" and str(operands[0]) in images:
                    a, _b, _c, d, e, f = matrix.shorthand
                    found.append((number, e / MM, (height - f - d) / MM, (e + a) / MM, (height - f) / MM))
    return found


def gray_page(data: bytes, page: int, dpi: int) -> tuple[int, int, bytes]:
    """The page rendered by poppler as 8-bit gray (width, height, pixels)."""
    pgm = subprocess.run(["pdftoppm", "-gray", "-r", str(dpi), "-f", str(page + 1), "-l", str(page + 1), "-", ],
                         input=data, capture_output=True, check=True).stdout
    header = re.match(rb"P5\s+(\d+)\s+(\d+)\s+255\s", pgm)
    return int(header.group(1)), int(header.group(2)), pgm[header.end():]


@dataclass
class Stroke:
    page: int
    x0: float  # mm from the top left of the page (bounding box of the stroked path)
    y0: float
    x1: float
    y1: float
    width: float  # line width in pt
    gray: float  # stroke colour: 0 black … 1 white (mean of RGB)
    dashed: bool


def strokes(data: bytes) -> list[Stroke]:
    """Every stroked path (lines, frames) drawn, read from the content streams with pikepdf (cm, q/Q, w, d, RG)."""
    import pikepdf

    found = []
    with pikepdf.open(io.BytesIO(data)) as document:
        for number, page in enumerate(document.pages):
            height = float(page.mediabox[3])
            state = {"matrix": pikepdf.Matrix(), "width": 1.0, "gray": 0.0, "dashed": False}
            stack, points = [], []
            for operands, operator in pikepdf.parse_content_stream(page):
                name, values = str(operator), list(operands)
                if name == "q":
                    stack.append(dict(state))
                elif name == "Q":
                    state = stack.pop()
                elif name == "cm":
                    state["matrix"] = pikepdf.Matrix(*[float(value) for value in values]) @ state["matrix"]
                elif name == "w":
                    state["width"] = float(values[0])
                elif name == "d":
                    state["dashed"] = len(values[0]) > 0
                elif name == "RG":
                    state["gray"] = sum(float(value) for value in values) / 3
                elif name == "G":
                    state["gray"] = float(values[0])
                elif name in ("m", "l"):
                    points.append(state["matrix"].transform((float(values[0]), float(values[1]))))
                elif name == "re":
                    x, y, w, h = (float(value) for value in values)
                    points += [state["matrix"].transform(point) for point in ((x, y), (x + w, y + h))]
                elif name in ("S", "s") and points:
                    xs, ys = [p[0] for p in points], [p[1] for p in points]
                    found.append(Stroke(number, min(xs) / MM, (height - max(ys)) / MM, max(xs) / MM, (height - min(ys)) / MM,
                                        state["width"], state["gray"], state["dashed"]))
                    points = []
                elif name in ("n", "f", "F", "f*", "B", "B*", "b", "b*"):  # a path filled or dropped, not stroked
                    points = []
    return found


def turned_lines(data: bytes, page: int = 0) -> int:
    """How many text objects on ``page`` are set turned by 180° (text matrix with a < 0 and d < 0)."""
    import pikepdf

    with pikepdf.open(io.BytesIO(data)) as document:
        return sum(1 for operands, operator in pikepdf.parse_content_stream(document.pages[page])
                   if str(operator) == "Tm" and float(operands[0]) < 0 and float(operands[3]) < 0)

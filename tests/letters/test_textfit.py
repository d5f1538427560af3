"""Fitting label text with the real font metrics: shrink, wrap, never cut; the stocks' geometry."""
from __future__ import annotations

import zipfile
import io

import pytest

from ki_post.errors import ValidationError
from ki_post.letters.fontmetrics import text_width_mm
from ki_post.letters.sheets import STOCKS, Label, sheet_docx
from ki_post.letters.textfit import WIDTH_RESERVE, Block, fit, wrap

LONG_NAME = "Prof. Dr. Maximiliane Theodora von und zu Hohenzollern-Sigmaringen-Wittgenstein"


def test_widths_come_from_the_font_file():
    # Liberation Sans (metric-compatible with Arial): "M" 1706, "i" 455, "ü" 1139 units of 2048 per em.
    assert text_width_mm("M", 72) == pytest.approx(1706 / 2048 * 25.4)
    assert text_width_mm("iü", 36) == pytest.approx((455 + 1139) / 2048 * 12.7)
    assert text_width_mm("Name", 10, bold=True) > text_width_mm("Name", 10)


def test_wrap_breaks_between_words_and_after_hyphens_only():
    lines = wrap(LONG_NAME, 45, 12, bold=True)
    assert lines is not None and len(lines) > 2
    assert " ".join(lines).replace("- ", "-") == LONG_NAME  # nothing lost, hyphens kept at the line end
    assert all(text_width_mm(line, 12, True) <= 45 for line in lines)
    assert "Hohenzollern-" in lines or any(line.endswith("Hohenzollern-") or line.endswith("Sigmaringen-") for line in lines)
    assert wrap("Donaudampfschifffahrtsgesellschaft", 20, 12) is None  # a word wider than the line is not split …
    split = wrap("Donaudampfschifffahrtsgesellschaft", 20, 12, split_words=True)
    assert "".join(split) == "Donaudampfschifffahrtsgesellschaft" and len(split) > 1  # … unless nothing else fits


def test_fit_shrinks_only_what_is_too_long():
    blocks = [Block(LONG_NAME, 20, 9, bold=True, max_lines=3), Block("Leitung", 11, 7, space_before_mm=2),
              Block("Stadt Köln", 12, 7, space_before_mm=1.5)]
    fitted = fit(blocks, 80, 44)
    name, function, organisation = fitted
    assert name.size_pt < 20 and function.size_pt == 11 and organisation.size_pt == 12
    assert sum(block.height_mm for block in fitted) <= 44
    for block in fitted:
        assert all(text_width_mm(line, block.size_pt, block.bold) <= 80 * (1 - WIDTH_RESERVE) for line in block.lines)
    assert " ".join(name.lines).replace("- ", "-") == LONG_NAME
    short = fit([Block("Anna Meier", 20, 9, bold=True, max_lines=3)], 80, 44)
    assert short[0].size_pt == 20 and short[0].lines == ["Anna Meier"]


def test_fit_keeps_address_lines_and_refuses_what_cannot_fit():
    address = Block("Stadt Köln\nDer Oberbürgermeister\nHerrn\nKim Beispiel\nRathausplatz 1\n50667 Köln", 10, 7,
                    max_lines=6, keep_lines=True)
    (fitted,) = fit([address], 61, 31)
    assert fitted.lines == address.text.split("\n") and fitted.size_pt == 10
    with pytest.raises(ValidationError, match="passt auch in kleinster Schrift nicht"):
        fit([Block(LONG_NAME * 6, 10, 8, max_lines=2)], 30, 10)


@pytest.mark.parametrize("stock", STOCKS.values(), ids=lambda stock: stock.name)
def test_every_stock_lies_on_its_page_without_overlap(stock):
    assert stock.pitch_x >= stock.label_w and stock.pitch_y >= stock.label_h
    x0, y0, _, _ = stock.label_rect(0)
    _, _, x1, y1 = stock.label_rect(stock.per_page - 1)
    assert x0 >= 0 and y0 >= 0 and x1 <= stock.page_w + 1e-6 and y1 <= stock.page_h + 1e-6


def test_sheet_docx_geometry_font_language_and_properties():
    stock = STOCKS["namensschild-90x54"]
    labels = [Label((Block(f"Person {k}", 20, 9, bold=True),)) for k in range(9)]
    data = sheet_docx(stock, labels, title="Namensschilder: Test", author="Ministerium X")
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        document = package.read("word/document.xml").decode()
        styles = package.read("word/styles.xml").decode()
        core = package.read("docProps/core.xml").decode()
    assert document.count("<w:tbl>") == 2  # 9 badges: two sheets of 8
    assert document.count('w:hRule="exact"') == 2 * 7  # 4 badge rows and 3 gap rows per sheet
    assert 'w:gridCol w:w="5102"' in document and 'w:gridCol w:w="567"' in document  # 90 mm, gap 10 mm
    assert 'w:left="567"' in document and 'w:top="1531"' in document  # page margins 10 / 27 mm
    assert 'w:ascii="Liberation Sans"' in styles and 'w:lang w:val="de-DE"' in styles
    assert "<dc:title>Namensschilder: Test</dc:title>" in core and "<dc:creator>Ministerium X</dc:creator>" in core

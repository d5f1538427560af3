"""Advance widths of Liberation Sans read from the TrueType files (fontTools), so label text is measured,
not guessed. Kerning is left out: it only makes text narrower, so the sum of advances is an upper bound
(what fitting needs).
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from fontTools.ttLib import TTFont

FONT_NAME = "Liberation Sans"
FONT_DIRS = (Path("/usr/share/fonts/truetype/liberation"), Path("/usr/share/fonts/truetype/liberation2"),
             Path("/usr/share/fonts/liberation"))
FILES = {False: "LiberationSans-Regular.ttf", True: "LiberationSans-Bold.ttf"}
MM_PER_PT = 25.4 / 72


@dataclass(frozen=True)
class FontMetrics:
    units_per_em: int
    advances: tuple[int, ...]
    glyph_of: dict[int, int]
    default_advance: int

    def width_em(self, text: str) -> float:
        """Width of ``text`` in em (1 em = the font size)."""
        total = 0
        for char in text:
            glyph = self.glyph_of.get(ord(char))
            total += self.advances[min(glyph, len(self.advances) - 1)] if glyph else self.default_advance
        return total / self.units_per_em


def _font_path(bold: bool) -> Path:
    configured = os.environ.get("KI_POST_FONT_DIR")
    for folder in ((Path(configured),) if configured else ()) + FONT_DIRS:
        path = folder / FILES[bold]
        if path.exists():
            return path
    raise FileNotFoundError(f"{FILES[bold]} nicht gefunden (Debian: apt-get install fonts-liberation).")


@functools.lru_cache(maxsize=2)
def metrics(bold: bool = False) -> FontMetrics:
    font = TTFont(_font_path(bold), lazy=True)
    glyph_order = font.getGlyphOrder()
    widths = font["hmtx"].metrics
    advances = tuple(widths[name][0] for name in glyph_order)
    index_of = {name: index for index, name in enumerate(glyph_order)}
    glyph_of = {code: index_of[name] for code, name in font.getBestCmap().items()}
    # A character the font lacks is drawn by a fallback font: count it as wide as "M".
    default = advances[glyph_of.get(ord("M"), 0)]
    return FontMetrics(font["head"].unitsPerEm, advances, glyph_of, default)


def text_width_mm(text: str, size_pt: float, bold: bool = False) -> float:
    """Width of one line of ``text`` set in Liberation Sans at ``size_pt``, in millimetres."""
    return metrics(bold).width_em(text) * size_pt * MM_PER_PT

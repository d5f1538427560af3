"""Advance widths of Liberation Sans read from the TrueType files, so label text is measured, not guessed.

A small reader for the three tables that matter (``head`` for units per em, ``hmtx``/``hhea`` for
advance widths, ``cmap`` format 4 for characters to glyphs). Kerning is left out: it only makes
text narrower, so the sum of advances is an upper bound (what fitting needs).
"""
from __future__ import annotations

import functools
import os
import struct
from dataclasses import dataclass
from pathlib import Path

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


def _tables(data: bytes) -> dict[bytes, tuple[int, int]]:
    count = struct.unpack_from(">H", data, 4)[0]
    tables = {}
    for index in range(count):
        tag, _checksum, offset, length = struct.unpack_from(">4sLLL", data, 12 + 16 * index)
        tables[tag] = (offset, length)
    return tables


def _cmap(data: bytes, offset: int) -> dict[int, int]:
    """Characters to glyphs from the Unicode BMP subtable (format 4)."""
    count = struct.unpack_from(">H", data, offset + 2)[0]
    for index in range(count):
        platform, encoding, sub = struct.unpack_from(">HHL", data, offset + 4 + 8 * index)
        start = offset + sub
        if (platform, encoding) in ((3, 1), (0, 3), (0, 4)) and struct.unpack_from(">H", data, start)[0] == 4:
            break
    else:
        raise ValueError("Keine Unicode-Zeichentabelle (cmap Format 4) in der Schrift.")
    segments = struct.unpack_from(">H", data, start + 6)[0] // 2
    ends = struct.unpack_from(f">{segments}H", data, start + 14)
    starts = struct.unpack_from(f">{segments}H", data, start + 16 + 2 * segments)
    deltas = struct.unpack_from(f">{segments}h", data, start + 16 + 4 * segments)
    range_at = start + 16 + 6 * segments
    ranges = struct.unpack_from(f">{segments}H", data, range_at)
    mapping: dict[int, int] = {}
    for segment in range(segments):
        for code in range(starts[segment], ends[segment] + 1):
            if code == 0xFFFF:
                continue
            if ranges[segment] == 0:
                glyph = (code + deltas[segment]) & 0xFFFF
            else:
                where = range_at + 2 * segment + ranges[segment] + 2 * (code - starts[segment])
                glyph = struct.unpack_from(">H", data, where)[0]
                glyph = (glyph + deltas[segment]) & 0xFFFF if glyph else 0
            if glyph:
                mapping[code] = glyph
    return mapping


@functools.lru_cache(maxsize=2)
def metrics(bold: bool = False) -> FontMetrics:
    data = _font_path(bold).read_bytes()
    tables = _tables(data)
    units_per_em = struct.unpack_from(">H", data, tables[b"head"][0] + 18)[0]
    long_metrics = struct.unpack_from(">H", data, tables[b"hhea"][0] + 34)[0]
    hmtx = tables[b"hmtx"][0]
    advances = tuple(struct.unpack_from(">H", data, hmtx + 4 * index)[0] for index in range(long_metrics))
    glyph_of = _cmap(data, tables[b"cmap"][0])
    # A character the font lacks is drawn by a fallback font: count it as wide as "M".
    default = advances[min(glyph_of.get(ord("M"), 0), len(advances) - 1)]
    return FontMetrics(units_per_em, advances, glyph_of, default)


def text_width_mm(text: str, size_pt: float, bold: bool = False) -> float:
    """Width of one line of ``text`` set in Liberation Sans at ``size_pt``, in millimetres."""
    return metrics(bold).width_em(text) * size_pt * MM_PER_PT

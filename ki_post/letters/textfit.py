"""Fit text into a label box: shrink, then wrap, never cut (measured with the real font metrics).

A box holds blocks (name, function, organisation …), each with a largest and a smallest size and a
number of lines it may use. Each block first gets the largest size at which it fits the width in its
lines; then, while the stack is higher than the box, all blocks shrink together. Lines break between
words and after hyphens ("Hohenzollern-|Sigmaringen"); a block that fits its lines at no size is set
at its smallest size with as many lines as needed, and only a single word wider than the box is
split between letters. When nothing fits even then, a ValidationError names the text.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ValidationError
from .fontmetrics import MM_PER_PT, text_width_mm

LEADING = 1.2  # line height / font size (set as exact line spacing in the DOCX)
# LibreOffice kerns and rounds positions; measured widths keep this share of the box free.
WIDTH_RESERVE = 0.03
SCALES = [1 - step / 40 for step in range(0, 31)]  # 100 % down to 25 %, in 2.5 % steps


@dataclass(frozen=True)
class Block:
    text: str
    max_pt: float
    min_pt: float
    bold: bool = False
    max_lines: int = 1
    space_before_mm: float = 0.0  # ignored for the first block that is shown
    keep_lines: bool = False  # True: text holds fixed lines ("\n"), each shrinks but is never joined


@dataclass(frozen=True)
class FittedBlock:
    lines: list[str]
    size_pt: float
    bold: bool
    space_before_mm: float

    @property
    def line_height_mm(self) -> float:
        return self.size_pt * LEADING * MM_PER_PT

    @property
    def height_mm(self) -> float:
        return self.space_before_mm + len(self.lines) * self.line_height_mm


def _pieces(word: str) -> list[str]:
    """A word and the places it may break: after each hyphen or dash inside it."""
    return [piece for piece in re.findall(r"[^-–]*[-–]|[^-–]+", word) if piece]


def _split_letters(piece: str, width: float, size: float, bold: bool) -> list[str]:
    parts, current = [], ""
    for char in piece:
        if current and text_width_mm(current + char, size, bold) > width:
            parts.append(current)
            current = char
        else:
            current += char
    return parts + ([current] if current else [])


def wrap(text: str, width_mm: float, size_pt: float, bold: bool = False, *, split_words: bool = False) -> list[str] | None:
    """Greedy line breaking; None when a piece is wider than the line and ``split_words`` is off."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        for index, piece in enumerate(_pieces(word)):
            joiner = " " if index == 0 and current else ""
            candidate = current + joiner + piece
            if text_width_mm(candidate, size_pt, bold) <= width_mm:
                current = candidate
                continue
            if current:
                lines.append(current)
            current = piece
            if text_width_mm(piece, size_pt, bold) > width_mm:
                if not split_words:
                    return None
                *done, current = _split_letters(piece, width_mm, size_pt, bold)
                lines.extend(done)
    if current:
        lines.append(current)
    return lines


def _round(size: float) -> float:
    return max(0.5, round(size * 2) / 2)


def _layout(block: Block, size: float, width: float, strict: bool) -> list[str] | None:
    """Lines of ``block`` at ``size``. Strict: within its lines, fixed lines unbroken, words whole.
    Loose (the way out for text too long for that): any number of lines, a too-wide word split."""
    if block.keep_lines:
        lines: list[str] = []
        for line in block.text.split("\n"):
            if text_width_mm(line, size, block.bold) <= width:
                lines.append(line)
            elif strict:
                return None
            else:
                lines.extend(wrap(line, width, size, block.bold, split_words=True) or [])
    else:
        lines = wrap(block.text, width, size, block.bold, split_words=not strict) or []
        if strict and not lines:
            return None
    return None if strict and len(lines) > block.max_lines else lines


def _sizes(block: Block) -> list[float]:
    sizes, size = [], _round(block.max_pt)
    while size >= block.min_pt:
        sizes.append(size)
        size -= 0.5
    return sizes or [block.min_pt]


def _largest(block: Block, width: float) -> tuple[float, bool]:
    """The largest size at which the block fits its width strictly, else (smallest size, loose)."""
    for size in _sizes(block):
        if _layout(block, size, width, strict=True) is not None:
            return size, True
    return block.min_pt, False


def fit(blocks: Sequence[Block], width_mm: float, height_mm: float) -> list[FittedBlock]:
    """Each block at the largest size that fits the width; then all shrink together until the stack
    fits the height. Empty blocks are left out; the first block shown has no space before it."""
    shown = [block for block in blocks if block.text.strip()]
    width = width_mm * (1 - WIDTH_RESERVE)
    preferred = [_largest(block, width) for block in shown]
    for scale in SCALES:
        fitted = []
        for number, (block, (size, strict)) in enumerate(zip(shown, preferred)):
            size = _round(max(block.min_pt, size * scale))
            lines = _layout(block, size, width, strict) or []
            fitted.append(FittedBlock(lines, size, block.bold, block.space_before_mm if number else 0.0))
        if sum(block.height_mm for block in fitted) <= height_mm:
            return fitted
        if all(block.size_pt <= source.min_pt for block, source in zip(fitted, shown)):
            break  # every block at its smallest size: smaller scales change nothing
    text = " / ".join(block.text.replace("\n", ", ") for block in shown)
    raise ValidationError(f"„{text[:120]}“ passt auch in kleinster Schrift nicht auf das Etikett "
                          f"({width_mm:.0f} × {height_mm:.0f} mm). Bitte kürzen.")

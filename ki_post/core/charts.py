"""Geometry of the small server-rendered charts (stacked bars, seats gauge); the SVG is in _charts.html.

No JavaScript and nothing from outside: intranets have no internet, and a chart must still read
without colour (each part has its own pattern, the legend names it with its number) and without
sight (the SVG carries a German sentence as its accessible name).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..formatting import zahl

WIDTH = 600  # viewBox units; the SVG scales to its box
MIN_PART = 6  # a part with at least one person never vanishes next to large ones


@dataclass(frozen=True)
class Part:
    key: str
    label: str
    count: int
    x: float = 0.0
    width: float = 0.0

    @property
    def fill(self) -> str:
        return FILLS.get(self.key, "url(#muster-leer)")

    @property
    def sentence(self) -> str:
        return f"{self.label}: {zahl(self.count)}"


# One pattern per meaning, shared by every chart of a page (see chart_patterns in _charts.html).
FILLS = {
    "zugesagt": "url(#muster-voll-gruen)", "gesendet": "url(#muster-voll-gruen)",
    "vorlaeufig": "url(#muster-streifen)", "unklar": "url(#muster-streifen)",
    "warteliste": "url(#muster-punkte)",
    "abgesagt": "url(#muster-gitter)", "fehlgeschlagen": "url(#muster-gitter)",
    "offen": "url(#muster-leer)", "wartend": "url(#muster-leer)",
    "companions": "url(#muster-streifen-blau)", "invitees": "url(#muster-voll-blau)",
}

ANSWER_PARTS = (("zugesagt", "Zusage"), ("vorlaeufig", "vorläufig"), ("warteliste", "Warteliste"),
                ("abgesagt", "Absage"), ("offen", "offen"))
MAILING_PARTS = (("gesendet", "gesendet"), ("fehlgeschlagen", "fehlgeschlagen"), ("unklar", "unklar"),
                 ("wartend", "wartend"))


def stacked(counts: Mapping[str, int], parts: Sequence[tuple[str, str]]) -> list[Part]:
    """The parts in order, each with its share of the width (every non-empty part at least MIN_PART)."""
    values = [(key, label, max(int(counts.get(key, 0) or 0), 0)) for key, label in parts]
    total = sum(count for _, _, count in values)
    if not total:
        return [Part(key, label, 0) for key, label, _ in values]
    shown = [count for _, _, count in values if count]
    # Give the small parts their minimum first, share the rest in proportion.
    spare = WIDTH - MIN_PART * len(shown)
    result, x = [], 0.0
    for key, label, count in values:
        width = MIN_PART + spare * count / total if count else 0.0
        result.append(Part(key, label, count, round(x, 2), round(width, 2)))
        x += width
    return result


def answer_parts(counts: Mapping[str, int]) -> list[Part]:
    return stacked(counts, ANSWER_PARTS)


def mailing_parts(counts: Mapping[str, int]) -> list[Part]:
    """Messages of a mailing: in progress counts as waiting; withdrawn, cancelled and skipped ones are not
    going out and are left out of the bar (the mailing page lists them)."""
    merged = dict(counts)
    merged["wartend"] = counts.get("wartend", 0) + counts.get("in_arbeit", 0)
    return stacked(merged, MAILING_PARTS)


def describe(title: str, parts: Sequence[Part]) -> str:
    """The sentence a screen reader reads for the bar: "Antworten: Zusage 12, Absage 3, …"."""
    total = sum(part.count for part in parts)
    if not total:
        return f"{title}: noch keine."
    return f"{title} ({zahl(total)} insgesamt): " + ", ".join(part.sentence for part in parts) + "."


@dataclass(frozen=True)
class Gauge:
    """Seats taken (invited persons and their companions) of the capacity."""

    invitees: int
    companions: int
    capacity: int | None

    @property
    def taken(self) -> int:
        return self.invitees + self.companions

    def _width(self, seats: int) -> float:
        if not self.capacity:
            return 0.0
        return round(WIDTH * min(seats, self.capacity) / self.capacity, 2)

    @property
    def invitee_width(self) -> float:
        return self._width(self.invitees)

    @property
    def companion_width(self) -> float:
        return round(self._width(self.taken) - self.invitee_width, 2)

    @property
    def percent(self) -> int:
        return round(100 * self.taken / self.capacity) if self.capacity else 0

    @property
    def sentence(self) -> str:
        with_companions = f" (davon {zahl(self.companions)} Begleitpersonen)" if self.companions else ""
        if not self.capacity:
            return f"{zahl(self.taken)} Plätze belegt{with_companions}, ohne Platzbegrenzung."
        free = max(self.capacity - self.taken, 0)
        return (f"{zahl(self.taken)} von {zahl(self.capacity)} Plätzen belegt{with_companions}, "
                f"{zahl(free)} frei ({self.percent} %).")


def seats_gauge(accepted: int, companions: int, capacity: int | None) -> Gauge:
    return Gauge(accepted, companions, capacity)


def register(app) -> None:
    app.add_template_global(answer_parts)
    app.add_template_global(mailing_parts)
    app.add_template_global(describe, "chart_sentence")
    app.add_template_global(seats_gauge)

"""German date formats (Babel), shown in Europe/Berlin, stored in UTC."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_time
from flask import Flask

BERLIN = ZoneInfo("Europe/Berlin")


def datum(value: date | datetime | None) -> str:
    """28. Dezember 2016 (DIN 5008, no leading zero)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(BERLIN).date() if value.tzinfo else value.date()
    return format_date(value, "d. MMMM y", locale="de_DE")


def datum_zeit(value: datetime | None) -> str:
    """8. Februar 2017, 11:00 Uhr"""
    if value is None:
        return ""
    local = value.astimezone(BERLIN) if value.tzinfo else value
    return format_datetime(local, "d. MMMM y, HH:mm 'Uhr'", locale="de_DE")


def zeit(value: datetime | None) -> str:
    """11:00"""
    if value is None:
        return ""
    local = value.astimezone(BERLIN) if value.tzinfo else value
    return format_time(local, "HH:mm", locale="de_DE")


def datum_kurz(value: datetime | None) -> str:
    """24.11.2026, 17:05 — for tables."""
    if value is None:
        return ""
    local = value.astimezone(BERLIN) if value.tzinfo else value
    return format_datetime(local, "dd.MM.y, HH:mm", locale="de_DE")


def zahl(value: int | float) -> str:
    from babel.numbers import format_decimal

    return format_decimal(value, locale="de_DE")


def anzahl(value: int, singular: str, plural: str) -> str:
    """1 Ansprechperson, 2.000 Ansprechpersonen — ``{{ n|anzahl("Ansprechperson", "Ansprechpersonen") }}``."""
    return f"{zahl(value)} {singular if value == 1 else plural}"


def register(app: Flask) -> None:
    filters = {"datum": datum, "datum_zeit": datum_zeit, "zeit": zeit, "datum_kurz": datum_kurz, "zahl": zahl, "anzahl": anzahl}
    for name, func in filters.items():
        app.add_template_filter(func, name)

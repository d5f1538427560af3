"""Jinja filters for German numbers: ``anzahl`` picks singular or plural."""
from __future__ import annotations

from ki_post.formatting import anzahl


def test_anzahl_singular_only_for_exactly_one_and_german_thousands():
    assert anzahl(1, "Ansprechperson", "Ansprechpersonen") == "1 Ansprechperson"
    assert anzahl(0, "Änderung", "Änderungen") == "0 Änderungen"
    assert anzahl(2000, "Änderung", "Änderungen") == "2.000 Änderungen"

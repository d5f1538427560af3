"""Addressing and salutation: every row of standards.md §1.7 (ANR-01…ANR-11), ANR-T1, DIN-15…19, ANS-T1."""
from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from ki_post.recipients.addressing import (
    address_lines,
    is_vacant,
    person_lines,
    role_wording,
    salutation,
)
from ki_post.recipients.models import Contact, Organisation


def org(**kwargs) -> SimpleNamespace:
    defaults = dict(name="Kreis Mettmann", kind="kreis", authority="Kreis Mettmann – Der Landrat",
                    street="Düsseldorfer Straße 26", postcode="40822", town="Mettmann")
    return SimpleNamespace(**{**defaults, **kwargs})


def person(anrede="", title="", first="", last="", office="", organisation=None) -> SimpleNamespace:
    return SimpleNamespace(anrede=anrede, academic_title=title, first_name=first, last_name=last,
                           office_title=office, organisation=organisation)


# (ID, anrede, academic title, office title, first, last) -> (person lines, salutation)
TABLE = [
    ("ANR-01", "frau", "", "", "Anna", "Schmidt", ["Frau", "Anna Schmidt"], "Sehr geehrte Frau Schmidt,"),
    ("ANR-02", "herr", "", "", "Max", "Müller", ["Herrn", "Max Müller"], "Sehr geehrter Herr Müller,"),
    ("ANR-03", "", "", "", "Kim", "Mayer", ["Kim Mayer"], "Guten Tag Kim Mayer,"),
    ("ANR-04", "frau", "Dr.", "", "Sabine", "Jäger", ["Frau", "Dr. Sabine Jäger"], "Sehr geehrte Frau Dr. Jäger,"),
    ("ANR-04 med.", "frau", "Dr. med.", "", "Sabine", "Jäger", ["Frau", "Dr. med. Sabine Jäger"], "Sehr geehrte Frau Dr. Jäger,"),
    ("ANR-05", "herr", "Prof. Dr.", "", "Jan", "Koch", ["Herrn", "Prof. Dr. Jan Koch"], "Sehr geehrter Herr Professor Koch,"),
    ("ANR-05 Prof.", "herr", "Prof.", "", "Jan", "Koch", ["Herrn", "Prof. Jan Koch"], "Sehr geehrter Herr Professor Koch,"),
    ("ANR-06", "frau", "Prof. Dr.", "", "Eva", "Wolf", ["Frau", "Prof. Dr. Eva Wolf"], "Sehr geehrte Frau Professorin Wolf,"),
    ("ANR-07", "herr", "Dr. phil. Dr. med.", "", "Jan", "Koch", ["Herrn", "Dr. phil. Dr. med. Jan Koch"], "Sehr geehrter Herr Dr. Koch,"),
    ("ANR-08", "frau", "", "Bürgermeisterin", "Eva", "Wolf", ["Frau Bürgermeisterin", "Eva Wolf"], "Sehr geehrte Frau Bürgermeisterin Wolf,"),
    ("ANR-08 Landrat", "herr", "", "Landrat", "Thomas", "Hendele", ["Herrn Landrat", "Thomas Hendele"], "Sehr geehrter Herr Landrat Hendele,"),
    ("ANR-08 + Dr.", "frau", "Dr.", "Beigeordnete", "Ute", "Roth", ["Frau Beigeordnete", "Dr. Ute Roth"], "Sehr geehrte Frau Beigeordnete Dr. Roth,"),
    ("ANR-08 long", "herr", "", "Beigeordneter und Stadtkämmerer für Integration", "Uwe", "Beck",
     ["Herrn", "Beigeordneter und Stadtkämmerer für Integration", "Uwe Beck"],
     "Sehr geehrter Herr Beigeordneter und Stadtkämmerer für Integration Beck,"),
    ("ANR-09", "frau", "M. A.", "", "Lena", "Vogt", ["Frau", "Lena Vogt M. A."], "Sehr geehrte Frau Vogt,"),
    ("ANR-09 + Dr.", "herr", "Dr. M. Sc.", "", "Ole", "Vogt", ["Herrn", "Dr. Ole Vogt M. Sc."], "Sehr geehrter Herr Dr. Vogt,"),
    # ANR-T1 examples, verbatim
    ("ANR-T1 a", "frau", "", "", "Anna", "Schmidt", ["Frau", "Anna Schmidt"], "Sehr geehrte Frau Schmidt,"),
    ("ANR-T1 b", "herr", "Dr.", "", "Max", "Müller", ["Herrn", "Dr. Max Müller"], "Sehr geehrter Herr Dr. Müller,"),
    ("ANR-T1 c", "herr", "Prof. Dr.", "", "Jan", "Koch", ["Herrn", "Prof. Dr. Jan Koch"], "Sehr geehrter Herr Professor Koch,"),
    ("ANR-T1 d", "frau", "Prof. Dr.", "", "Eva", "Wolf", ["Frau", "Prof. Dr. Eva Wolf"], "Sehr geehrte Frau Professorin Wolf,"),
    ("ANR-T1 e", "", "Dr.", "", "Kim", "Mayer", ["Dr. Kim Mayer"], "Guten Tag Dr. Kim Mayer,"),
    ("ANR-T1 f", "frau", "", "Bürgermeisterin", "Eva", "Wolf", ["Frau Bürgermeisterin", "Eva Wolf"], "Sehr geehrte Frau Bürgermeisterin Wolf,"),
]


@pytest.mark.parametrize("case", TABLE, ids=[row[0] for row in TABLE])
def test_salutation_table(case):
    _id, anrede, title, office, first, last, lines, expected = case
    contact = person(anrede, title, first, last, office)
    assert person_lines(contact) == lines
    assert salutation(contact) == expected


def test_anr02_herrn_only_in_the_address_din19():
    contact = person("herr", "", "Max", "Müller", organisation=org())
    lines = address_lines(contact)
    assert "Herrn" in lines and not any(re.fullmatch(r"Herr", line) for line in lines)
    assert salutation(contact).startswith("Sehr geehrter Herr ")


def test_anr03_with_unknown_anrede_value_is_neutral():
    assert salutation(person("divers", "", "Kim", "Mayer")) == "Guten Tag Kim Mayer,"
    assert person_lines(person("divers", "", "Kim", "Mayer")) == ["Kim Mayer"]


def test_anr11_vacant_post_and_no_contact():
    assert salutation(None) == "Sehr geehrte Damen und Herren,"
    assert salutation(org()) == "Sehr geehrte Damen und Herren,"
    assert salutation(person("frau", "", "", "", organisation=org())) == "Sehr geehrte Damen und Herren,"
    assert is_vacant(None) and is_vacant(org()) and not is_vacant(person("", "", "Kim", "Mayer"))


def test_full_address_block_din18_order():
    contact = person("frau", "Dr.", "Sabine", "Jäger", "Beigeordnete", organisation=org())
    assert address_lines(contact) == [
        "Kreis Mettmann – Der Landrat",
        "Frau Beigeordnete",
        "Dr. Sabine Jäger",
        "Düsseldorfer Straße 26",
        "40822 Mettmann",
    ]


def test_vacant_post_address_has_authority_and_postal_lines():
    assert address_lines(org()) == ["Kreis Mettmann – Der Landrat", "Düsseldorfer Straße 26", "40822 Mettmann"]
    assert address_lines(person(organisation=org())) == address_lines(org())
    assert address_lines(None) == []


def test_ans_t1_no_blank_lines_at_most_six_lines_plz_last():
    long_authority = "Stadt Köln\nDie Oberbürgermeisterin\nDezernat für Soziales, Integration und Umwelt\nAmt für Integration"
    contact = person("herr", "Prof. Dr.", "Jan", "Koch", "Beigeordneter und Stadtkämmerer für Integration",
                     organisation=org(authority=long_authority, postcode="D-50667 ", town="Köln"))
    lines = address_lines(contact)
    assert len(lines) <= 6
    assert all(line.strip() == line and line for line in lines)
    assert re.match(r"^\d{5} \S", lines[-1]) and lines[-1] == "50667 Köln"
    assert "Prof. Dr. Jan Koch" in lines and "Herrn" in lines
    assert not any(re.fullmatch(r"Herr", line) for line in lines)


def test_missing_parts_leave_no_blank_lines_din16():
    contact = person("", "", "Kim", "Mayer", organisation=org(authority="", street="", name="Köln"))
    assert address_lines(contact) == ["Köln", "Kim Mayer", "40822 Mettmann"]


def test_newlines_in_data_do_not_create_lines():
    contact = person("frau", "", "Anna\r\nX", "Schmidt\n", organisation=org())
    assert "Anna X Schmidt" in address_lines(contact)
    assert salutation(contact) == "Sehr geehrte Frau Schmidt,"


def test_template_syntax_in_names_is_kept_literally():
    contact = person("", "", "{{ 7*7 }}", "<script>alert(1)</script>")
    assert salutation(contact) == "Guten Tag {{ 7*7 }} <script>alert(1)</script>,"


def test_role_wording():
    both = "die für das KI zuständige Dezernentin / den für das KI zuständigen Dezernenten"
    assert role_wording(None) == both
    assert role_wording(org()) == both
    assert role_wording(person("", "", "Kim", "Mayer")) == both
    assert role_wording(person("frau", "", "Anna", "Schmidt")) == "die für das KI zuständige Dezernentin"
    assert role_wording(person("herr", "", "Max", "Müller")) == "den für das KI zuständigen Dezernenten"
    assert role_wording(None, "nominativ") == "die für das KI zuständige Dezernentin / der für das KI zuständige Dezernent"
    assert role_wording(None, "dativ") == "der für das KI zuständigen Dezernentin / dem für das KI zuständigen Dezernenten"
    with pytest.raises(ValueError):
        role_wording(None, "genitiv")


def test_works_with_the_real_models_unsaved():
    organisation = Organisation(name="Köln", kind="kreisfreie_stadt", authority="Stadt Köln – Die Oberbürgermeisterin",
                                street="Willy-Brandt-Platz 2", postcode="50679", town="Köln")
    contact = Contact(anrede="frau", academic_title="Dr.", office_title="", first_name="Birgit", last_name="Jäger",
                      email="b.jaeger@koeln.example", organisation=organisation)
    assert address_lines(contact) == ["Stadt Köln – Die Oberbürgermeisterin", "Frau", "Dr. Birgit Jäger", "Willy-Brandt-Platz 2", "50679 Köln"]
    assert salutation(contact) == "Sehr geehrte Frau Dr. Jäger,"

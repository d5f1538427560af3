"""Demo data: the 53 Kreise and kreisfreie Städte of NRW with fictional officers.

Idempotent: organisations are matched by name, contacts by e-mail, lists by name, so running it
twice changes nothing. Officers, addresses and e-mail domains (``.example``) are invented.
"""
from __future__ import annotations

import csv
import random
import re
import unicodedata
from pathlib import Path

from sqlalchemy import select

from .extensions import db
from .recipients.models import Contact, Organisation, Verteiler

DATA_FILE = Path(__file__).parent / "demo_data" / "nrw-kommunen.csv"
ALL_LIST_NAME = "Alle KI-Dezernate"
KIND_BY_LABEL = {"Kreis": "kreis", "kreisfreie Stadt": "kreisfreie_stadt", "StädteRegion": "staedteregion"}

FEMALE = ["Anna", "Birgit", "Claudia", "Doris", "Elif", "Franziska", "Gül", "Hanna", "Ines", "Julia", "Katrin", "Leyla", "Martina", "Nadine", "Olga", "Petra", "Sabine", "Tanja", "Ute", "Vera"]
MALE = ["Andreas", "Bernd", "Christian", "Dirk", "Emre", "Frank", "Georg", "Hakan", "Ingo", "Jan", "Klaus", "Lars", "Markus", "Norbert", "Oliver", "Peter", "Ralf", "Stefan", "Thomas", "Uwe"]
NEUTRAL = ["Kim", "Alex", "Robin", "Sascha", "Kai"]
SURNAMES = ["Jäger", "Koch", "Wolf", "Schmidt", "Müller", "Becker", "Hoffmann", "Schäfer", "Yılmaz", "Krüger", "Neumann", "Schwarz", "Zimmermann", "Braun", "Hofmann", "Hartmann", "Lange", "Werner", "Krause", "Lehmann", "Köhler", "Maier", "Kaya", "Peters", "Fuchs", "Scholz", "Möller", "Weiß", "Jung", "Hahn", "Vogel", "Friedrich", "Keller", "Günther", "Frank", "Berger", "Winkler", "Roth", "Beck", "Lorenz", "Baumann", "Franke", "Albrecht", "Schuster", "Simon", "Ludwig", "Böhm", "Winter", "Kraus", "Martin", "Schumacher", "Krämer", "Vogt"]


def _slug(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name.replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("ß", "ss"))
    ascii_name = ascii_name.encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-")


def _authority(name: str, kind: str, male_head: bool) -> str:
    if kind == "kreisfreie_stadt":
        head = "Der Oberbürgermeister" if male_head else "Die Oberbürgermeisterin"
        return f"Stadt {name} – {head}"
    if kind == "staedteregion":
        return f"{name} – Der Städteregionsrat" if male_head else f"{name} – Die Städteregionsrätin"
    return f"{name} – Der Landrat" if male_head else f"{name} – Die Landrätin"


def demo_rows() -> list[dict[str, str]]:
    with DATA_FILE.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=";"))


def load_demo_data() -> dict[str, int]:
    """The whole demo: Verteiler, shipped letter template and sender profile, the celebration (a few weeks ahead)."""
    from .events.demo import load_demo as load_demo_event
    from .letters.demo import load_demo as load_demo_letter

    created = load_demo_verteiler()
    created.update(load_demo_letter())
    created.update(load_demo_event())
    return created


def load_demo_verteiler() -> dict[str, int]:
    """Create or complete the demo Verteiler; returns how many records were created per kind."""
    created = {"organisations": 0, "contacts": 0, "verteiler": 0}
    rng = random.Random(2017)  # fixed seed: the same fictional officers on every machine
    for index, row in enumerate(demo_rows()):
        name, kind = row["Kommune"], KIND_BY_LABEL[row["Art"]]
        male_head = rng.random() < 0.6
        organisation = db.session.scalar(select(Organisation).where(Organisation.name == name))
        if organisation is None:
            town = re.sub(r"^(Kreis|StädteRegion) ", "", name)
            organisation = Organisation(
                name=name,
                kind=kind,
                regierungsbezirk=row["Regierungsbezirk"],
                ki_name=f"Kommunales Integrationszentrum {name}",
                authority=_authority(name, kind, male_head),
                street=f"{['Rathausplatz', 'Kreishausstraße', 'Am Stadthaus', 'Verwaltungsring'][index % 4]} {index % 17 + 1}",
                postcode=f"{40000 + index * 397:05d}"[:5],
                town=town if kind != "kreis" else town.split("-")[0],
            )
            db.session.add(organisation)
            created["organisations"] += 1

        email = f"ki-dezernat@{_slug(name)}.example"
        roll = rng.random()
        anrede = "frau" if roll < 0.48 else "herr" if roll < 0.92 else ""
        first = rng.choice(FEMALE if anrede == "frau" else MALE if anrede == "herr" else NEUTRAL)
        title = rng.choice(["", "", "", "Dr.", "Prof. Dr."]) if index % 3 == 0 else ""
        if db.session.scalar(select(Contact.id).where(Contact.email == email)) is None:
            db.session.add(
                Contact(
                    anrede=anrede,
                    academic_title=title,
                    office_title="Beigeordnete" if anrede == "frau" and index % 5 == 0 else "",
                    first_name=first,
                    last_name=SURNAMES[index % len(SURNAMES)],
                    function={"frau": "Dezernentin für Integration", "herr": "Dezernent für Integration"}.get(anrede, "Dezernat Integration"),
                    email=email,
                    phone=f"0{200 + index} {1000 + index * 7}-{100 + index}",
                    organisation=organisation,
                )
            )
            created["contacts"] += 1

    if db.session.scalar(select(Verteiler.id).where(Verteiler.name == ALL_LIST_NAME)) is None:
        db.session.add(Verteiler(name=ALL_LIST_NAME, description="Alle aktiven Ansprechpersonen der 53 Kommunalen Integrationszentren.", filter={}))
        created["verteiler"] += 1
    db.session.flush()
    return created

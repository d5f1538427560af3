"""Verteiler at scale: import 10,000 rows (XLSX and CSV) and the contact list page with 10,000 contacts.

    python bench/recipients.py [--rows 10000] [--database postgresql://postgres@127.0.0.1/kipost_bench]

Targets (issue 3, this 2-core machine): import < 10 s, list page < 200 ms. The baseline column is
the same measurement on the 53 demo contacts, so the figures show what scale costs.
Each import runs against a fresh database; "re-import" runs the same file again (all unchanged).
"""
from __future__ import annotations

import argparse
import csv
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from openpyxl import Workbook  # noqa: E402
from sqlalchemy import text  # noqa: E402

from ki_post import create_app  # noqa: E402
from ki_post.extensions import db  # noqa: E402
from ki_post.models import metadata  # noqa: E402

HEADERS = ["Kommune", "Art", "Regierungsbezirk", "Anrede", "Titel", "Vorname", "Nachname", "Funktion",
           "Straße", "PLZ", "Ort", "E-Mail", "Telefon", "Bemerkung intern"]
KOMMUNEN = ROOT / "ki_post" / "demo_data" / "nrw-kommunen.csv"
PASSWORD = "bench-passwort-123"


def rows(n: int) -> list[list[str]]:
    with KOMMUNEN.open(encoding="utf-8") as handle:
        kommunen = list(csv.DictReader(handle, delimiter=";"))
    result = []
    for i in range(n):
        k = kommunen[i % len(kommunen)]
        result.append([
            k["Kommune"], k["Art"], k["Regierungsbezirk"], ("Frau", "Herr", "")[i % 3], ("", "Dr.", "", "Prof. Dr.")[i % 4],
            f"Vorname{i}", f"Nachname{i:05d}", "Dezernat Integration", f"Rathausplatz {i % 53 + 1}",
            f"{40000 + (i % 53) * 397:05d}", k["Kommune"].split()[-1], f"person{i}@kommune{i % 53}.example",
            f"0211 {i:06d}", f"Notiz {i}",
        ])
    return result


def xlsx_bytes(data: list[list[str]]) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Verteiler")
    sheet.append(HEADERS)
    for row in data:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def csv_bytes(data: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=";", lineterminator="\r\n").writerows([HEADERS, *data])
    return buffer.getvalue().encode("cp1252")  # as German Excel writes it


def fresh_app(tmp: Path, database: str):
    url = database or f"sqlite:///{tmp}/bench-{time.monotonic_ns()}.sqlite3"
    app = create_app({"DATABASE_URL": url, "AUTO_MIGRATE": False, "SECRET_KEY": "bench", "TESTING": True,
                      "RATELIMIT_ENABLED": False, "EMBEDDED_WORKER": False, "WTF_CSRF_ENABLED": False},
                     instance_path=str(tmp / "instance"))
    with app.app_context():
        if database:
            with db.engine.begin() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE"))
                connection.execute(text("CREATE SCHEMA public"))
        metadata.create_all(db.engine)
        from ki_post.auth.services import create_user

        create_user("bench@ministerium.example", "Bench", "sachbearbeitung", PASSWORD)
        db.session.commit()
    return app


def timed_import(app, data: bytes, name: str) -> tuple[float, str]:
    from ki_post.recipients.importer import apply_import

    with app.app_context():
        start = time.perf_counter()
        result = apply_import(data, name)
        db.session.commit()
        elapsed = time.perf_counter() - start
        db.session.remove()
    return elapsed, result.summary()


def list_page_ms(app, query: str = "", repeat: int = 15) -> float:
    client = app.test_client()
    response = client.post("/anmelden", data={"email": "bench@ministerium.example", "password": PASSWORD})
    assert response.status_code == 302, response.status_code
    client.get("/verteiler/" + query)  # warm-up: templates compiled, caches filled
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get("/verteiler/" + query)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--database", default="", help="PostgreSQL URL of a throw-away database (its schema is dropped)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        big, small = rows(args.rows), rows(53)
        files = {"XLSX": (xlsx_bytes(big), xlsx_bytes(small), "x.xlsx"), "CSV": (csv_bytes(big), csv_bytes(small), "x.csv")}
        backend = "PostgreSQL" if args.database else "SQLite"
        print(f"KI-Post Verteiler-Benchmark, {backend}, {args.rows:,} Zeilen (Basis: 53 Zeilen)".replace(",", "."))
        print(f"{'Messung':<44}{'Basis (53)':>14}{'Groß':>14}{'Ziel':>10}")

        queries = [
            ("Listenseite, Seite 1", ""),
            ("Listenseite, Seite 100", "?page=100"),
            ("Listenseite, Suche „nachname0999“", "?q=nachname0999"),
            ("Listenseite, Filter Köln + Kreis", "?regierungsbezirk=K%C3%B6ln&kind=kreis"),
            ("Listenseite, sortiert nach E-Mail absteigend", "?sort=email&dir=desc"),
        ]
        pages: dict[str, list[float]] = {}
        for kind, (big_data, small_data, name) in files.items():
            # Measured right after each import: with PostgreSQL every app shares the one database.
            small_app = fresh_app(tmp, args.database)
            small_time, _ = timed_import(small_app, small_data, name)
            if kind == "CSV":
                pages["base"] = [list_page_ms(small_app, query) for _, query in queries]
            big_app = fresh_app(tmp, args.database)
            big_time, summary = timed_import(big_app, big_data, name)
            again_time, again_summary = timed_import(big_app, big_data, name)
            print(f"{'Import ' + kind + ' (neu)':<44}{small_time:>12.2f} s{big_time:>12.2f} s{'< 10 s':>10}   {summary}")
            print(f"{'Import ' + kind + ' erneut (unverändert)':<44}{'':>14}{again_time:>12.2f} s{'< 10 s':>10}   {again_summary}")
            if kind == "CSV":
                pages["big"] = [list_page_ms(big_app, query) for _, query in queries]
            for app in (small_app, big_app):
                with app.app_context():
                    db.engine.dispose()
        for (label, _), base, scaled in zip(queries, pages["base"], pages["big"]):
            print(f"{label:<44}{base:>11.1f} ms{scaled:>11.1f} ms{'< 200 ms':>10}")


if __name__ == "__main__":
    main()
